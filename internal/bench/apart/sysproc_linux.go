package apart

import "syscall"

// childAttr has the kernel kill a child process when the benchmark dies,
// however it dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

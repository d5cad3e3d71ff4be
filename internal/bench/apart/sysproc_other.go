//go:build !linux

package apart

import "syscall"

// childAttr is nil off Linux, where the mode cannot run anyway: it reads
// /proc.
func childAttr() *syscall.SysProcAttr { return nil }

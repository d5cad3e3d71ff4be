package kubernetes_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tailLines is how much of a process's log a failure prints.
const tailLines = 60

// process is one program the tests run. Its output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the process has exited
	err     error         // what Wait returned; read it after exited is closed
}

// startProcess runs path with args, logging to logDir/name.log. The
// environment is the test's, without what points at a real cluster.
func startProcess(logDir, name, path string, args ...string) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = isolatedEnv()
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p, nil
}

// startTestProcess is startProcess for one test: the process is stopped
// when the test ends, and its log's tail is printed if the test failed.
func startTestProcess(t *testing.T, name, path string, args ...string) *process {
	t.Helper()
	p, err := startProcess(t.TempDir(), name, path, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.stop(30 * time.Second); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if p.raced() {
			t.Errorf("%s: the race detector reported a data race", name)
		}
		if t.Failed() {
			t.Logf("%s", p.tail())
		}
	})
	return p
}

// alive reports whether the process is still running.
func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// exitError is nil while the process runs, else how it ended.
func (p *process) exitError() error {
	if p.alive() {
		return nil
	}
	if p.err == nil {
		return fmt.Errorf("%s exited", p.name)
	}
	return fmt.Errorf("%s exited: %w", p.name, p.err)
}

// stop asks the process to shut down (SIGTERM) and kills it when it has not
// within grace. It returns an error when the process did not stop in time
// or did not exit with status 0; a process that had ended before is no error.
func (p *process) stop(grace time.Duration) error {
	if !p.alive() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal: %w", err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("after SIGTERM: %w", p.err)
		}
		return nil
	case <-time.After(grace):
		p.kill()
		return fmt.Errorf("did not stop within %s of SIGTERM; killed", grace)
	}
}

// kill kills the process at once and waits until it has exited.
func (p *process) kill() {
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		panic(fmt.Sprintf("kill %s: %v", p.name, err))
	}
	<-p.exited
}

// raced reports whether the race detector wrote a report into the log.
func (p *process) raced() bool {
	b, err := os.ReadFile(p.logPath)
	return err == nil && bytes.Contains(b, []byte("WARNING: DATA RACE"))
}

// tail is the end of the process's log, headed by its name and path.
func (p *process) tail() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("%s: read log: %v", p.name, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return fmt.Sprintf("--- last %d lines of %s (%s) ---\n%s", len(lines), p.name, p.logPath, strings.Join(lines, "\n"))
}

// isolatedEnv is the test's environment without the variables that would
// point a program at a real cluster.
func isolatedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT":
			continue
		}
		env = append(env, kv)
	}
	return env
}

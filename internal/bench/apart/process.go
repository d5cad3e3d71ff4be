package apart

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

const (
	// stopGrace is how long a process may take to exit once asked to
	// before it is killed.
	stopGrace = 10 * time.Second
	// tailLines is how many of a process's last lines of standard error
	// an error quotes.
	tailLines = 20
)

// process is one child process of the benchmark: a role of this binary,
// the sidecar or a build. Its methods are safe for concurrent use.
type process struct {
	name   string
	cmd    *exec.Cmd
	tail   *tail
	exited chan struct{} // closed once the process has exited and its output is read
	err    error         // why it exited, once exited is closed
}

// start starts cmd as the process name, its standard error kept in a
// tail and, when onLine is not nil, passed on to onLine line by line. It
// dies with the benchmark (see childAttr).
func start(name string, cmd *exec.Cmd, onLine func([]byte)) (*process, error) {
	p := &process{name: name, cmd: cmd, tail: &tail{}, exited: make(chan struct{})}
	cmd.Stderr = &lineWriter{line: func(line []byte) {
		p.tail.add(line)
		if onLine != nil {
			onLine(line)
		}
	}}
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = stopGrace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("apart: start %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// pid is the process id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// stop asks the process to exit with ask, waits up to stopGrace, then
// kills it; it returns an error unless it exited of itself with status 0.
func (p *process) stop(ask func() error) error {
	select {
	case <-p.exited:
		return p.exitErr()
	default:
	}
	if err := ask(); err != nil {
		return errors.Join(fmt.Errorf("apart: stop %s: %w", p.name, err), p.kill())
	}
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-p.exited:
		return p.exitErr()
	case <-t.C:
		return errors.Join(fmt.Errorf("apart: %s did not exit within %s", p.name, stopGrace), p.kill())
	}
}

// kill kills the process at once and waits for it.
func (p *process) kill() error {
	err := p.cmd.Process.Kill()
	<-p.exited
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// exitErr describes an exit that was not clean, with the last lines of
// standard error; the process has exited.
func (p *process) exitErr() error {
	if p.err == nil {
		return nil
	}
	return fmt.Errorf("apart: %s: %w; its last output:\n%s", p.name, p.err, p.tail)
}

// dead describes the process's exit when it has exited, else it is nil.
func (p *process) dead() error {
	select {
	case <-p.exited:
		return cmp.Or(p.exitErr(), fmt.Errorf("apart: %s exited; its last output:\n%s", p.name, p.tail))
	default:
		return nil
	}
}

// lineWriter passes what is written to it on to line, one line at a time
// without its newline; the slice is only valid during the call. A final
// line without a newline is not passed on. It is used by one goroutine.
type lineWriter struct {
	buf  []byte
	line func([]byte)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	w.buf = append(w.buf[:0:0], w.buf...)
	return len(p), nil
}

// tail keeps the last tailLines lines added. It is safe for concurrent
// use.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(line []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, string(line))
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

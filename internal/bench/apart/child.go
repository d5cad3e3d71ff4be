package apart

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

// The environment of a child process of this binary: the role it plays
// and its settings, JSON.
const (
	roleEnv = "EVENTSIDECAR_BENCH_ROLE"
	specEnv = "EVENTSIDECAR_BENCH_SPEC"
)

const (
	// helloTimeout bounds a child's start, until it says hello.
	helloTimeout = time.Minute
	// answerTimeout bounds a child's answer beyond what was asked of it.
	answerTimeout = time.Minute
)

// child is a child process of this binary in one of its roles. The
// parent and the child exchange JSON values, one a line: the child first
// says hello, then answers each request it reads from its standard input
// with one value on its standard output, and exits when its standard
// input closes. A child is used by one goroutine.
type child struct {
	*process
	in      io.WriteCloser
	answers chan []byte // the child's lines; closed when it has exited
}

// startChild starts this binary as role with spec and decodes its hello
// into hello (nil: ignore it).
func startChild(ctx context.Context, role string, spec, hello any) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("apart: start %s: %w", role, err)
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("apart: start %s: %w", role, err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"="+role, specEnv+"="+string(specJSON))
	c := &child{answers: make(chan []byte, 4)}
	cmd.Stdout = &lineWriter{line: func(line []byte) { c.answers <- bytes.Clone(line) }}
	if c.in, err = cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("apart: start %s: %w", role, err)
	}
	if c.process, err = start(role, cmd, nil); err != nil {
		return nil, err
	}
	go func() {
		<-c.exited
		close(c.answers)
	}()
	ctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	if err := c.receive(ctx, hello); err != nil {
		return nil, errors.Join(err, c.close())
	}
	return c, nil
}

// send writes req to the child.
func (c *child) send(req any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("apart: %s: %w", c.name, err)
	}
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		return errors.Join(fmt.Errorf("apart: %s: send: %w", c.name, err), c.dead())
	}
	return nil
}

// receive decodes the child's next value into v (nil: ignore it), waiting
// until ctx ends.
func (c *child) receive(ctx context.Context, v any) error {
	select {
	case line, ok := <-c.answers:
		if !ok {
			return cmp.Or(c.dead(), fmt.Errorf("apart: %s exited", c.name))
		}
		if v == nil {
			return nil
		}
		if err := json.Unmarshal(line, v); err != nil {
			return fmt.Errorf("apart: %s: answer %q: %w", c.name, line, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("apart: %s: no answer: %w", c.name, ctx.Err())
	}
}

// ask sends req and decodes the answer into v, waiting up to
// answerTimeout.
func (c *child) ask(ctx context.Context, req, v any) error {
	if err := c.send(req); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	return c.receive(ctx, v)
}

// close closes the child's standard input, which ends it, and waits for
// it to exit (see process.stop).
func (c *child) close() error {
	return c.stop(c.in.Close)
}

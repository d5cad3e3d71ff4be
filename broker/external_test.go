package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestExternalBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	s := runServer(t, dir, -1)
	port := s.Addr().(*net.TCPAddr).Port
	cfg := testConfig(t)
	cfg.URL = s.ClientURL()
	cfg.PublishTimeout = time.Second
	c := open(t, cfg)
	msgs := messages(t, 4)
	publishOne(t, c, msgs[0])

	s.Shutdown()
	s.WaitForShutdown()
	start := time.Now()
	rs := c.Publish(t.Context(), msgs[1:3])
	if elapsed := time.Since(start); elapsed > cfg.PublishTimeout+time.Second {
		t.Errorf("Publish with the broker down took %s, want at most %s", elapsed, cfg.PublishTimeout+time.Second)
	}
	for i, r := range rs {
		if !errors.Is(r.Err, ErrUnavailable) || r.Sequence != 0 {
			t.Errorf("receipt %d with the broker down = %+v, want ErrUnavailable", i, r)
		}
	}
	if err := c.Ready(t.Context()); err == nil {
		t.Error("Ready with the broker down = nil, want an error")
	}

	runServer(t, dir, port)
	waitFor(t, 15*time.Second, "Ready after the broker restarted", func() error { return c.Ready(t.Context()) })
	if n := streamMsgs(t, c); n != 1 {
		t.Errorf("stream holds %d messages after the restart, want 1", n)
	}
	if r := publishOne(t, c, msgs[3]); r.Sequence != 2 {
		t.Errorf("sequence after the restart = %d, want 2", r.Sequence)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestExternalBrokerLostState(t *testing.T) {
	s := runServer(t, t.TempDir(), -1)
	port := s.Addr().(*net.TCPAddr).Port
	cfg := testConfig(t)
	cfg.URL = s.ClientURL()
	c := open(t, cfg)
	s.Shutdown()
	s.WaitForShutdown()

	runServer(t, t.TempDir(), port)
	// Not through Ready, which would also ask for the stream: the reconnect
	// alone must bring it back.
	waitFor(t, 15*time.Second, "stream recreated after reconnecting to an empty broker", func() error {
		_, err := c.JetStream().Stream(t.Context(), cfg.Stream)
		return err
	})
	publishOne(t, c, messages(t, 1)[0])
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestStartWithTheBrokerDown(t *testing.T) {
	dir := t.TempDir()
	s := runServer(t, dir, -1)
	port := s.Addr().(*net.TCPAddr).Port
	cfg := testConfig(t)
	cfg.URL = "nats://app:s3cret@" + s.Addr().String()
	cfg.PublishTimeout = time.Second
	s.Shutdown()
	s.WaitForShutdown()

	c, err := Start(t.Context(), cfg, "test", testLogger(t))
	if err != nil {
		t.Fatalf("Start with the broker down: %v, want a Client that keeps connecting", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	err = c.Ready(t.Context())
	if want := "broker nats://127.0.0.1:" + strconv.Itoa(port) + ": not connected"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Ready with the broker down = %v, want an error containing %q", err, want)
	}
	if err != nil && strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Ready's error shows the password: %v", err)
	}
	if r := c.Publish(t.Context(), messages(t, 1))[0]; !errors.Is(r.Err, ErrUnavailable) {
		t.Errorf("publish with the broker down = %+v, want ErrUnavailable", r)
	}

	runServer(t, dir, port) // without authentication: the credentials are ignored
	if err := c.WaitReady(t.Context()); err != nil {
		t.Fatalf("WaitReady once the broker is up: %v", err)
	}
	if err := c.Ready(t.Context()); err != nil {
		t.Errorf("Ready once the broker is up = %v, want nil", err)
	}
	if r := publishOne(t, c, messages(t, 1)[0]); r.Sequence != 1 {
		t.Errorf("first sequence = %d, want 1", r.Sequence)
	}
}

func TestPrepareRunsOnEveryConnect(t *testing.T) {
	dir := t.TempDir()
	s := runServer(t, dir, -1)
	port := s.Addr().(*net.TCPAddr).Port
	cfg := testConfig(t)
	cfg.URL = s.ClientURL()
	c := open(t, cfg)
	runs := make(chan struct{}, 10)
	fail := errors.New("not yet")
	var failing atomic.Bool
	c.Prepare("the test's step", func(context.Context) error {
		runs <- struct{}{}
		if failing.Load() {
			return fail
		}
		return nil
	})
	<-runs // a ready Client runs the step at once
	if err := c.Ready(t.Context()); err != nil {
		t.Fatalf("Ready after the step = %v", err)
	}

	failing.Store(true)
	s.Shutdown()
	s.WaitForShutdown()
	runServer(t, dir, port)
	<-runs // again on reconnecting
	waitFor(t, 15*time.Second, "Ready naming the failing step", func() error {
		err := c.Ready(t.Context())
		if err == nil || !strings.Contains(err.Error(), "the test's step: not yet") {
			return fmt.Errorf("Ready = %v", err)
		}
		return nil
	})
	failing.Store(false)
	<-runs // retried
	waitFor(t, 15*time.Second, "Ready after the step succeeded", func() error { return c.Ready(t.Context()) })
}

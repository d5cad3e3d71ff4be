package broker

import (
	"errors"
	"net"
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

func TestExternalBrokerDown(t *testing.T) {
	s := runServer(t, t.TempDir(), -1)
	cfg := testConfig(t)
	cfg.URL = s.ClientURL()
	s.Shutdown()
	s.WaitForShutdown()
	if c, err := Open(t.Context(), cfg, "test", testLogger(t)); err == nil {
		c.Close()
		t.Fatal("Open with the broker down succeeded, want an error")
	}
}

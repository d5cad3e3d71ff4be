package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/config"
)

func TestOpenReady(t *testing.T) {
	c := open(t, testConfig(t))
	if err := c.Ready(t.Context()); err != nil {
		t.Errorf("Ready = %v, want nil", err)
	}
	if got := c.Subject("orders.created"); got != "events.orders.created" {
		t.Errorf("Subject = %q, want events.orders.created", got)
	}
	if c.Stream() != "EVENTS" || c.Conn() == nil || c.JetStream() == nil {
		t.Errorf("Stream %q Conn %v JetStream %v", c.Stream(), c.Conn(), c.JetStream())
	}
	if url := c.EmbeddedURL(); url != "" {
		t.Errorf("EmbeddedURL = %q for an in-process server, want empty", url)
	}
}

func TestOpenInvalidConfig(t *testing.T) {
	tests := []struct {
		name   string
		change func(cfg *config.Broker)
	}{
		{"no stream", func(cfg *config.Broker) { cfg.Stream = "" }},
		{"no subject prefix", func(cfg *config.Broker) { cfg.SubjectPrefix = "" }},
		{"no max pending", func(cfg *config.Broker) { cfg.MaxPending = 0 }},
		{"no publish timeout", func(cfg *config.Broker) { cfg.PublishTimeout = 0 }},
		{"bad listen", func(cfg *config.Broker) { cfg.Embedded.Listen = "localhost" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			tt.change(&cfg)
			if c, err := Open(t.Context(), cfg, "test", testLogger(t)); err == nil {
				c.Close()
				t.Fatal("Open succeeded, want an error")
			}
		})
	}
}

func TestReopenKeepsMessages(t *testing.T) {
	cfg := testConfig(t)
	for round := 1; round <= 3; round++ {
		c, err := Open(t.Context(), cfg, "test", testLogger(t))
		if err != nil {
			t.Fatalf("Open #%d: %v", round, err)
		}
		if n := streamMsgs(t, c); n != uint64(round-1) {
			t.Errorf("Open #%d: stream holds %d messages, want %d", round, n, round-1)
		}
		m := messages(t, round)[round-1]
		if r := publishOne(t, c, m); r.Sequence != uint64(round) {
			t.Errorf("Open #%d: sequence %d, want %d", round, r.Sequence, round)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("Close #%d: %v", round, err)
		}
	}
}

func TestOpenKeepsOperatorSettings(t *testing.T) {
	cfg := testConfig(t)
	c, err := Open(t.Context(), cfg, "test", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	sc := c.setup.lastStream().CachedInfo().Config
	sc.MaxAge = time.Hour
	if _, err := c.JetStream().UpdateStream(t.Context(), sc); err != nil {
		t.Fatalf("operator's UpdateStream: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.DuplicateWindow = time.Minute
	cfg.SubjectPrefix = "ev"
	c = open(t, cfg)
	got := c.setup.lastStream().CachedInfo().Config
	if got.MaxAge != time.Hour || got.Duplicates != time.Minute || len(got.Subjects) != 1 || got.Subjects[0] != "ev.>" {
		t.Errorf("stream MaxAge %s Duplicates %s Subjects %q, want 1h, 1m, [ev.>]", got.MaxAge, got.Duplicates, got.Subjects)
	}
	if got.Storage != jetstream.FileStorage {
		t.Errorf("storage = %s, want file", got.Storage)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	c, err := Open(t.Context(), testConfig(t), "test", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	publishOne(t, c, messages(t, 1)[0])
	for i := range 2 {
		if err := c.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if c.server.Running() {
		t.Error("embedded server still running after Close")
	}
	if !c.Conn().IsClosed() {
		t.Error("connection not closed after Close")
	}
	if r := c.Publish(t.Context(), messages(t, 1)); !errors.Is(r[0].Err, ErrUnavailable) {
		t.Errorf("Publish after Close = %+v, want ErrUnavailable", r[0])
	}
	if err := c.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "CLOSED") {
		t.Errorf("Ready after Close = %v, want not connected (CLOSED)", err)
	}
	waitFor(t, 5*time.Second, "no goroutine of broker.Client", func() error {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if strings.Contains(stacks, "broker.(*Client)") {
			return errors.New("a goroutine still runs broker.(*Client) code:\n" + stacks)
		}
		return nil
	})
}

func TestEmbeddedListen(t *testing.T) {
	cfg := testConfig(t)
	cfg.Embedded.Listen = "127.0.0.1:0"
	c := open(t, cfg)
	url := c.EmbeddedURL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || strings.HasSuffix(url, ":0") {
		t.Fatalf("EmbeddedURL = %q, want nats://127.0.0.1:<port>", url)
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to EmbeddedURL: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.PublishMsg(t.Context(), Encode(c.Subject("orders.created"), messages(t, 1)[0]))
	if err != nil || ack.Stream != "EVENTS" {
		t.Fatalf("publish through EmbeddedURL = %+v, %v; want stored in EVENTS", ack, err)
	}
}

func TestStoreDirHasOneOwner(t *testing.T) {
	cfg := testConfig(t)
	first := open(t, cfg)
	publishOne(t, first, messages(t, 1)[0])
	before := storeFiles(t, cfg.Embedded.StoreDir)

	second := cfg
	second.Embedded.Listen = "127.0.0.1:0"
	c, err := Start(t.Context(), second, "second", testLogger(t))
	if err == nil {
		c.Close()
		t.Fatal("a second Client on the same store_dir started, want an error")
	}
	want := fmt.Sprintf("store_dir %s is in use by another process (pid %d)", cfg.Embedded.StoreDir, os.Getpid())
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
	if after := storeFiles(t, cfg.Embedded.StoreDir); !maps.Equal(before, after) {
		t.Errorf("the refused start changed the store:\nbefore %v\nafter  %v", before, after)
	}
	if n := streamMsgs(t, first); n != 1 {
		t.Errorf("the first Client's stream holds %d messages, want 1", n)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again := open(t, cfg) // the lock went with the first Client
	if n := streamMsgs(t, again); n != 1 {
		t.Errorf("reopened stream holds %d messages, want 1", n)
	}
}

// storeFiles is the set of files under dir, with the lock file's content
// (the others' contents are the running broker's to change).
func storeFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files[path] = ""
		if d.Name() == lockFile {
			b, err := os.ReadFile(path)
			files[path] = string(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

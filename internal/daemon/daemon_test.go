package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/poll"
	"github.com/eventsidecar/eventsidecar/internal/syncbuf"
)

// wait bounds every wait of these tests: starting the embedded broker,
// a delivery, a shutdown.
const wait = 60 * time.Second

// testConfig is the defaults on random loopback ports, the embedded
// broker in a temporary directory and one subscription to endpoint.
func testConfig(t *testing.T, endpoint string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.AppID = "daemon-test"
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.GRPC.Listen = "127.0.0.1:0"
	cfg.HTTP.HealthListen = "127.0.0.1:0"
	cfg.Broker.Embedded.StoreDir = filepath.Join(t.TempDir(), "jetstream")
	sub := config.DefaultSubscription()
	sub.Name, sub.Topic, sub.Endpoint = "orders-handler", "orders.>", endpoint
	cfg.Subscriptions = []config.Subscription{sub}
	return cfg
}

// testLogger logs to a buffer that is printed when the test fails. (Not
// to t: tracing keeps the logger process-wide after the test.)
func testLogger(t *testing.T) (*slog.Logger, *syncbuf.Buffer) {
	t.Helper()
	buf := &syncbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", buf)
		}
	})
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// delivery is one request the app received.
type delivery struct {
	header http.Header
	body   string
}

// newApp is a webhook that answers 200 and hands each delivery to the
// returned channel.
func newApp(t *testing.T) (*httptest.Server, <-chan delivery) {
	t.Helper()
	got := make(chan delivery, 16)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case got <- delivery{header: r.Header.Clone(), body: string(body)}:
		default:
		}
	}))
	t.Cleanup(app.Close)
	return app, got
}

// running is a Run in progress.
type running struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned err
	err    error
}

// start runs m until stop, or until the test ends.
func start(t *testing.T, m *Main) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = m.Run(ctx)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run's context and returns what Run returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(wait):
		t.Fatalf("Run did not return within %s of its context ending", wait)
		return nil
	}
}

// waitReady polls GET /readyz until it answers 200, failing at once if
// Run returns first.
func (r *running) waitReady(t *testing.T, base string) {
	t.Helper()
	poll.Until(t, wait, "GET /readyz answers 200", func() bool {
		select {
		case <-r.done:
			t.Fatalf("Run returned before the daemon was ready: %v", r.err)
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// publish posts one binary-mode event and returns its stored sequence.
func publish(t *testing.T, base, topic, id string) uint64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/publish/"+topic, strings.NewReader(`{"order":1}`))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": id, "ce-source": "/daemon-test",
		"ce-type": "com.example.order.created", "Content-Type": "application/json"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		ID       string `json:"id"`
		Sequence uint64 `json:"sequence"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != http.StatusOK || r.ID != id {
		t.Fatalf("publish: %d %+v (%v), want 200 with id %s", resp.StatusCode, r, err, id)
	}
	return r.Sequence
}

func TestRunPublishesDeliversAndStops(t *testing.T) {
	app, got := newApp(t)
	log, logs := testLogger(t)
	m, err := New(testConfig(t, app.URL+"/events"), log)
	if err != nil {
		t.Fatal(err)
	}
	a := m.Addrs()
	if a.HTTP == nil || a.GRPC == nil || a.Health == nil || strings.HasSuffix(a.HTTP.String(), ":0") {
		t.Fatalf("Addrs() = %+v, want the three bound addresses", a)
	}
	r := start(t, m)
	base := "http://" + a.HTTP.String()
	r.waitReady(t, base)
	if resp, err := http.Get("http://" + a.Health.String() + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz on the health listener: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}

	if seq := publish(t, base, "orders.created", "d-1"); seq != 1 {
		t.Errorf("sequence = %d, want 1", seq)
	}
	select {
	case d := <-got:
		if d.header.Get("ce-id") != "d-1" || d.header.Get("ce-source") != "/daemon-test" || d.body != `{"order":1}` {
			t.Errorf("delivery = %v %q, want event d-1 from /daemon-test with its data", d.header, d.body)
		}
	case <-time.After(wait):
		t.Fatalf("no delivery within %s", wait)
	}

	if err := r.stop(t); err != nil {
		t.Errorf("Run = %v, want nil after a graceful stop", err)
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Error(`the log lacks "stopped"`)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("GET /healthz after Run returned: answered, want a connection error")
	}
	for i := range 2 {
		if err := m.Close(); err != nil {
			t.Errorf("Close #%d after Run = %v, want nil", i+1, err)
		}
	}
	if err := m.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("a second Run = %v, want ErrClosed", err)
	}
}

func TestNewBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	tests := []struct {
		name string
		set  func(*config.Config)
		want string
	}{
		{"http", func(c *config.Config) { c.HTTP.Listen = addr }, "listen http " + addr},
		{"grpc", func(c *config.Config) { c.GRPC.Listen = addr }, "listen grpc " + addr},
		{"health", func(c *config.Config) { c.HTTP.HealthListen = addr }, "listen health " + addr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, "http://127.0.0.1:1/events")
			tt.set(&cfg)
			log, _ := testLogger(t)
			m, err := New(cfg, log)
			if err == nil {
				m.Close()
				t.Fatalf("New on a busy %s port succeeded, want an error", tt.name)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want an error naming %q", err, tt.want)
			}
			if _, err := os.Stat(cfg.Broker.Embedded.StoreDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("store_dir after a busy port: %v, want it not created", err)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/events")
	cfg.Log.Level = "loud"
	log, _ := testLogger(t)
	if m, err := New(cfg, log); err == nil || !strings.Contains(err.Error(), "log.level") {
		if m != nil {
			m.Close()
		}
		t.Errorf("New with log.level loud = %v, want an error naming log.level", err)
	}
}

func TestCloseWithoutRun(t *testing.T) {
	log, _ := testLogger(t)
	m, err := New(testConfig(t, "http://127.0.0.1:1/events"), log)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := m.Close(); err != nil {
			t.Errorf("Close #%d = %v, want nil", i+1, err)
		}
	}
	for _, a := range []net.Addr{m.Addrs().HTTP, m.Addrs().GRPC, m.Addrs().Health} {
		ln, err := net.Listen("tcp", a.String())
		if err != nil {
			t.Errorf("after Close, %s is still bound: %v", a, err)
			continue
		}
		ln.Close()
	}
	if err := m.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close = %v, want ErrClosed", err)
	}
}

func TestRunFailsOnUnusableStore(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/events")
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Broker.Embedded.StoreDir = filepath.Join(file, "jetstream")
	log, _ := testLogger(t)
	m, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	err = m.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), cfg.Broker.Embedded.StoreDir) {
		t.Errorf("Run with store_dir under a file = %v, want an error naming the store_dir", err)
	}
	if ctx.Err() != nil {
		t.Errorf("Run returned only when its context ended (%v), want at once", ctx.Err())
	}
	ln, err := net.Listen("tcp", m.Addrs().HTTP.String())
	if err != nil {
		t.Fatalf("after Run failed, %s is still bound: %v", m.Addrs().HTTP, err)
	}
	ln.Close()
}

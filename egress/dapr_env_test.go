package egress

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dapr"
	"github.com/eventsidecar/eventsidecar/internal/poll"
	"github.com/eventsidecar/eventsidecar/internal/syncbuf"
)

// daprAppID is the app id of the Dapr apps of these tests.
const daprAppID = "shop"

// daprRequest is one delivery a Dapr app got.
type daprRequest struct {
	path     string
	header   http.Header
	body     []byte
	envelope map[string]any
}

// id is the delivered event's id.
func (r daprRequest) id() string { s, _ := r.envelope["id"].(string); return s }

// daprAnswer is how a test app answers one delivery: n counts the
// deliveries of the same event id, 1 for the first.
type daprAnswer func(path string, n int) (status int, body string)

// answering always answers status with body.
func answering(status int, body string) daprAnswer {
	return func(string, int) (int, string) { return status, body }
}

// daprApp is a Dapr app: GET /dapr/subscribe answers subscribeStatus with
// subscribe (its first answer, when subscribeFirst is set, is that
// instead), every POST is recorded and answered by answer.
type daprApp struct {
	subscribe      string
	subscribeFirst int // a status the first GET /dapr/subscribe answers; 0: none
	answer         daprAnswer

	mu    sync.Mutex
	asked int
	reqs  []daprRequest
	perID map[string]int
}

func (a *daprApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.Method == http.MethodGet && r.URL.Path == "/dapr/subscribe" {
		a.asked++
		switch {
		case a.asked == 1 && a.subscribeFirst != 0:
			w.WriteHeader(a.subscribeFirst)
		case a.subscribe == "":
			http.NotFound(w, r)
		default:
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_, _ = io.WriteString(w, a.subscribe)
		}
		return
	}
	req := daprRequest{path: r.URL.Path, header: r.Header.Clone(), body: body}
	_ = json.Unmarshal(body, &req.envelope)
	a.reqs = append(a.reqs, req)
	if a.perID == nil {
		a.perID = map[string]int{}
	}
	a.perID[req.id()]++
	status, answer := a.answer(req.path, a.perID[req.id()])
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

func (a *daprApp) requests() []daprRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]daprRequest(nil), a.reqs...)
}

// serve serves a on a new httptest server, or on addr when given.
func (a *daprApp) serve(t *testing.T, addr string) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(a)
	if addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on %s again: %v", addr, err)
		}
		_ = srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// daprConfig is the configuration of the app daprAppID at addr (host:port)
// with quick retries.
func daprConfig(t *testing.T, addr string) config.Config {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.AppID = daprAppID
	cfg.Dapr.AppHost = host
	cfg.Dapr.AppPort, _ = strconv.Atoi(port)
	cfg.Dapr.Subscription.Timeout = 5 * time.Second
	cfg.Dapr.Subscription.Retry.InitialBackoff = 5 * time.Millisecond
	cfg.Dapr.Subscription.Retry.MaxBackoff = 20 * time.Millisecond
	return cfg
}

// newDaprApp is the DaprApp of cfg, logging to log.
func newDaprApp(t *testing.T, cfg config.Config, log *syncbuf.Buffer) *DaprApp {
	t.Helper()
	app, err := NewDaprApp(cfg, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("NewDaprApp: %v", err)
	}
	return app
}

// startDapr runs a Manager with no configured subscriptions and attaches
// the subscriptions of the Dapr app a (served here) and declared; it
// returns once they are attached.
func (e *env) startDapr(a *daprApp, cfgs ...func(*config.Config)) (*running, *DaprApp) {
	e.t.Helper()
	srv := a.serve(e.t, "")
	cfg := daprConfig(e.t, strings.TrimPrefix(srv.URL, "http://"))
	for _, f := range cfgs {
		f(&cfg)
	}
	r := e.start()
	app := newDaprApp(e.t, cfg, &syncbuf.Buffer{})
	if err := r.RunDapr(e.t.Context(), app, nil); err != nil {
		e.t.Fatalf("RunDapr: %v", err)
	}
	return r, app
}

// delivering waits until the named subscription's consumer is in place
// and its dispatcher delivers.
func (e *env) delivering(r *running, name string) {
	e.t.Helper()
	poll.Until(e.t, 10*time.Second, name+" in place", func() bool {
		for _, st := range r.Stats(context.Background()) {
			if st.Name == name {
				return e.hasConsumer(name)
			}
		}
		return false
	})
}

// hasConsumer reports whether the named consumer exists.
func (e *env) hasConsumer(name string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := e.b.JetStream().Consumer(ctx, e.cfg.Stream, name)
	return err == nil
}

// stats is the named subscription's Stats.
func stats(t *testing.T, r *running, name string) Stats {
	t.Helper()
	for _, st := range r.Stats(context.Background()) {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("no subscription %q in %+v", name, r.Stats(context.Background()))
	return Stats{}
}

// daprName is the sidecar's name of the Dapr subscription to topic of
// the pub/sub "pubsub".
func daprName(topic string) string {
	return dapr.Subscription{PubSub: "pubsub", Topic: topic}.Name(daprAppID)
}

package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/apitest"
	"github.com/eventsidecar/eventsidecar/problem"
	"github.com/eventsidecar/eventsidecar/server"
)

// publishRoute serves POST /publish/{topic} as the publish path's route
// (ingress.Server serves it for real, and has its tests): it counts the
// requests that reach it and answers 200, or holds each until released
// when gated.
type publishRoute struct {
	reached atomic.Int64
	// arrived and release, when set, hold every request: it sends on
	// arrived, then waits for release to be closed.
	arrived chan struct{}
	release chan struct{}
}

var _ server.Mounter = (*publishRoute)(nil)

func (p *publishRoute) Routes(r chi.Router) {
	r.Post("/publish/{topic}", func(w http.ResponseWriter, r *http.Request) {
		p.reached.Add(1)
		if p.arrived != nil {
			p.arrived <- struct{}{}
			<-p.release
		}
		problem.WriteJSON(w, http.StatusOK, map[string]string{"topic": chi.URLParam(r, "topic")})
	})
}

// rejections records what the server counts through Handlers.Rejected.
type rejections struct {
	mu    sync.Mutex
	codes []problem.Code
}

func (r *rejections) add(c problem.Code) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.codes = append(r.codes, c)
}

// take returns the codes counted since the last take.
func (r *rejections) take() []problem.Code {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.codes
	r.codes = nil
	return c
}

// testServer is a Server over h, its Handler served by httptest.
type testServer struct {
	t        *testing.T
	cfg      config.HTTP
	api      *server.Server
	url      string
	rejected *rejections
}

// newServer returns a Server over h under the default http.* keys, changed
// by mutate; h.Ready defaults to always ready, h.Rejected to recording in
// rejected.
func newServer(t *testing.T, mutate func(*config.HTTP), h server.Handlers) *testServer {
	t.Helper()
	cfg := config.Default().HTTP
	if mutate != nil {
		mutate(&cfg)
	}
	rej := &rejections{}
	if h.Ready == nil {
		h.Ready = func(context.Context) error { return nil }
	}
	if h.Rejected == nil {
		h.Rejected = rej.add
	}
	api := server.New(cfg, h, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return &testServer{t: t, cfg: cfg, api: api, url: srv.URL, rejected: rej}
}

// serve runs serve (Serve, ServeGRPC or ServeHealth) on a loopback port
// and returns its address, and stop, which ends serve's context and
// returns what serve returned. The test's end stops it too.
func serve(t *testing.T, serve func(context.Context, net.Listener) error) (addr string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	var once sync.Once
	var served error
	stop = func() error {
		once.Do(func() {
			cancel()
			served = <-done
		})
		return served
	}
	t.Cleanup(func() { _ = stop() })
	return ln.Addr().String(), stop
}

// do sends a request to url with the given headers ("Name: value" pairs).
func do(t *testing.T, method, url, body string, hdrs ...string) *http.Response {
	t.Helper()
	return apitest.Do(t, http.DefaultClient, method, url, body, hdrs...)
}

// answer reads resp's JSON body after checking its status.
func answer(t *testing.T, resp *http.Response, status int) map[string]any {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status {
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s answer %q: %v", resp.Status, body, err)
	}
	return v
}

// wantProblemType checks that resp is status problem JSON of the given
// type, and returns its detail.
func wantProblemType(t *testing.T, resp *http.Response, status int, typ string) string {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	p := answer(t, resp, status)
	if p["type"] != "urn:eventsidecar:problem:"+typ {
		t.Errorf("problem type = %v, want %s", p["type"], typ)
	}
	detail, _ := p["detail"].(string)
	return detail
}

// errNotReady is a readiness check's failure.
var errNotReady = errors.New("broker: not connected")

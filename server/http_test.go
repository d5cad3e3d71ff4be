package server_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/poll"
	"github.com/eventsidecar/eventsidecar/problem"
	"github.com/eventsidecar/eventsidecar/server"
)

func TestHealthAndReady(t *testing.T) {
	s := newServer(t, nil, server.Handlers{})
	answer(t, do(t, http.MethodGet, s.url+"/healthz", ""), http.StatusOK)
	if got := answer(t, do(t, http.MethodGet, s.url+"/readyz", ""), http.StatusOK); got["ready"] != true {
		t.Errorf("readyz = %v, want ready true", got)
	}
	s.api.Stopping()
	if got := answer(t, do(t, http.MethodGet, s.url+"/readyz", ""), http.StatusServiceUnavailable); got["reason"] != "shutting down" {
		t.Errorf("readyz while stopping = %v, want reason shutting down", got)
	}
	answer(t, do(t, http.MethodGet, s.url+"/healthz", ""), http.StatusOK)
}

func TestReadyFalseWhenCheckFails(t *testing.T) {
	var deadline atomic.Bool
	s := newServer(t, nil, server.Handlers{Ready: func(ctx context.Context) error {
		_, ok := ctx.Deadline()
		deadline.Store(ok)
		return errNotReady
	}})
	got := answer(t, do(t, http.MethodGet, s.url+"/readyz", ""), http.StatusServiceUnavailable)
	if got["ready"] != false || got["reason"] != errNotReady.Error() {
		t.Errorf("readyz = %v, want ready false with the check's reason", got)
	}
	if !deadline.Load() {
		t.Error("readiness check without a deadline")
	}
}

func TestUnknownPathAndMethodAreProblems(t *testing.T) {
	s := newServer(t, nil, server.Handlers{Publish: &publishRoute{}})
	wantProblemType(t, do(t, http.MethodGet, s.url+"/nope", ""), http.StatusNotFound, "not_found")
	wantProblemType(t, do(t, http.MethodGet, s.url+"/v1/publish/orders.created", ""), http.StatusMethodNotAllowed, "method_not_allowed")
}

func TestToken(t *testing.T) {
	pub := &publishRoute{}
	s := newServer(t, func(c *config.HTTP) { c.APIToken = "s3cret" }, server.Handlers{Publish: pub})
	tests := []struct {
		name  string
		auth  []string
		want  int
		wantN int64
	}{
		{"missing", nil, http.StatusUnauthorized, 0},
		{"wrong", []string{"Authorization: Bearer nope"}, http.StatusUnauthorized, 0},
		{"wrong scheme", []string{"Authorization: Basic s3cret"}, http.StatusUnauthorized, 0},
		{"twice", []string{"Authorization: Bearer s3cret", "Authorization: Bearer s3cret"}, http.StatusUnauthorized, 0},
		{"right", []string{"Authorization: Bearer s3cret"}, http.StatusOK, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub.reached.Store(0)
			resp := do(t, http.MethodPost, s.url+"/v1/publish/a", "x", tt.auth...)
			var wantRejected []problem.Code
			if tt.want == http.StatusUnauthorized {
				wantProblemType(t, resp, tt.want, "unauthorized")
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				wantRejected = []problem.Code{problem.CodeUnauthorized}
			} else {
				answer(t, resp, tt.want)
			}
			if n := pub.reached.Load(); n != tt.wantN {
				t.Errorf("publishes reached = %d, want %d", n, tt.wantN)
			}
			if got := s.rejected.take(); !slices.Equal(got, wantRejected) {
				t.Errorf("rejections counted = %v, want %v", got, wantRejected)
			}
		})
	}
	answer(t, do(t, http.MethodGet, s.url+"/healthz", ""), http.StatusOK)
}

// adminRoutes answers 200 on the admin API's routes (egress.Admin serves
// them for real, and has their tests): the server's part is mounting them
// under /v1, behind the token, beside the publish route.
type adminRoutes struct{}

var _ server.Mounter = adminRoutes{}

func (adminRoutes) Routes(r chi.Router) {
	ok := func(w http.ResponseWriter, _ *http.Request) { problem.WriteJSON(w, http.StatusOK, map[string]int{}) }
	r.Get("/subscriptions", ok)
	r.Get("/subscriptions/{name}/deadletters", ok)
	r.Delete("/subscriptions/{name}/deadletters", ok)
	r.Post("/subscriptions/{name}/deadletters/replay", ok)
}

func TestAdminToken(t *testing.T) {
	s := newServer(t, func(c *config.HTTP) { c.APIToken = "s3cret" }, server.Handlers{Publish: &publishRoute{}, Admin: adminRoutes{}})
	requests := []struct{ method, path, body string }{
		{http.MethodGet, "/v1/subscriptions", ""},
		{http.MethodGet, "/v1/subscriptions/orders/deadletters", ""},
		{http.MethodPost, "/v1/subscriptions/orders/deadletters/replay", `{"ids":["nope"]}`},
		{http.MethodDelete, "/v1/subscriptions/orders/deadletters?id=nope", ""},
		{http.MethodPost, "/v1/publish/orders.created", "{}"},
	}
	auths := []struct {
		name string
		auth []string
		want int
	}{
		{"missing", nil, http.StatusUnauthorized},
		{"wrong", []string{"Authorization: Bearer nope"}, http.StatusUnauthorized},
		{"right", []string{"Authorization: Bearer s3cret"}, http.StatusOK},
	}
	for _, a := range auths {
		for _, r := range requests {
			t.Run(a.name+" "+r.method+" "+r.path, func(t *testing.T) {
				answer(t, do(t, r.method, s.url+r.path, r.body, a.auth...), a.want)
			})
		}
	}
}

func TestNoTokenConfiguredIsOpen(t *testing.T) {
	pub := &publishRoute{}
	s := newServer(t, nil, server.Handlers{Publish: pub})
	answer(t, do(t, http.MethodPost, s.url+"/v1/publish/a", "x", "Authorization: Bearer anything"), http.StatusOK)
	answer(t, do(t, http.MethodPost, s.url+"/v1/publish/a", "x"), http.StatusOK)
	if n := pub.reached.Load(); n != 2 {
		t.Errorf("publishes reached = %d, want 2", n)
	}
}

func TestOversizedHeadersAnswer431(t *testing.T) {
	pub := &publishRoute{}
	s := newServer(t, nil, server.Handlers{Publish: pub})
	addr, _ := serve(t, s.api.Serve)
	tests := []struct {
		name string
		size int
		want int
	}{
		{"within the limit", 60 << 10, http.StatusOK},
		{"over the limit", 65 << 10, http.StatusRequestHeaderFieldsTooLarge},
		{"far over the limit", 900 << 10, http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := do(t, http.MethodPost, "http://"+addr+"/v1/publish/orders.created", "{}", "X-Padding: "+strings.Repeat("p", tt.size))
			if tt.want == http.StatusOK {
				answer(t, resp, http.StatusOK)
				return
			}
			if detail := wantProblemType(t, resp, tt.want, "headers_too_large"); !strings.Contains(detail, "limit of 65536") {
				t.Errorf("detail %q does not name the limit", detail)
			}
			if got := s.rejected.take(); !slices.Equal(got, []problem.Code{problem.CodeHeadersTooLarge}) {
				t.Errorf("rejections counted = %v, want headers_too_large once", got)
			}
		})
	}
	if n := pub.reached.Load(); n != 1 {
		t.Errorf("publishes reached = %d, want 1", n)
	}
}

func TestShutdownFlipsReadinessAndFinishesInFlight(t *testing.T) {
	pub := &publishRoute{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	s := newServer(t, nil, server.Handlers{Publish: pub})
	addr, stop := serve(t, s.api.Serve)
	answer := make(chan *http.Response, 1)
	go func() {
		resp, err := http.Post("http://"+addr+"/v1/publish/orders.created", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Errorf("in-flight publish: %v", err)
		}
		answer <- resp
	}()
	<-pub.arrived
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	poll.Until(t, 5*time.Second, "readiness flips after shutdown began", func() bool {
		return do(t, http.MethodGet, s.url+"/readyz", "").StatusCode == http.StatusServiceUnavailable
	})
	close(pub.release)
	resp := <-answer
	if resp == nil {
		t.FailNow()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("in-flight publish answered %d, want 200", resp.StatusCode)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve = %v", err)
	}
}

func TestShutdownTimeoutIsAnError(t *testing.T) {
	pub := &publishRoute{arrived: make(chan struct{}, 1), release: make(chan struct{})}
	s := newServer(t, func(c *config.HTTP) { c.ShutdownTimeout = 50 * time.Millisecond }, server.Handlers{Publish: pub})
	addr, stop := serve(t, s.api.Serve)
	defer close(pub.release)
	go func() {
		if resp, err := http.Post("http://"+addr+"/v1/publish/a", "application/json", strings.NewReader("{}")); err == nil {
			resp.Body.Close()
		}
	}()
	<-pub.arrived
	if err := stop(); err == nil || !strings.Contains(err.Error(), "http: shut down") {
		t.Errorf("Serve with a request outlasting http.shutdown_timeout = %v, want a shut-down error", err)
	}
}

func TestServeFailsOnAClosedListener(t *testing.T) {
	s := newServer(t, nil, server.Handlers{})
	for name, serveOn := range map[string]func(context.Context, net.Listener) error{
		"http": s.api.Serve, "health": s.api.ServeHealth, "gRPC": s.api.ServeGRPC,
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln.Close()
			err = serveOn(context.Background(), ln)
			if err == nil || !strings.Contains(err.Error(), "server: "+name+": serve") {
				t.Errorf("serve on a closed listener = %v, want an error naming %s", err, name)
			}
		})
	}
}

func TestServeHealthServesOnlyHealth(t *testing.T) {
	s := newServer(t, nil, server.Handlers{Publish: &publishRoute{}})
	addr, stop := serve(t, s.api.ServeHealth)
	base := "http://" + addr
	answer(t, do(t, http.MethodGet, base+"/healthz", ""), http.StatusOK)
	answer(t, do(t, http.MethodGet, base+"/readyz", ""), http.StatusOK)
	for _, path := range []string{"/metrics", "/v1/publish/a"} {
		if detail := wantProblemType(t, do(t, http.MethodPost, base+path, "{}"), http.StatusNotFound, "not_found"); !strings.Contains(detail, "only /healthz and /readyz") {
			t.Errorf("%s: detail %q", path, detail)
		}
	}
	if err := stop(); err != nil {
		t.Errorf("ServeHealth = %v", err)
	}
}

func TestMetricsServesTheGatherer(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "eventsidecar_test_total", Help: "A counter of the test's."})
	reg.MustRegister(c)
	c.Add(3)
	api := server.New(config.Default().HTTP, server.Handlers{Ready: func(context.Context) error { return nil }}, reg, slog.New(slog.DiscardHandler))
	rec := httptest.NewRecorder()
	api.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "eventsidecar_test_total 3") {
		t.Errorf("/metrics = %d %s, want the gatherer's counter", rec.Code, rec.Body)
	}
}

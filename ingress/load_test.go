package ingress

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/apitest"
)

func TestOverloadAnswers429(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Broker.MaxPending = 1 })
	body := `[{"specversion":"1.0","id":"1","source":"/s","type":"t"},{"specversion":"1.0","id":"2","source":"/s","type":"t"}]`
	resp := h.post("/v1/publish/orders.a", body, "Content-Type: application/cloudevents-batch+json")
	wantProblem(t, resp, http.StatusTooManyRequests, "not every entry")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if n := h.stored(); n != 0 {
		t.Errorf("stored = %d, want 0", n)
	}
}

func TestMetricsMove(t *testing.T) {
	h := newHarness(t, nil)
	apitest.WantStatus(t, h.post("/v1/publish/orders.created", "{}", binaryEvent...), http.StatusOK)
	apitest.WantStatus(t, h.post("/v1/publish/orders.created", "{}", binaryEvent...), http.StatusOK)
	apitest.WantStatus(t, h.post("/v1/publish/orders.*", "{}", binaryEvent...), http.StatusBadRequest)
	resp := h.get("/metrics")
	apitest.WantStatus(t, resp, http.StatusOK)
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(raw)
	for _, want := range []string{
		`eventsidecar_events_published_total{mode="binary"} 1`,
		`eventsidecar_events_duplicate_total{mode="binary"} 1`,
		`eventsidecar_publish_rejected_total{reason="invalid"} 1`,
		`eventsidecar_publish_duration_seconds_count{mode="binary"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// gate holds every publish until released, then passes it to the broker.
type gate struct {
	next    Publisher
	arrived chan struct{}
	release chan struct{}
}

func (g *gate) Publish(ctx context.Context, msgs []broker.Message) []broker.Receipt {
	g.arrived <- struct{}{}
	<-g.release
	return g.next.Publish(ctx, msgs)
}

func TestShutdownFlipsReadinessAndFinishesInFlight(t *testing.T) {
	base := newHarness(t, nil)
	g := &gate{next: base.broker, arrived: make(chan struct{}, 1), release: make(chan struct{})}
	h := newHarnessOn(t, base.cfg, base.broker, g, nil, nil, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- h.api.Serve(ctx, ln) }()

	answer := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/v1/publish/orders.created", strings.NewReader("{}"))
		for _, kv := range binaryEvent {
			k, v, _ := strings.Cut(kv, ":")
			req.Header.Set(k, strings.TrimSpace(v))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("in-flight publish: %v", err)
			close(answer)
			return
		}
		answer <- resp
	}()
	<-g.arrived
	stop()
	deadline := time.Now().Add(5 * time.Second)
	for h.readyStatus() != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("readiness did not flip after shutdown began")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(g.release)
	resp := <-answer
	if resp == nil {
		t.FailNow()
	}
	defer resp.Body.Close()
	apitest.WantStatus(t, resp, http.StatusOK)
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
	if n := base.stored(); n != 1 {
		t.Errorf("stored = %d, want 1", n)
	}
}

func (h *harness) readyStatus() int {
	rec := httptest.NewRecorder()
	h.api.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code
}

func TestInFlightBytesBound(t *testing.T) {
	base := newHarness(t, func(c *config.Config) { c.HTTP.MaxInFlightBytes = 100 })
	g := &gate{next: base.broker, arrived: make(chan struct{}, 1), release: make(chan struct{})}
	h := newHarnessOn(t, base.cfg, base.broker, g, nil, nil, slog.New(slog.DiscardHandler))
	body := strings.Repeat("x", 60)
	held := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, h.srv.URL+"/v1/publish/orders.created", strings.NewReader(body))
		for _, kv := range binaryEvent {
			k, v, _ := strings.Cut(kv, ":")
			req.Header.Set(k, strings.TrimSpace(v))
		}
		resp, err := h.srv.Client().Do(req)
		if err != nil {
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	<-g.arrived
	resp := h.post("/v1/publish/orders.created", body, append(binaryEvent[1:], "ce-specversion: 1.0")...)
	wantProblem(t, resp, http.StatusTooManyRequests, "max_in_flight_bytes")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	close(g.release)
	if code := <-held; code != http.StatusOK {
		t.Errorf("held publish answered %d, want 200", code)
	}
	apitest.WantStatus(t, h.post("/v1/publish/orders.created", body, binaryEvent...), http.StatusOK)
}

func TestMalformedBodies(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name, body, contentType, detail string
	}{
		{"structured not JSON", "{", "application/cloudevents+json", "JSON"},
		{"batch not an array", `{"specversion":"1.0"}`, "application/cloudevents-batch+json", "array"},
		{"batch entry not an object", `[1]`, "application/cloudevents-batch+json", "object"},
		{"empty batch", `[]`, "application/cloudevents-batch+json", "at least one event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := wantProblem(t, h.post("/v1/publish/orders.a", tt.body, "Content-Type: "+tt.contentType), 400, tt.detail)
			for _, e := range p.Errors {
				if strings.HasPrefix(e.Detail, ":") {
					t.Errorf("entry detail %q starts with an empty field name", e.Detail)
				}
			}
		})
	}
	if n := h.stored(); n != 0 {
		t.Errorf("stored = %d, want 0", n)
	}
}

package tests

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// app is a webhook receiver in the test process: it answers with what
// status says and counts the 2xx answers per event id.
type app struct {
	*httptest.Server
	status    atomic.Int32
	mu        sync.Mutex
	delivered map[string]int
	attempts  int
	last      http.Header
}

func newApp(t *testing.T, status int) *app {
	t.Helper()
	a := &app{delivered: map[string]int{}}
	a.status.Store(int32(status))
	a.Server = httptest.NewServer(a)
	t.Cleanup(a.Close)
	return a
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	status := int(a.status.Load())
	a.mu.Lock()
	a.attempts++
	a.last = r.Header.Clone()
	if status/100 == 2 {
		a.delivered[r.Header.Get("ce-id")]++
	}
	a.mu.Unlock()
	w.WriteHeader(status)
}

// deliveredOnce reports whether every id was answered 2xx exactly once
// (and fails the test at once if one was delivered twice).
func (a *app) deliveredOnce(t *testing.T, ids []string) bool {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	done := true
	for _, id := range ids {
		switch n := a.delivered[id]; {
		case n > 1:
			t.Fatalf("event %s delivered %d times", id, n)
		case n == 0:
			done = false
		}
	}
	return done
}

func (a *app) attemptCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.attempts
}

func subscriptionConfig(endpoint string, retry string) string {
	return fmt.Sprintf(`subscriptions:
  - name: handler
    topic: "orders.>"
    endpoint: %s
    max_in_flight: 8
    timeout: 2s
    retry:
%s`, endpoint, retry)
}

const fastRetry = `      max_attempts: 1000
      initial_backoff: 20ms
      max_backoff: 100ms
`

func publishN(t *testing.T, sc *sidecar, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
		sc.mustPublish("/v1/publish/orders.created", fmt.Sprintf(`{"n":%d}`, i), "ce-specversion: 1.0",
			"ce-id: "+ids[i], "ce-source: /shop", "ce-type: t", "Content-Type: application/json")
	}
	return ids
}

func TestDeliveryRoundTrip(t *testing.T) {
	a := newApp(t, http.StatusOK)
	sc := startSidecar(t, embeddedConfig(t.TempDir(), subscriptionConfig(a.URL+"/events", fastRetry)))
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	sc.mustPublish("/v1/publish/orders.created", `{"n":1}`, "ce-specversion: 1.0", "ce-id: rt-1",
		"ce-source: /shop", "ce-type: t", "Content-Type: application/json",
		"traceparent: 00-"+traceID+"-00f067aa0ba902b7-01")
	poll.Until(t, 20*time.Second, "delivery", func() bool { return a.deliveredOnce(t, []string{"rt-1"}) })
	a.mu.Lock()
	h := a.last
	a.mu.Unlock()
	if tp := h.Get("traceparent"); !strings.Contains(tp, traceID) || strings.Contains(tp, "00f067aa0ba902b7") {
		t.Errorf("traceparent = %q, want a child in trace %s", tp, traceID)
	}
	if h.Get("eventsidecar-attempt") != "1" || h.Get("ce-source") != "/shop" {
		t.Errorf("delivery headers %v", h)
	}
	poll.Until(t, 10*time.Second, "delivery metrics", func() bool {
		_, metrics := sc.get("/metrics")
		return strings.Contains(string(metrics), `eventsidecar_deliveries_total{outcome="delivered",subscription="handler"} 1`) &&
			strings.Contains(string(metrics), `eventsidecar_delivery_duration_seconds_count{subscription="handler"} 1`) &&
			strings.Contains(string(metrics), `eventsidecar_deliveries_in_flight{subscription="handler"} 0`) &&
			strings.Contains(string(metrics), `eventsidecar_subscription_pending{subscription="handler"} 0`) &&
			strings.Contains(string(metrics), `eventsidecar_events_published_total{mode="binary"} 1`)
	})
	code, body := sc.get("/v1/subscriptions")
	var subs struct {
		Subscriptions []struct {
			Name      string
			Delivered int
		}
	}
	if err := json.Unmarshal(body, &subs); code != 200 || err != nil || len(subs.Subscriptions) != 1 || subs.Subscriptions[0].Delivered != 1 {
		t.Errorf("/v1/subscriptions = %d %s (%v)", code, body, err)
	}
}

func TestKill9WhileRetriesArePending(t *testing.T) {
	a := newApp(t, http.StatusServiceUnavailable)
	dir := t.TempDir()
	cfg := embeddedConfig(dir, subscriptionConfig(a.URL, fastRetry))
	sc := startSidecar(t, cfg)
	ids := publishN(t, sc, "k", 20)
	poll.Until(t, 20*time.Second, "retries under way", func() bool { return a.attemptCount() > 40 })
	sc.kill()

	a.status.Store(http.StatusOK)
	startSidecar(t, cfg)
	poll.Until(t, 60*time.Second, "every event delivered after the restart", func() bool { return a.deliveredOnce(t, ids) })
}

func TestTwoSidecarsShareASubscription(t *testing.T) {
	a := newApp(t, http.StatusOK)
	first := startSidecar(t, embeddedConfig(t.TempDir(), subscriptionConfig(a.URL, fastRetry)))
	second := startSidecar(t, urlConfig("e2e-2", first.natsURL, subscriptionConfig(a.URL, fastRetry)))
	ids := append(publishN(t, first, "one", 100), publishN(t, second, "two", 100)...)
	poll.Until(t, 60*time.Second, "every event delivered once in total", func() bool { return a.deliveredOnce(t, ids) })
	// Once the broker holds nothing unsettled, no second delivery can still come.
	settled(t, first.natsURL, "handler")
	if !a.deliveredOnce(t, ids) {
		t.Error("an event was not delivered")
	}
}

func TestAppDownThenUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// Two attempts: were the refused ones counted, every event would be
	// dead-lettered long before the app comes up.
	const twoAttempts = "      max_attempts: 2\n      initial_backoff: 20ms\n      max_backoff: 100ms\n"
	sc := startSidecar(t, embeddedConfig(t.TempDir(), subscriptionConfig("http://"+addr+"/events", twoAttempts)))
	ids := publishN(t, sc, "down", 30)
	poll.Until(t, 20*time.Second, "the subscription paused with the reason", func() bool {
		_, body := sc.get("/v1/subscriptions")
		return strings.Contains(string(body), `"state":"paused"`) &&
			strings.Contains(string(body), `"state_reason":"app unreachable: connection refused"`)
	})

	a := &app{delivered: map[string]int{}}
	a.status.Store(http.StatusOK)
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: a}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	poll.Until(t, 60*time.Second, "the backlog arrives", func() bool { return a.deliveredOnce(t, ids) })
	poll.Until(t, 20*time.Second, "the subscription delivering, nothing dead-lettered", func() bool {
		_, body := sc.get("/v1/subscriptions")
		return strings.Contains(string(body), `"state":"delivering"`) && strings.Contains(string(body), `"dead_lettered":0`)
	})
}

func TestSignedDeliveryVerifiesInListen(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	listen := exec.Command(binary, "listen", "--addr", addr, "--secret", secret, "--json")
	out, err := listen.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := listen.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = listen.Process.Kill(); _ = listen.Wait() })
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	sc := startSidecar(t, embeddedConfig(t.TempDir(), subscriptionConfig("http://"+addr+"/events", fastRetry)+
		"    signing_secret: "+secret+"\n"))
	sc.mustPublish("/v1/publish/orders.created", `{"n":1}`, "ce-specversion: 1.0", "ce-id: signed-1",
		"ce-source: /shop", "ce-type: t", "Content-Type: application/json")
	select {
	case line := <-lines:
		var d struct {
			Signature  string
			Attributes map[string]string
		}
		if err := json.Unmarshal([]byte(line), &d); err != nil || d.Signature != "valid" || d.Attributes["id"] != "signed-1" {
			t.Errorf("listen printed %s (%v); want a valid signature on signed-1", line, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("listen printed nothing; sidecar log:\n%s", sc.log())
	}
}

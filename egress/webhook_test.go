package egress

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/config"
)

// testSubscription is a subscription to endpoint with testRetry.
func testSubscription(endpoint string) config.Subscription {
	sub := config.DefaultSubscription()
	sub.Name = "orders-handler"
	sub.Topic = "orders.>"
	sub.Endpoint = endpoint
	sub.Timeout = 5 * time.Second
	sub.Retry = testRetry
	return sub
}

func newTestWebhook(t *testing.T, sub config.Subscription) *Webhook {
	t.Helper()
	w, err := NewWebhook(sub)
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	return w
}

func newServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// testEvent is an event as it comes from the stream.
func testEvent() *event.Event {
	ev := event.New()
	ev.SetID("evt-1")
	ev.SetSource("/orders")
	ev.SetType("com.example.order.created")
	ev.SetSubject("order-42")
	ev.SetTime(time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC))
	ev.SetDataContentType("application/json")
	ev.SetExtension("partitionkey", "customer-7")
	ev.DataEncoded = []byte(`{"order":42,"total":"9.99"}`)
	return &ev
}

func TestAttemptAnswers(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		header   map[string]string
		attempt  int
		want     Kind
		reason   string
		minDelay time.Duration
		maxDelay time.Duration // exclusive; 0: Delay must be 0
	}{
		{name: "200", status: 200, attempt: 1, want: Delivered, reason: "HTTP 200"},
		{name: "204", status: 204, attempt: 1, want: Delivered, reason: "HTTP 204"},
		{name: "301 not followed", status: 301, header: map[string]string{"Location": "/moved"}, attempt: 1, want: Retry, reason: "HTTP 301 (redirects are not followed)", maxDelay: 100 * time.Millisecond},
		{name: "400", status: 400, attempt: 1, want: Dead, reason: "HTTP 400"},
		{name: "404", status: 404, attempt: 1, want: Dead, reason: "HTTP 404"},
		{name: "410", status: 410, attempt: 1, want: Dead, reason: "HTTP 410"},
		{name: "415", status: 415, attempt: 1, want: Dead, reason: "HTTP 415"},
		{name: "408", status: 408, attempt: 2, want: Retry, reason: "HTTP 408", maxDelay: 200 * time.Millisecond},
		{name: "429 Retry-After seconds", status: 429, header: map[string]string{"Retry-After": "1"}, attempt: 1, want: Retry, reason: "HTTP 429", minDelay: time.Second, maxDelay: time.Second + 1},
		{name: "503 Retry-After HTTP-date", status: 503, header: map[string]string{"Retry-After": time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)}, attempt: 1, want: Retry, reason: "HTTP 503", maxDelay: 2*time.Second + 1},
		{name: "503 Retry-After beyond max_backoff", status: 503, header: map[string]string{"Retry-After": "120"}, attempt: 1, want: Retry, reason: "HTTP 503", minDelay: 2 * time.Second, maxDelay: 2*time.Second + 1},
		{name: "500", status: 500, attempt: 1, want: Retry, reason: "HTTP 500", maxDelay: 100 * time.Millisecond},
		{name: "502", status: 502, attempt: 2, want: Retry, reason: "HTTP 502", maxDelay: 200 * time.Millisecond},
		{name: "500 at the last attempt: the dispatcher gives up", status: 500, attempt: 3, want: Retry, reason: "HTTP 500", maxDelay: 400 * time.Millisecond},
	}
	var followed atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/moved", func(http.ResponseWriter, *http.Request) { followed.Store(true) })
	for _, tt := range tests {
		mux.HandleFunc("/"+strings.ReplaceAll(tt.name, " ", "-"), func(w http.ResponseWriter, _ *http.Request) {
			for k, v := range tt.header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(tt.status)
			fmt.Fprintf(w, "answer %d", tt.status)
		})
	}
	srv := newServer(t, mux)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTestWebhook(t, testSubscription(srv.URL+"/"+strings.ReplaceAll(tt.name, " ", "-")))
			got := w.Attempt(context.Background(), Delivery{Event: testEvent(), Attempt: tt.attempt})
			if got.Kind != tt.want || got.Status != tt.status || got.Reason != tt.reason {
				t.Errorf("Attempt = %+v, want %v, status %d, reason %q", got, tt.want, tt.status, tt.reason)
			}
			if got.Delay < tt.minDelay || (tt.maxDelay == 0 && got.Delay != 0) || (tt.maxDelay > 0 && got.Delay >= tt.maxDelay) {
				t.Errorf("Delay = %v, want within [%v, %v)", got.Delay, tt.minDelay, tt.maxDelay)
			}
			if want := fmt.Sprintf("answer %d", tt.status); tt.status != 204 && got.Body != want {
				t.Errorf("Body = %q, want %q", got.Body, want)
			}
			if got.Took <= 0 {
				t.Errorf("Took = %v, want > 0", got.Took)
			}
		})
	}
	if followed.Load() {
		t.Error("the redirect was followed")
	}
}

// blockingHandler answers nothing until the client goes away or release
// is closed; it signals each request on arrived when that is not nil. It
// reads the body first: only then does the server watch the connection and
// cancel the request's context when the client closes it.
func blockingHandler(arrived chan<- struct{}, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if arrived != nil {
			arrived <- struct{}{}
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
}

func TestAttemptTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newServer(t, blockingHandler(nil, release))
	t.Cleanup(func() { close(release) }) // before srv.Close
	sub := testSubscription(srv.URL)
	sub.Timeout = 100 * time.Millisecond
	w := newTestWebhook(t, sub)

	got := w.Attempt(context.Background(), Delivery{Event: testEvent(), Attempt: 1})
	if got.Kind != Retry || got.Cause != CauseFailure || got.Reason != "timeout after 100ms" || got.Status != 0 || got.Delay >= 100*time.Millisecond {
		t.Errorf("Attempt = %+v, want Retry, CauseFailure, timeout after 100ms, a backoff below 100ms", got)
	}
	if got.Took < sub.Timeout {
		t.Errorf("Took = %v, want at least the timeout %v", got.Took, sub.Timeout)
	}
}

// deadEndpoint returns an http URL on a port nothing listens on, with
// userinfo and a query that must not show in reasons.
func deadEndpoint(t *testing.T) string {
	t.Helper()
	return "http://user:hunter2@" + freeAddr(t) + "/events?token=abc"
}

func TestAttemptConnectionRefused(t *testing.T) {
	w := newTestWebhook(t, testSubscription(deadEndpoint(t)))
	for _, attempt := range []int{1, 3} {
		t.Run(fmt.Sprintf("attempt %d", attempt), func(t *testing.T) {
			got := w.Attempt(context.Background(), Delivery{Event: testEvent(), Attempt: attempt})
			if got.Kind != Retry || got.Cause != CauseUnreachable || got.Reason != "connection refused" || got.Status != 0 || got.Body != "" {
				t.Errorf("Attempt = %+v, want Retry, CauseUnreachable, connection refused", got)
			}
		})
	}
}

func TestAttemptCancelled(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := newServer(t, blockingHandler(arrived, release))
	t.Cleanup(func() { close(release) }) // before srv.Close
	w := newTestWebhook(t, testSubscription(srv.URL))
	tests := []struct {
		name   string
		cancel func(cancel context.CancelFunc)
	}{
		{"while waiting for the answer", func(cancel context.CancelFunc) {
			go func() {
				<-arrived
				cancel()
			}()
		}},
		{"before the attempt", func(cancel context.CancelFunc) { cancel() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tt.cancel(cancel)
			got := w.Attempt(ctx, Delivery{Event: testEvent(), Attempt: testRetry.MaxAttempts})
			if got.Kind != Retry || got.Cause != CauseCancelled || got.Delay != 0 || got.Reason != "cancelled" {
				t.Errorf("Attempt = %+v, want Retry, CauseCancelled, no delay, cancelled", got)
			}
		})
	}
}

func TestAttemptAnswerBody(t *testing.T) {
	long := strings.Repeat("a", answerBodyMax-1) + "€" + strings.Repeat("b", 20<<10)
	tests := []struct {
		name, body, want string
	}{
		{"short", "oops\n", "oops\n"},
		{"rune cut at 1 KiB", long, strings.Repeat("a", answerBodyMax-1)},
		{"invalid UTF-8", "bad \xff byte", "bad \uFFFD byte"},
	}
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	mux := http.NewServeMux()
	for i, tt := range tests {
		mux.HandleFunc(fmt.Sprintf("/%d", i), func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, tt.body)
		})
	}
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTestWebhook(t, testSubscription(fmt.Sprintf("%s/%d", srv.URL, i)))
			for range 2 {
				got := w.Attempt(context.Background(), Delivery{Event: testEvent(), Attempt: 1})
				if got.Body != tt.want || !utf8.ValidString(got.Body) || len(got.Body) > answerBodyMax {
					t.Errorf("Body = %q (%d bytes), want %q", got.Body, len(got.Body), tt.want)
				}
			}
		})
	}
	if n := conns.Load(); n != int32(len(tests)) {
		t.Errorf("%d connections for %d webhooks, want each connection reused", n, len(tests))
	}
}

func TestNewWebhookClient(t *testing.T) {
	sub := testSubscription("http://127.0.0.1:8080/events")
	sub.MaxInFlight = 7
	sub.Timeout = 3 * time.Second
	t.Setenv("HTTP_PROXY", "http://proxy.invalid:3128")
	w := newTestWebhook(t, sub)
	if w.transport.Proxy != nil {
		t.Error("Transport.Proxy is set, want nil (no proxy from the environment)")
	}
	if w.transport.MaxIdleConnsPerHost != 7 {
		t.Errorf("MaxIdleConnsPerHost = %d, want 7", w.transport.MaxIdleConnsPerHost)
	}
	if w.timeout != 3*time.Second {
		t.Errorf("timeout = %v, want 3s", w.timeout)
	}
}

func TestAttemptBasicAuth(t *testing.T) {
	srv, got := appReceiver(t)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("app", "hunter 2")
	r := deliver(t, newTestWebhook(t, testSubscription(u.String())), got, Delivery{Event: testEvent(), Attempt: 1})
	req := r.request()
	if user, password, ok := req.BasicAuth(); !ok || user != "app" || password != "hunter 2" {
		t.Errorf("basic auth %q %q %v, want the endpoint's user information", user, password, ok)
	}
}

func TestNewWebhookErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(*config.Subscription)
		want   string
	}{
		{"relative endpoint", func(s *config.Subscription) { s.Endpoint = "/events?token=hunter2" }, "endpoint must be an absolute http or https URL"},
		{"ftp endpoint", func(s *config.Subscription) { s.Endpoint = "ftp://hunter2@host/" }, "endpoint must be an absolute http or https URL"},
		{"bad content mode", func(s *config.Subscription) { s.ContentMode = "batched" }, `content_mode "batched"`},
		{"secret without prefix", func(s *config.Subscription) { s.SigningSecret = "aHVudGVyMg==" }, "signing_secret must be"},
		{"secret not base64", func(s *config.Subscription) { s.SigningSecret = "whsec_hunter2!" }, "signing_secret must be"},
		{"empty secret key", func(s *config.Subscription) { s.SigningSecret = "whsec_" }, "signing_secret must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := testSubscription("http://127.0.0.1:8080/events")
			tt.change(&sub)
			_, err := NewWebhook(sub)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewWebhook: %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "aHVudGVyMg") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

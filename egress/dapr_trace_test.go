package egress

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dapr"
)

// ordersRoutes is a Dapr subscription to the topic orders of the pub/sub
// "pubsub" with the routes paths (the last the default).
func ordersRoutes(paths ...string) dapr.Subscription {
	ds := dapr.Subscription{PubSub: "pubsub", Topic: "orders"}
	for _, p := range paths {
		ds.Rules = append(ds.Rules, dapr.Rule{Path: p})
	}
	return ds
}

// newTestDaprPost is the deliverer of ds to the HTTP app at base
// ("http://host:port"), signed with secret unless it is "".
func newTestDaprPost(t testing.TB, base string, ds dapr.Subscription, secret string) *daprPost {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.AppID = daprAppID
	cfg.Dapr.AppHost = u.Hostname()
	cfg.Dapr.AppPort, _ = strconv.Atoi(u.Port())
	app := newDaprHTTP(cfg, slog.New(slog.DiscardHandler))
	sub := testSubscription(app.endpoint())
	sub.SigningSecret = secret
	del, err := app.deliverer(ds, sub)
	if err != nil {
		t.Fatalf("deliverer: %v", err)
	}
	p := del.(*daprPost)
	t.Cleanup(func() {
		p.CloseIdleConnections()
		_ = app.close()
	})
	return p
}

// daprAnswers is an HTTP app answering each path as answers says (200 with
// an empty body for another), which hands over the traceparent header and
// the envelope's of every request.
func daprAnswers(t *testing.T, answers map[string]appAnswer) (string, <-chan [2]string) {
	t.Helper()
	got := make(chan [2]string, 8)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct {
			TraceParent string `json:"traceparent"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &env)
		got <- [2]string{r.Header.Get("traceparent"), env.TraceParent}
		a := answers[r.URL.Path]
		w.WriteHeader(max(a.status, http.StatusOK))
		_, _ = io.WriteString(w, a.body)
	}))
	return srv.URL, got
}

// appAnswer is a status and a body.
type appAnswer struct {
	status int
	body   string
}

// spanID is the span id of a W3C traceparent.
func spanID(traceparent string) string {
	if parts := strings.Split(traceparent, "-"); len(parts) == 4 {
		return parts[2]
	}
	return ""
}

// TestDaprAttemptSpan pins the client span of a recorded attempt to an
// HTTP app to what the otelhttp transport made of it (its name, kind,
// attributes and status, the attempt number and the outcome), the
// request's traceparent to that span and the envelope's to the process
// span.
func TestDaprAttemptSpan(t *testing.T) {
	rec, tr := recordSpans(t)
	base, got := daprAnswers(t, map[string]appAnswer{
		"/orders": {200, `{"status":"SUCCESS"}`},
		"/retry":  {200, `{"status":"RETRY"}`},
		"/drop":   {200, `{"status":"DROP"}`},
		"/500":    {500, "boom"},
		"/404":    {404, "no such route"},
	})
	port := base[strings.LastIndexByte(base, ':')+1:]
	attrs := func(path string, more ...string) map[string]string {
		m := map[string]string{
			"http.request.method": "POST", "url.full": base + path, "server.address": "127.0.0.1", "server.port": port,
			"network.protocol.version": "1.1", "eventsidecar.attempt": "2",
		}
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i]] = more[i+1]
		}
		return m
	}
	tests := []struct {
		name, route string
		want        map[string]string
		status      sdktrace.Status
	}{
		{"SUCCESS", "/orders", attrs("/orders", "http.response.status_code", "200", "eventsidecar.outcome", "delivered"), sdktrace.Status{}},
		{"default route", "", attrs("/", "http.response.status_code", "200", "eventsidecar.outcome", "delivered"), sdktrace.Status{}},
		{"RETRY", "/retry", attrs("/retry", "http.response.status_code", "200", "eventsidecar.outcome", "retry"), sdktrace.Status{}},
		{"DROP", "/drop", attrs("/drop", "http.response.status_code", "200", "eventsidecar.outcome", "dead_letter"), sdktrace.Status{}},
		{"500", "/500", attrs("/500", "http.response.status_code", "500", "error.type", "500", "eventsidecar.outcome", "retry"),
			sdktrace.Status{Code: codes.Error}},
		{"404", "/404", attrs("/404", "http.response.status_code", "404", "error.type", "404", "eventsidecar.outcome", "dead_letter"),
			sdktrace.Status{Code: codes.Error}},
	}
	p := newTestDaprPost(t, base, ordersRoutes("/orders", "/retry", "/drop", "/500", "/404"), "")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, process := tr.Start(context.Background(), "process test", trace.WithSpanKind(trace.SpanKindConsumer))
			p.Attempt(ctx, Delivery{Event: testEvent(), Attempt: 2, Route: tt.route})
			process.End()
			s := oneAttemptSpan(t, rec, process.SpanContext(), tt.want, tt.status)
			sent := <-got
			if spanID(sent[0]) != s.SpanContext().SpanID().String() {
				t.Errorf("request traceparent %q, want the attempt span's %s", sent[0], s.SpanContext().SpanID())
			}
			if spanID(sent[1]) != process.SpanContext().SpanID().String() {
				t.Errorf("envelope traceparent %q, want the process span's %s", sent[1], process.SpanContext().SpanID())
			}
		})
	}
}

// TestDaprAttemptSpanNoAnswer pins the client span of an attempt to an
// app that refuses the connection.
func TestDaprAttemptSpanNoAnswer(t *testing.T) {
	rec, tr := recordSpans(t)
	p := newTestDaprPost(t, "http://127.0.0.1:1", ordersRoutes("/orders"), "")
	ctx, process := tr.Start(context.Background(), "process test", trace.WithSpanKind(trace.SpanKindConsumer))
	o := p.Attempt(ctx, Delivery{Event: testEvent(), Attempt: 2, Route: "/orders"})
	process.End()
	if o.Kind != Retry || o.Cause != CauseUnreachable {
		t.Errorf("Attempt = %+v, want a Retry, CauseUnreachable", o)
	}
	oneAttemptSpan(t, rec, process.SpanContext(), map[string]string{
		"http.request.method": "POST", "url.full": "http://127.0.0.1:1/orders", "server.address": "127.0.0.1", "server.port": "1",
		"network.protocol.version": "1.1", "eventsidecar.attempt": "2", "error.type": "*net.OpError",
	}, sdktrace.Status{Code: codes.Error, Description: "dial tcp 127.0.0.1:1: connect: connection refused"})
}

// oneAttemptSpan checks that parent has one child, the HTTP POST client
// span with the attributes want and status, and returns it.
func oneAttemptSpan(t *testing.T, rec *tracetest.SpanRecorder, parent trace.SpanContext,
	want map[string]string, status sdktrace.Status) sdktrace.ReadOnlySpan {
	t.Helper()
	spans := childrenOf(rec, parent)
	if len(spans) != 1 {
		t.Fatalf("%d attempt spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Name() != "HTTP POST" || s.SpanKind() != trace.SpanKindClient {
		t.Errorf("span %q of kind %v, want \"HTTP POST\", client", s.Name(), s.SpanKind())
	}
	got := map[string]string{}
	for _, a := range s.Attributes() {
		got[string(a.Key)] = a.Value.Emit()
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("attributes\n%v, want\n%v", got, want)
	}
	if s.Status() != status {
		t.Errorf("status %+v, want %+v", s.Status(), status)
	}
	return s
}

// TestDaprUnsampledAttempt checks that an attempt within a span that is
// not recorded makes no span.
func TestDaprUnsampledAttempt(t *testing.T) {
	rec, tr := recordSpans(t)
	base, got := daprAnswers(t, nil)
	p := newTestDaprPost(t, base, ordersRoutes("/orders"), "")
	remote := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9}, SpanID: trace.SpanID{0x0f}, Remote: true,
	}))
	ctx, process := tr.Start(remote, "process test")
	defer process.End()
	if o := p.Attempt(ctx, Delivery{Event: testEvent(), Attempt: 1, Route: "/orders"}); o.Kind != Delivered {
		t.Fatalf("Attempt = %+v, want Delivered", o)
	}
	sent := <-got
	sc := process.SpanContext()
	for i, tp := range sent {
		if !strings.HasPrefix(tp, "00-"+sc.TraceID().String()+"-") || !strings.HasSuffix(tp, "-00") {
			t.Errorf("traceparent %d = %q, want one of the unsampled trace %s", i, tp, sc.TraceID())
		}
	}
	if n := len(childrenOf(rec, sc)); n != 0 {
		t.Errorf("%d attempt spans, want none", n)
	}
}

// TestDaprAttemptSpanTruncatedAnswer checks that an answer whose body
// breaks off marks the attempt's span with an error, while the outcome
// stands on what was read.
func TestDaprAttemptSpanTruncatedAnswer(t *testing.T) {
	rec, tr := recordSpans(t)
	srv := cutAnswerServer(t, `{"status":"DROP"}`)
	p := newTestDaprPost(t, srv.URL, ordersRoutes("/orders"), "")
	ctx, process := tr.Start(context.Background(), "process test")
	o := p.Attempt(ctx, Delivery{Event: testEvent(), Attempt: 1, Route: "/orders"})
	process.End()
	if o.Kind != Dead || o.Reason != reasonDrop || o.Body != `{"status":"DROP"}` {
		t.Errorf("Attempt = %+v, want Dead by the DROP read", o)
	}
	spans := childrenOf(rec, process.SpanContext())
	if len(spans) != 1 || spans[0].Status().Code != codes.Error {
		t.Fatalf("attempt spans %v, want one with an error status", spans)
	}
}

// TestDaprLongAnswer checks how much of a long answer is read: the verdict
// from up to answerDrainMax bytes of it, the Outcome's body from its first
// answerBodyMax.
func TestDaprLongAnswer(t *testing.T) {
	padded := func(status string, n int) string {
		start := `{"status":"` + status + `","pad":"`
		return start + strings.Repeat("x", n-len(start)-2) + `"}`
	}
	tests := []struct {
		name string
		body string
		want Kind
	}{
		{"DROP of the bound's length", padded("DROP", answerDrainMax), Dead},
		{"DROP past the bound, cut", padded("DROP", answerDrainMax+1), Delivered},
		{"DROP past the drain", padded("DROP", 3*answerDrainMax), Delivered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base, got := daprAnswers(t, map[string]appAnswer{"/orders": {200, tt.body}})
			p := newTestDaprPost(t, base, ordersRoutes("/orders"), "")
			o := p.Attempt(context.Background(), Delivery{Event: testEvent(), Attempt: 1, Route: "/orders"})
			<-got
			if o.Kind != tt.want || o.Body != tt.body[:answerBodyMax] {
				t.Errorf("Attempt = %v, %q..., want %v with the first %d bytes", o.Kind, o.Body[:min(len(o.Body), 20)], tt.want, answerBodyMax)
			}
		})
	}
}

// TestDaprRequestHeaders checks the headers of a delivery to an HTTP app
// and its target, with and without a signature.
func TestDaprRequestHeaders(t *testing.T) {
	type seen struct {
		header http.Header
		uri    string
		length int64
	}
	got := make(chan seen, 1)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- seen{r.Header.Clone(), r.RequestURI, int64(len(body))}
		if r.ContentLength != int64(len(body)) {
			t.Errorf("Content-Length %d, body %d bytes", r.ContentLength, len(body))
		}
	}))
	for _, secret := range []string{"", testSecret} {
		t.Run("secret "+strconv.FormatBool(secret != ""), func(t *testing.T) {
			p := newTestDaprPost(t, srv.URL, ordersRoutes("/orders/new?x=1"), secret)
			if o := p.Attempt(context.Background(), Delivery{Event: testEvent(), Attempt: 3, Route: "/orders/new?x=1"}); o.Kind != Delivered {
				t.Fatalf("Attempt = %+v", o)
			}
			s := <-got
			if s.uri != "/orders/new?x=1" {
				t.Errorf("request URI %q, want /orders/new?x=1", s.uri)
			}
			want := map[string]string{
				"Content-Type": "application/cloudevents+json", "Pubsubname": "pubsub", "Topic": "orders",
				"Eventsidecar-Attempt": "3", "User-Agent": "eventsidecar", "Content-Length": strconv.FormatInt(s.length, 10),
				"Accept-Encoding": "gzip",
			}
			if secret != "" {
				want["Webhook-Id"] = WebhookID(testEvent())
			}
			for k, v := range want {
				if got := s.header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if len(s.header.Values("Traceparent")) != 1 {
				t.Errorf("traceparent %q, want one", s.header.Values("Traceparent"))
			}
			if sig := s.header.Get("Webhook-Signature"); (sig != "") != (secret != "") {
				t.Errorf("webhook-signature %q with secret %q", sig, secret)
			}
		})
	}
}

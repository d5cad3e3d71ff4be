package egress

import (
	"context"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// recordSpans is a tracer whose spans are recorded, until the test ends,
// by the recorder it returns with it. An attempt within one of its spans
// starts its client span with the same provider, as the otelhttp
// transport did.
func recordSpans(t *testing.T) (*tracetest.SpanRecorder, trace.Tracer) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return rec, tp.Tracer("test")
}

// childrenOf are the ended spans whose parent is parent.
func childrenOf(rec *tracetest.SpanRecorder, parent trace.SpanContext) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Parent().SpanID() == parent.SpanID() {
			out = append(out, s)
		}
	}
	return out
}

// TestAttemptSpan pins the client span of a recorded attempt to what the
// otelhttp transport made of it: its name, kind, attributes and status.
func TestAttemptSpan(t *testing.T) {
	rec, tr := recordSpans(t)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/500") {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	refused := "dial tcp 127.0.0.1:1: connect: connection refused"
	tests := []struct {
		name, endpoint string
		want           map[string]string
		status         sdktrace.Status
	}{
		{"2xx", srv.URL + "/ok?x=1", map[string]string{
			"http.request.method": "POST", "url.full": srv.URL + "/ok?x=1", "server.address": "127.0.0.1", "server.port": port,
			"network.protocol.version": "1.1", "eventsidecar.attempt": "2", "http.response.status_code": "200", "eventsidecar.outcome": "delivered",
		}, sdktrace.Status{}},
		{"5xx", srv.URL + "/500", map[string]string{
			"http.request.method": "POST", "url.full": srv.URL + "/500", "server.address": "127.0.0.1", "server.port": port,
			"network.protocol.version": "1.1", "eventsidecar.attempt": "2", "http.response.status_code": "500", "error.type": "500",
			"eventsidecar.outcome": "retry",
		}, sdktrace.Status{Code: codes.Error}},
		{"refused, user information left out", "http://u:hunter2@127.0.0.1:1/x", map[string]string{
			"http.request.method": "POST", "url.full": "http://127.0.0.1:1/x", "server.address": "127.0.0.1", "server.port": "1",
			"network.protocol.version": "1.1", "eventsidecar.attempt": "2", "error.type": "*net.OpError",
		}, sdktrace.Status{Code: codes.Error, Description: refused}},
		{"the scheme's default port left out", "https://127.0.0.1:443/y", map[string]string{
			"http.request.method": "POST", "url.full": "https://127.0.0.1:443/y", "server.address": "127.0.0.1",
			"network.protocol.version": "1.1", "eventsidecar.attempt": "2", "error.type": "*net.OpError",
		}, sdktrace.Status{Code: codes.Error, Description: strings.Replace(refused, ":1:", ":443:", 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTestWebhook(t, testSubscription(tt.endpoint))
			ctx, process := tr.Start(context.Background(), "process test", trace.WithSpanKind(trace.SpanKindConsumer))
			w.Attempt(ctx, Delivery{Event: testEvent(), Attempt: 2})
			process.End()
			spans := childrenOf(rec, process.SpanContext())
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
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("attributes\n%v, want\n%v", got, tt.want)
			}
			if s.Status() != tt.status {
				t.Errorf("status %+v, want %+v", s.Status(), tt.status)
			}
		})
	}
}

// TestUnsampledAttempt checks that an attempt within a span that is not
// recorded makes no span and sends that span's trace context.
func TestUnsampledAttempt(t *testing.T) {
	rec, tr := recordSpans(t)
	srv, got := appReceiver(t)
	w := newTestWebhook(t, testSubscription(srv.URL))
	remote := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0x4b, 0xf9}, SpanID: trace.SpanID{0x0f}, Remote: true,
	}))
	ctx, process := tr.Start(remote, "process test")
	defer process.End()
	if process.IsRecording() {
		t.Fatal("the process span of an unsampled trace is recorded")
	}
	r := deliverIn(ctx, t, w, got, Delivery{Event: testEvent(), Attempt: 1})
	sc := process.SpanContext()
	if want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-00"; r.header.Get("traceparent") != want {
		t.Errorf("traceparent = %q, want %q", r.header.Get("traceparent"), want)
	}
	if n := len(childrenOf(rec, sc)); n != 0 {
		t.Errorf("%d attempt spans, want none", n)
	}
}

// TestAttemptSpanTruncatedAnswer checks that an answer whose body breaks
// off marks the attempt's span with the error, as the otelhttp transport
// did, while the outcome stands on the status.
func TestAttemptSpanTruncatedAnswer(t *testing.T) {
	rec, tr := recordSpans(t)
	srv := cutAnswerServer(t, "short")
	w := newTestWebhook(t, testSubscription(srv.URL))
	ctx, process := tr.Start(context.Background(), "process test")
	o := w.Attempt(ctx, Delivery{Event: testEvent(), Attempt: 1})
	process.End()
	if o.Kind != Delivered || o.Body != "short" {
		t.Errorf("Attempt = %+v, want Delivered with body \"short\"", o)
	}
	spans := childrenOf(rec, process.SpanContext())
	if len(spans) != 1 || spans[0].Status().Code != codes.Error {
		t.Fatalf("attempt spans %v, want one with an error status", spans)
	}
}

// cutAnswerServer answers 200 with a body that breaks off after body,
// short of the 100 bytes its Content-Length promises.
func cutAnswerServer(t *testing.T, body string) *httptest.Server {
	return newServer(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + body)
		_ = buf.Flush()
	}))
}

package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/eventsidecar/config"
)

// isolate clears the OTEL_* variables the tests depend on and restores the
// global TracerProvider, propagator and error handler when t ends (they
// change together, in Setup, only when it succeeds).
// OpenTelemetry offers no getter for its internal logger, so that is
// replaced by a discarding one.
func isolate(t *testing.T) {
	t.Helper()
	for _, name := range []string{
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
		"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
	} {
		t.Setenv(name, "")
	}
	tp, prop, eh := otel.GetTracerProvider(), otel.GetTextMapPropagator(), otel.GetErrorHandler()
	t.Cleanup(func() {
		if otel.GetTracerProvider() == tp {
			return // Setup did not run, or failed: nothing changed.
		}
		otel.SetTracerProvider(tp)
		otel.SetTextMapPropagator(prop)
		otel.SetErrorHandler(eh)
		otel.SetLogger(logr.Discard())
	})
}

// setup runs Setup with a test logger and shuts the provider down when t
// ends.
func setup(t *testing.T, exporter string) func(context.Context) error {
	t.Helper()
	shutdown, err := Setup(context.Background(), config.Tracing{Exporter: exporter}, "app1", "v1.2.3", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("Setup(%q): %v", exporter, err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	return shutdown
}

// record adds a span recorder to the global SDK TracerProvider.
func record(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	tp, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider)
	if !ok {
		t.Fatalf("global TracerProvider is %T, want *sdktrace.TracerProvider", otel.GetTracerProvider())
	}
	rec := tracetest.NewSpanRecorder()
	tp.RegisterSpanProcessor(rec)
	return rec
}

func TestSetupNonePropagates(t *testing.T) {
	isolate(t)
	setup(t, "none")
	parent := "00-" + validTraceID + "-" + validParentID + "-01"
	ctx := otel.GetTextMapPropagator().Extract(context.Background(), propagation.MapCarrier{"traceparent": parent})

	ctx1, span1 := Tracer().Start(ctx, "one")
	_, span2 := Tracer().Start(ctx, "two")
	_, grandchild := Tracer().Start(ctx1, "three")
	defer span1.End()
	defer span2.End()
	defer grandchild.End()
	seen := map[trace.SpanID]bool{}
	for _, s := range []trace.Span{span1, span2, grandchild} {
		sc := s.SpanContext()
		if !sc.IsValid() || !sc.IsSampled() {
			t.Errorf("span context %v: want valid and sampled", sc)
		}
		if sc.TraceID().String() != validTraceID {
			t.Errorf("trace id = %s, want the parent's %s", sc.TraceID(), validTraceID)
		}
		if sc.SpanID().String() == validParentID || seen[sc.SpanID()] {
			t.Errorf("span id %s not fresh", sc.SpanID())
		}
		seen[sc.SpanID()] = true
	}

	out := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx1, out)
	if want := "00-" + validTraceID + "-" + span1.SpanContext().SpanID().String() + "-01"; out["traceparent"] != want {
		t.Errorf("injected traceparent %q, want %q", out["traceparent"], want)
	}
}

func TestSetupNoneNewRoot(t *testing.T) {
	isolate(t)
	setup(t, "none")
	_, a := Tracer().Start(context.Background(), "a")
	_, b := Tracer().Start(context.Background(), "b")
	defer a.End()
	defer b.End()
	if !a.SpanContext().IsValid() || !b.SpanContext().IsValid() {
		t.Fatalf("span contexts %v, %v: want valid", a.SpanContext(), b.SpanContext())
	}
	if a.SpanContext().TraceID() == b.SpanContext().TraceID() {
		t.Errorf("two roots share trace id %s", a.SpanContext().TraceID())
	}
}

func TestSetupNoneRecordsNothing(t *testing.T) {
	isolate(t)
	setup(t, "none")
	if _, sdk := otel.GetTracerProvider().(*sdktrace.TracerProvider); sdk {
		t.Error("exporter none installed the SDK's TracerProvider, which records every span")
	}
	ctx, span := Tracer().Start(context.Background(), "publish orders", trace.WithAttributes(attribute.String("k", "v")))
	defer span.End()
	if span.IsRecording() {
		t.Error("a span of exporter none records")
	}
	_, child := Tracer().Start(ctx, "child")
	defer child.End()
	if child.IsRecording() || child.SpanContext().TraceID() != span.SpanContext().TraceID() {
		t.Errorf("child %v of %v: want the same trace, not recording", child.SpanContext(), span.SpanContext())
	}
	_, root := Tracer().Start(ctx, "root", trace.WithNewRoot())
	defer root.End()
	if root.SpanContext().TraceID() == span.SpanContext().TraceID() || !root.SpanContext().IsSampled() {
		t.Errorf("WithNewRoot gave %v under %v: want a new trace, sampled", root.SpanContext(), span.SpanContext())
	}
}

func TestSetupNoneKeepsParentFlags(t *testing.T) {
	isolate(t)
	setup(t, "none")
	parent := "00-" + validTraceID + "-" + validParentID + "-00"
	ctx := otel.GetTextMapPropagator().Extract(context.Background(), propagation.MapCarrier{"traceparent": parent, "tracestate": "k=v"})
	ctx, span := Tracer().Start(ctx, "one")
	defer span.End()
	out := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, out)
	if want := "00-" + validTraceID + "-" + span.SpanContext().SpanID().String() + "-00"; out["traceparent"] != want || out["tracestate"] != "k=v" {
		t.Errorf("injected %v, want traceparent %q and the parent's tracestate: an unsampled caller stays unsampled", out, want)
	}
}

func TestSetupResource(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantService string
		wantExtra   attribute.KeyValue
	}{
		{"app id", nil, "app1", attribute.String("service.version", "v1.2.3")},
		{"OTEL_SERVICE_NAME", map[string]string{"OTEL_SERVICE_NAME": "svc"}, "svc", attribute.String("service.version", "v1.2.3")},
		{"OTEL_RESOURCE_ATTRIBUTES", map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "service.name=res,deployment.environment=prod"}, "res", attribute.String("deployment.environment", "prod")},
		{"OTEL_SERVICE_NAME wins", map[string]string{"OTEL_SERVICE_NAME": "svc", "OTEL_RESOURCE_ATTRIBUTES": "service.name=res"}, "svc", attribute.String("service.version", "v1.2.3")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			setupStdout(t)
			rec := record(t)
			_, span := Tracer().Start(context.Background(), "s")
			span.End()
			ended := rec.Ended()
			if len(ended) != 1 {
				t.Fatalf("recorded %d spans, want 1", len(ended))
			}
			res := ended[0].Resource()
			if got, _ := res.Set().Value("service.name"); got.AsString() != tt.wantService {
				t.Errorf("service.name = %q, want %q", got.AsString(), tt.wantService)
			}
			if got, _ := res.Set().Value(tt.wantExtra.Key); got != tt.wantExtra.Value {
				t.Errorf("%s = %v, want %v", tt.wantExtra.Key, got.Emit(), tt.wantExtra.Value.Emit())
			}
			if got := ended[0].InstrumentationScope().Name; got != instrumentationName {
				t.Errorf("instrumentation scope = %q, want %q", got, instrumentationName)
			}
		})
	}
}

func TestSetupErrors(t *testing.T) {
	tests := []struct {
		name, exporter string
		env            map[string]string
		want           string
	}{
		{"unknown exporter", "zipkin", nil, `"zipkin"`},
		{"unsupported protocol", "otlp", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/xml"}, `"http/xml"`},
		{"unsupported traces protocol", "otlp", map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "thrift"}, `"thrift"`},
		{"malformed resource attributes", "none", map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "novalue"}, "tracing: resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			before := otel.GetTracerProvider()
			shutdown, err := Setup(context.Background(), config.Tracing{Exporter: tt.exporter}, "app1", "", nil)
			if err == nil {
				_ = shutdown(context.Background())
				t.Fatal("Setup succeeded, want an error")
			}
			if !strings.HasPrefix(err.Error(), "tracing: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want one starting with \"tracing: \" naming %s", err, tt.want)
			}
			if otel.GetTracerProvider() != before {
				t.Error("a failed Setup replaced the global TracerProvider")
			}
		})
	}
}

// otlpReceiver is an OTLP/HTTP endpoint that records the requests it gets.
type otlpReceiver struct {
	mu    sync.Mutex
	paths []string
	sizes []int
}

func (rcv *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rcv.mu.Lock()
	rcv.paths = append(rcv.paths, r.URL.Path)
	rcv.sizes = append(rcv.sizes, len(body))
	rcv.mu.Unlock()
	w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
	w.WriteHeader(http.StatusOK)
}

func TestSetupOTLPHTTPExportsOnShutdown(t *testing.T) {
	for _, protocol := range []string{"", "http/protobuf", "http/json"} {
		t.Run("protocol "+protocol, func(t *testing.T) {
			isolate(t)
			rcv := &otlpReceiver{}
			srv := httptest.NewServer(rcv)
			defer srv.Close()
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			shutdown := setup(t, "otlp")

			_, span := Tracer().Start(context.Background(), "publish orders")
			span.End()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			if len(rcv.paths) != 1 || rcv.paths[0] != "/v1/traces" || rcv.sizes[0] == 0 {
				t.Errorf("receiver got paths %v with body sizes %v, want one non-empty POST to /v1/traces", rcv.paths, rcv.sizes)
			}
		})
	}
}

func TestSetupOTLPGRPCShutdownHonoursDeadline(t *testing.T) {
	isolate(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+addr)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
	shutdown := setup(t, "otlp")

	_, span := Tracer().Start(context.Background(), "publish orders")
	span.End()
	const deadline = 500 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err = shutdown(ctx)
	if took := time.Since(start); took > deadline+2*time.Second {
		t.Errorf("shutdown took %v with a %v deadline", took, deadline)
	}
	t.Logf("shutdown with nothing listening: %v", err)
}

// setupStdout runs Setup with the stdout exporter writing to a file of
// t's, which it returns, and shuts the provider down when t ends.
func setupStdout(t *testing.T) (*os.File, func(context.Context) error) {
	t.Helper()
	out, err := os.Create(filepath.Join(t.TempDir(), "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = out.Close() })
	stdout := os.Stdout
	os.Stdout = out
	shutdown := setup(t, "stdout")
	os.Stdout = stdout
	return out, shutdown
}

func TestSetupStdout(t *testing.T) {
	isolate(t)
	out, shutdown := setupStdout(t)

	_, span := Tracer().Start(context.Background(), "publish orders")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	got, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(got), []byte("\n"))
	if len(lines) != 1 {
		t.Fatalf("stdout has %d lines, want one JSON line per span:\n%s", len(lines), got)
	}
	var s struct{ Name string }
	if err := json.Unmarshal(lines[0], &s); err != nil || s.Name != "publish orders" {
		t.Errorf("stdout line %s: name %q, err %v; want the span", lines[0], s.Name, err)
	}
}

func TestSetupRoutesOpenTelemetryErrorsToLog(t *testing.T) {
	isolate(t)
	var buf bytes.Buffer
	shutdown, err := Setup(context.Background(), config.Tracing{Exporter: "none"}, "app1", "", slog.New(slog.NewJSONHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(context.Background())
	otel.Handle(io.ErrUnexpectedEOF)
	lines := decodeLines(t, &buf)
	if len(lines) != 1 || lines[0]["level"] != "WARN" || lines[0]["error"] != io.ErrUnexpectedEOF.Error() {
		t.Errorf("log = %v, want one WARN line with the error", lines)
	}
}

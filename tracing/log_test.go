package tracing

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"testing/slogtest"

	"go.opentelemetry.io/otel/trace"
)

// spanContext returns ctx holding a valid remote span context.
func spanContext(t *testing.T) (context.Context, trace.SpanContext) {
	t.Helper()
	tid, err := trace.TraceIDFromHex(validTraceID)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex(validParentID)
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	return trace.ContextWithSpanContext(context.Background(), sc), sc
}

// decodeLines parses the JSON lines in buf.
func decodeLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLogHandler(t *testing.T) {
	spanCtx, sc := spanContext(t)
	tests := []struct {
		name    string
		ctx     context.Context
		logger  func(*slog.Logger) *slog.Logger
		wantIDs bool
		// wantGroup is the group that must hold the attribute "k", or "".
		wantGroup string
	}{
		{"no span", context.Background(), func(l *slog.Logger) *slog.Logger { return l }, false, ""},
		{"invalid span context", trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}), func(l *slog.Logger) *slog.Logger { return l }, false, ""},
		{"span", spanCtx, func(l *slog.Logger) *slog.Logger { return l }, true, ""},
		{"span with attrs", spanCtx, func(l *slog.Logger) *slog.Logger { return l.With("a", 1) }, true, ""},
		{"span with group", spanCtx, func(l *slog.Logger) *slog.Logger { return l.With("a", 1).WithGroup("g").With("b", 2) }, true, "g"},
		{"no span with group", context.Background(), func(l *slog.Logger) *slog.Logger { return l.WithGroup("g") }, false, "g"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := tt.logger(slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))))
			log.InfoContext(tt.ctx, "hello", "k", "v")
			lines := decodeLines(t, &buf)
			if len(lines) != 1 {
				t.Fatalf("got %d log lines, want 1", len(lines))
			}
			got := lines[0]
			if tt.wantIDs {
				if got[traceIDKey] != sc.TraceID().String() || got[spanIDKey] != sc.SpanID().String() {
					t.Errorf("trace_id, span_id = %v, %v; want %s, %s at the top level of %v", got[traceIDKey], got[spanIDKey], sc.TraceID(), sc.SpanID(), got)
				}
			} else if _, ok := got[traceIDKey]; ok {
				t.Errorf("got trace_id in %v, want none", got)
			}
			holder := got
			if tt.wantGroup != "" {
				holder, _ = got[tt.wantGroup].(map[string]any)
			}
			if holder["k"] != "v" {
				t.Errorf("attribute k not in group %q of %v", tt.wantGroup, got)
			}
		})
	}
}

func TestLogHandlerKeepsAttrsOrderAndGroups(t *testing.T) {
	ctx, _ := spanContext(t)
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("a", 1).WithGroup("g").With("b", 2).WithGroup("h")
	log.InfoContext(ctx, "hello", "c", 3)
	log.Info("hello", "c", 3)
	lines := decodeLines(t, &buf)
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2", len(lines))
	}
	for i, got := range lines {
		g, _ := got["g"].(map[string]any)
		h, _ := g["h"].(map[string]any)
		if got["a"] != 1.0 || g["b"] != 2.0 || h["c"] != 3.0 {
			t.Errorf("line %d = %v, want a=1, g.b=2, g.h.c=3", i, got)
		}
	}
}

func TestLogHandlerEnabledDelegates(t *testing.T) {
	h := LogHandler(slog.NewJSONHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for _, tt := range []struct {
		level slog.Level
		want  bool
	}{{slog.LevelInfo, false}, {slog.LevelWarn, true}} {
		if got := h.Enabled(context.Background(), tt.level); got != tt.want {
			t.Errorf("Enabled(%v) = %v, want %v", tt.level, got, tt.want)
		}
	}
}

// TestLogHandlerConforms runs the standard library's handler conformance
// tests, with and without a span in the records' contexts.
func TestLogHandlerConforms(t *testing.T) {
	spanCtx, _ := spanContext(t)
	for _, tt := range []struct {
		name string
		ctx  context.Context
	}{{"no span", context.Background()}, {"span", spanCtx}} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := LogHandler(slog.NewJSONHandler(&buf, nil))
			err := slogtest.TestHandler(contextHandler{h, tt.ctx}, func() []map[string]any {
				lines := decodeLines(t, &buf)
				for _, m := range lines {
					delete(m, traceIDKey)
					delete(m, spanIDKey)
				}
				return lines
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
}

// contextHandler handles every record with a fixed context, so that the
// conformance tests (which log without one) exercise the span path.
type contextHandler struct {
	slog.Handler
	ctx context.Context
}

func (h contextHandler) Handle(_ context.Context, r slog.Record) error {
	return h.Handler.Handle(h.ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs), h.ctx}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name), h.ctx}
}

package tracing

import (
	"context"
	"log/slog"
	"slices"

	"go.opentelemetry.io/otel/trace"
)

// Keys of the attributes LogHandler adds.
const (
	traceIDKey = "trace_id"
	spanIDKey  = "span_id"
)

// LogHandler wraps h so that every record logged with a context holding a
// valid span context (log.InfoContext(ctx, ...)) gets the attributes
// trace_id and span_id, in lower-case hex, at the top level of the record
// even when the logger has groups open. Records without one reach h
// unchanged. Safe for concurrent use when h is.
func LogHandler(h slog.Handler) slog.Handler {
	return &logHandler{full: h, top: h}
}

// logHandler adds the trace ids to records. Records without a span go to
// full. The ids must stay outside any group, so once a group is open a
// record with a span is handled by top (the handler as it was before the
// first group) with the ids added, and then the steps in after replayed.
type logHandler struct {
	full  slog.Handler
	top   slog.Handler
	after []func(slog.Handler) slog.Handler
}

func (h *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.full.Enabled(ctx, level)
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return h.full.Handle(ctx, r)
	}
	ids := []slog.Attr{slog.String(traceIDKey, sc.TraceID().String()), slog.String(spanIDKey, sc.SpanID().String())}
	if len(h.after) == 0 {
		r.AddAttrs(ids...)
		return h.full.Handle(ctx, r)
	}
	inner := h.top.WithAttrs(ids)
	for _, step := range h.after {
		inner = step(inner)
	}
	return inner.Handle(ctx, r)
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	if len(h.after) == 0 {
		inner := h.full.WithAttrs(attrs)
		return &logHandler{full: inner, top: inner}
	}
	return h.then(func(inner slog.Handler) slog.Handler { return inner.WithAttrs(attrs) })
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.then(func(inner slog.Handler) slog.Handler { return inner.WithGroup(name) })
}

// then returns h with step applied: at once to full, and recorded in after.
func (h *logHandler) then(step func(slog.Handler) slog.Handler) *logHandler {
	return &logHandler{full: step(h.full), top: h.top, after: append(slices.Clip(h.after), step)}
}

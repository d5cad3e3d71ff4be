package ingress

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dedup"
	"github.com/eventsidecar/eventsidecar/problem"
	"github.com/eventsidecar/eventsidecar/tracing"
	"github.com/eventsidecar/eventsidecar/wire"
)

// Result is the answer for one event of a publish request.
type Result struct {
	Topic     string `json:"topic,omitempty"`
	ID        string `json:"id"`
	Source    string `json:"source"`
	Sequence  uint64 `json:"sequence,omitempty"`
	Duplicate bool   `json:"duplicate"`
	// Error says why this entry was not stored; empty when it was.
	Error string `json:"error,omitempty"`
}

// request is a decoded, validated publish request ready for the broker.
type request struct {
	topic string
	mode  wire.Mode
	msgs  []broker.Message
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	hold := &hold{s: s}
	defer hold.release()
	in, err := s.decode(w, r, hold)
	if err != nil {
		s.reject(w, err)
		return
	}
	ctx := otel.GetTextMapPropagator().Extract(r.Context(), tracing.HeaderCarrier(r.Header))
	results, err := s.Store(ctx, in)
	if err != nil {
		s.reject(w, err)
		return
	}
	s.metrics.latencyBy.of(in.Mode).Observe(time.Since(start).Seconds())
	if in.Mode == wire.ModeBatch {
		problem.WriteJSON(w, http.StatusOK, map[string][]Result{"results": results})
		return
	}
	problem.WriteJSON(w, http.StatusOK, results[0])
}

// Input is a decoded publish request, in whatever API it came.
type Input struct {
	Topic string
	// Key is the Idempotency-Key ("" for an event's source and id).
	Key  string
	Mode wire.Mode
	// Events are as the client sent them: no defaults filled in yet.
	Events []event.Event
}

// Store is the publish path every API shares after decoding: topic and
// scope checks, defaults, validation, idempotency, the publish span, and
// the broker's acknowledgement. ctx carries the caller's trace context. It
// answers one Result per event (a single event's with its Topic), or an
// *problem.Error for the caller to count and answer (see reject and
// grpcReject).
func (s *Server) Store(ctx context.Context, in Input) ([]Result, error) {
	results, err := s.store(ctx, in)
	if err != nil {
		return nil, err
	}
	if in.Mode != wire.ModeBatch {
		results[0].Topic = in.Topic
	}
	return results, nil
}

func (s *Server) store(ctx context.Context, in Input) ([]Result, error) {
	if err := s.checkTopic(in.Topic); err != nil {
		return nil, err
	}
	msgs, err := s.messages(in.Topic, in.Key, in.Mode, in.Events)
	if err != nil {
		return nil, err
	}
	req := &request{topic: in.Topic, mode: in.Mode, msgs: msgs}
	ctx, span := startPublishSpan(ctx, req)
	propagate(ctx, msgs)
	receipts := s.pub.Publish(ctx, msgs)
	results, err := s.answer(req, receipts)
	endPublishSpan(span, err)
	return results, err
}

// Hold holds n bytes of the in-flight budget that HTTP and gRPC
// requests share, until the returned func is called; without room it
// answers 429 (ResourceExhausted).
func (s *Server) Hold(n int64) (func(), error) {
	h := &hold{s: s}
	if err := h.take(n); err != nil {
		return nil, err
	}
	return h.release, nil
}

// reject counts err in the rejection metrics and writes it as a problem.
// Every rejected HTTP request is answered here, so it is counted once.
func (s *Server) reject(w http.ResponseWriter, err error) {
	s.count(err)
	problem.Write(w, err)
}

// count adds err to the rejection metrics under its code's slug.
func (s *Server) count(err error) {
	s.metrics.rejected.WithLabelValues(problem.From(err).Code.Slug()).Inc()
}

// decode reads and decodes an HTTP publish request's body in its mode,
// holding budget for it in hold.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, hold *hold) (Input, error) {
	in := Input{Topic: chi.URLParam(r, "topic")}
	var err error
	if in.Mode, err = wire.DetectMode(r.Header); err != nil {
		return in, problem.New(problem.CodeUnsupportedMediaType, fmt.Sprintf("Content-Type %q: %v", r.Header.Get("Content-Type"), err))
	}
	if in.Key, err = idempotencyKey(r.Header, in.Mode); err != nil {
		return in, err
	}
	limit := s.limits.MaxEventBytes
	if in.Mode == wire.ModeBatch {
		limit = s.cfg.HTTP.MaxBatchBytes
	}
	body, err := s.readBody(w, r, limit, hold)
	if err != nil {
		return in, err
	}
	in.Events, err = s.decodeEvents(r.Header, in.Mode, body)
	return in, err
}

func (s *Server) checkTopic(topic string) error {
	if err := config.ValidTopic(topic); err != nil {
		return problem.New(problem.CodeInvalid, fmt.Sprintf("topic %q: %v", topic, err))
	}
	if strings.HasPrefix(topic, "_") {
		return problem.New(problem.CodeForbidden, fmt.Sprintf("topic %q: topics starting with _ are reserved for the sidecar", topic))
	}
	if !allowed(s.cfg.Scopes.Publish, topic) {
		return problem.New(problem.CodeForbidden, fmt.Sprintf("topic %q: not in scopes.publish", topic))
	}
	return nil
}

func idempotencyKey(h http.Header, mode wire.Mode) (string, error) {
	v := h.Values("Idempotency-Key")
	switch {
	case len(v) == 0:
		return "", nil
	case mode == wire.ModeBatch:
		return "", problem.New(problem.CodeInvalid, "Idempotency-Key: not allowed on a batch; each event's source and id are its key")
	case len(v) > 1:
		return "", problem.New(problem.CodeInvalid, "Idempotency-Key: given more than once")
	}
	key, err := dedup.ParseKey(v[0])
	if err != nil {
		return "", problem.New(problem.CodeInvalid, "Idempotency-Key: "+err.Error())
	}
	return key, nil
}

// ReadBody reads r's body of at most limit bytes for a dialect's handler,
// holding in-flight budget for what it has read as this API's own
// requests do (see hold.readAll); release gives it back once the request
// is answered. Errors are *problem.Error (413, 429, 400 for a body that
// could not be read), or the one problem.BodyError answers.
func (s *Server) ReadBody(w http.ResponseWriter, r *http.Request, limit int64) (body []byte, release func(), err error) {
	h := &hold{s: s}
	if body, err = s.readBody(w, r, limit, h); err != nil {
		h.release()
		return nil, nil, err
	}
	return body, h.release, nil
}

// readBody reads a body of at most limit bytes, holding in-flight budget
// in hold for what it has read (see hold.readAll).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64, hold *hold) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, problem.New(problem.CodeTooLarge, fmt.Sprintf("body: %d bytes, more than the limit of %d", r.ContentLength, limit))
	}
	body, err := hold.readAll(http.MaxBytesReader(w, r.Body, limit), limit, r.ContentLength)
	if err != nil {
		return nil, problem.BodyError(w, err, limit, s.cfg.HTTP.ReadTimeout)
	}
	return body, nil
}

func (s *Server) decodeEvents(h http.Header, mode wire.Mode, body []byte) ([]event.Event, error) {
	var (
		ev  event.Event
		err error
	)
	switch mode {
	case wire.ModeBatch:
		events, err := wire.DecodeBatch(body, s.limits.MaxBatchEvents)
		if errors.Is(err, wire.ErrTooManyEvents) {
			return nil, problem.New(problem.CodeTooLarge, fmt.Sprintf("batch: more than http.max_batch_events (%d) events", s.limits.MaxBatchEvents))
		}
		return events, invalid(err)
	case wire.ModeStructured:
		ev, err = wire.DecodeStructured(body)
	case wire.ModeBinary:
		ev, err = wire.DecodeBinary(h, body)
	default:
		ev, err = wire.DecodeRaw(h, body)
	}
	if err != nil {
		return nil, invalid(err)
	}
	return []event.Event{ev}, nil
}

// invalid turns a decoding or validation error into a 400, keeping the
// entry's index for batches.
func invalid(err error) error {
	if err == nil {
		return nil
	}
	var fe *wire.FieldError
	if errors.As(err, &fe) && fe.Index >= 0 {
		entry := *fe
		entry.Index = -1
		return &problem.Error{Code: problem.CodeInvalid, Detail: fmt.Sprintf("batch: entry %d is invalid; nothing was stored", fe.Index),
			Items: []problem.ItemError{{Index: fe.Index, Detail: entry.Error()}}}
	}
	return problem.New(problem.CodeInvalid, err.Error())
}

// messages prepares every event; a batch is validated as a whole and all of
// its invalid entries are reported.
func (s *Server) messages(topic, key string, mode wire.Mode, events []event.Event) ([]broker.Message, error) {
	now := time.Now().UTC()
	msgs := make([]broker.Message, len(events))
	var items []problem.ItemError
	var tooLarge bool
	for i := range events {
		ev := &events[i]
		fp := dedup.Fingerprint(ev)
		if mode == wire.ModeRaw {
			s.setRawDefaults(ev)
		}
		if ev.Time().IsZero() {
			ev.SetTime(now)
		}
		err := wire.Validate(ev)
		if err == nil && eventSize(ev) > s.limits.MaxEventBytes {
			err, tooLarge = fmt.Errorf("event: more than http.max_event_bytes (%d)", s.limits.MaxEventBytes), true
		}
		if err != nil {
			items = append(items, problem.ItemError{Index: i, Detail: err.Error()})
			continue
		}
		msgs[i] = broker.Message{Topic: topic, Event: ev, MsgID: dedup.MsgID(topic, key, ev), Fingerprint: fp}
	}
	if len(items) == 0 {
		return msgs, nil
	}
	code := problem.CodeInvalid
	if tooLarge && len(items) == 1 {
		code = problem.CodeTooLarge
	}
	if mode != wire.ModeBatch {
		return nil, problem.New(code, items[0].Detail)
	}
	return nil, &problem.Error{Code: code, Detail: fmt.Sprintf("batch: %d of %d entries are invalid; nothing was stored", len(items), len(events)), Items: items}
}

func (s *Server) setRawDefaults(ev *event.Event) {
	id, err := uuid.NewV7()
	if err != nil {
		id = uuid.New()
	}
	ev.SetID(id.String())
	ev.SetSource(s.cfg.DefaultSource())
}

// eventSize is the event's size as stored: attribute names and values plus data.
func eventSize(ev *event.Event) int64 {
	n := int64(len(ev.Data()))
	wire.EachAttribute(ev, func(name, value string) { n += int64(len(wire.HeaderPrefix) + len(name) + len(value)) })
	return n
}

// answer turns the broker's receipts into results, or into the error the
// request must answer with: 429/503 when an event was not stored, 422 when a
// key was reused with a different event.
func (s *Server) answer(req *request, receipts []broker.Receipt) ([]Result, error) {
	results := make([]Result, len(receipts))
	var failed error
	var conflicts []problem.ItemError
	stored, dups := 0, 0
	for i, rc := range receipts {
		ev := req.msgs[i].Event
		results[i] = Result{ID: ev.ID(), Source: ev.Source(), Sequence: rc.Sequence, Duplicate: rc.Duplicate}
		switch {
		case rc.Err != nil:
			results[i].Error = "not stored: " + rc.Err.Error()
			failed = cmp.Or(failed, rc.Err)
		case rc.Duplicate && rc.Fingerprint != "" && rc.Fingerprint != req.msgs[i].Fingerprint:
			conflicts = append(conflicts, problem.ItemError{Index: i, Detail: fmt.Sprintf("idempotency key of sequence %d reused with a different event", rc.Sequence)})
		case rc.Duplicate:
			dups++
			if rc.ID != "" {
				results[i].ID, results[i].Source = rc.ID, rc.Source
			}
		default:
			stored++
		}
	}
	s.metrics.publishedBy.of(req.mode).Add(float64(stored))
	s.metrics.duplicatesBy.of(req.mode).Add(float64(dups))
	if failed != nil {
		return nil, unstored(req.mode, failed, results)
	}
	if len(conflicts) > 0 {
		e := &problem.Error{Code: problem.CodeConflict, Detail: conflicts[0].Detail}
		if req.mode == wire.ModeBatch {
			e.Detail = fmt.Sprintf("batch: %d entries reuse an idempotency key with a different event", len(conflicts))
			e.Items, e.Results = conflicts, results
		}
		return nil, e
	}
	return results, nil
}

func unstored(mode wire.Mode, cause error, results []Result) error {
	e := &problem.Error{Code: problem.CodeUnavailable, Detail: "not stored: " + cause.Error(), RetryAfter: problem.DefaultRetryAfter}
	if errors.Is(cause, broker.ErrOverloaded) {
		e.Code = problem.CodeOverloaded
	}
	if errors.Is(cause, context.Canceled) {
		e.Detail = "not stored: the request was cancelled"
	}
	if mode == wire.ModeBatch {
		e.Detail = "batch: not every entry was stored (see results); resending the whole batch is safe: " + cause.Error()
		e.Results = results
	}
	return e
}

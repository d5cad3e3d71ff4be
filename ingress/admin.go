package ingress

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/go-chi/chi/v5"

	"github.com/eventsidecar/eventsidecar/egress"
)

// maxAdminBody bounds the body of an admin request.
const maxAdminBody = 1 << 20

// maxDeadLetterLimit is the largest limit a dead-letter listing accepts.
const maxDeadLetterLimit = 1000

// deadLetter is one entry of GET /v1/subscriptions/{name}/deadletters: its
// stream sequence, the event as it was before it was dead-lettered
// (structured JSON), and its dead-letter attributes under their names
// (contract §5), the Integer ones as JSON numbers.
type deadLetter struct {
	Sequence     uint64          `json:"sequence"`
	Event        json.RawMessage `json:"event"`
	Reason       string          `json:"dlqreason"`
	Status       int             `json:"dlqstatus"`
	Body         string          `json:"dlqbody"`
	Attempts     int             `json:"dlqattempts"`
	Subscription string          `json:"dlqsubscription"`
	Time         string          `json:"dlqtime"`
}

// replayRequest is the body of POST .../deadletters/replay. IDs nil (absent
// or null) means every dead letter.
type replayRequest struct {
	IDs []string `json:"ids"`
}

// adminRoutes mounts the subscription and dead-letter admin API.
func (s *Server) adminRoutes(r chi.Router) {
	r.Get("/subscriptions", s.listSubscriptions)
	r.Get("/subscriptions/{name}/deadletters", s.listDeadLetters)
	r.Delete("/subscriptions/{name}/deadletters", s.purgeDeadLetters)
	r.Post("/subscriptions/{name}/deadletters/replay", s.replayDeadLetters)
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	stats := []egress.Stats{}
	if s.subs != nil {
		stats = append(stats, s.subs.Stats(r.Context())...)
	}
	writeJSON(w, http.StatusOK, map[string][]egress.Stats{"subscriptions": stats})
}

func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	limit, err := deadLetterLimit(r)
	if err != nil {
		writeProblem(w, err)
		return
	}
	name, dl, err := s.deadLetters(r)
	if err != nil {
		writeProblem(w, err)
		return
	}
	list, err := dl.List(r.Context(), limit)
	if err != nil {
		writeProblem(w, s.brokerFailure(name, "list", err))
		return
	}
	out := make([]deadLetter, 0, len(list))
	for _, d := range list {
		out = append(out, newDeadLetter(d))
	}
	writeJSON(w, http.StatusOK, map[string][]deadLetter{"deadletters": out})
}

func (s *Server) replayDeadLetters(w http.ResponseWriter, r *http.Request) {
	req, err := s.decodeReplay(w, r)
	if err != nil {
		writeProblem(w, err)
		return
	}
	name, dl, err := s.deadLetters(r)
	if err != nil {
		writeProblem(w, err)
		return
	}
	if req.IDs != nil && len(req.IDs) == 0 {
		// An explicitly empty list replays nothing (the store reads no ids
		// as all).
		writeJSON(w, http.StatusOK, map[string]int{"replayed": 0})
		return
	}
	n, err := dl.Replay(r.Context(), req.IDs)
	if err != nil {
		writeProblem(w, s.brokerFailure(name, fmt.Sprintf("replay (%d replayed)", n), err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"replayed": n})
}

func (s *Server) purgeDeadLetters(w http.ResponseWriter, r *http.Request) {
	ids := r.URL.Query()["id"]
	for _, id := range ids {
		if id == "" {
			writeProblem(w, errorf(CodeInvalid, "query parameter id: empty"))
			return
		}
	}
	name, dl, err := s.deadLetters(r)
	if err != nil {
		writeProblem(w, err)
		return
	}
	n, err := dl.Purge(r.Context(), ids)
	if err != nil {
		writeProblem(w, s.brokerFailure(name, fmt.Sprintf("purge (%d purged)", n), err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"purged": n})
}

// deadLetters returns the dead letters of the subscription named in the
// path, or a not-found error.
func (s *Server) deadLetters(r *http.Request) (string, *egress.DeadLetters, error) {
	name := chi.URLParam(r, "name")
	notFound := errorf(CodeNotFound, fmt.Sprintf("subscription %q is not configured", name))
	if s.subs == nil {
		return name, nil, notFound
	}
	dl, err := s.subs.DeadLetters(name)
	switch {
	case errors.Is(err, egress.ErrUnknownSubscription):
		return name, nil, notFound
	case err != nil:
		s.log.Error("admin: dead letters", "subscription", name, "error", err)
		return name, nil, err
	}
	return name, dl, nil
}

// brokerFailure logs a failed dead-letter operation and returns it as 503.
func (s *Server) brokerFailure(name, op string, err error) error {
	s.log.Warn("admin: dead letters", "subscription", name, "op", op, "error", err)
	return &Error{Code: CodeUnavailable, RetryAfter: retryAfter,
		Detail: fmt.Sprintf("dead letters of subscription %q: %s: %v", name, op, err)}
}

// deadLetterLimit reads ?limit=N: 0 (the store's default) when absent,
// else an integer from 1 to maxDeadLetterLimit.
func deadLetterLimit(r *http.Request) (int, error) {
	q := r.URL.Query()
	if !q.Has("limit") {
		return 0, nil
	}
	v := q.Get("limit")
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxDeadLetterLimit {
		return 0, errorf(CodeInvalid, fmt.Sprintf("query parameter limit: %q is not an integer from 1 to %d", v, maxDeadLetterLimit))
	}
	return n, nil
}

// decodeReplay reads a replay request: an empty body or one JSON object
// with no members other than "ids", whose entries must not be empty.
func (s *Server) decodeReplay(w http.ResponseWriter, r *http.Request) (replayRequest, error) {
	var req replayRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	switch {
	case err != nil:
		return req, s.bodyError(w, err, maxAdminBody)
	case len(bytes.TrimSpace(body)) == 0:
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, errorf(CodeInvalid, fmt.Sprintf(`body: want {} or {"ids":[...]}: %v`, err))
	}
	if dec.More() {
		return req, errorf(CodeInvalid, "body: data after the JSON object")
	}
	for i, id := range req.IDs {
		if id == "" {
			return req, errorf(CodeInvalid, fmt.Sprintf("body: ids[%d]: empty", i))
		}
	}
	return req, nil
}

func newDeadLetter(d egress.DeadLetter) deadLetter {
	ev := &d.Event
	original := egress.Original(d.Event)
	return deadLetter{
		Sequence:     d.Sequence,
		Event:        json.RawMessage(egress.StructuredJSON(&original)),
		Reason:       extString(ev, egress.ExtDLQReason),
		Status:       extInt(ev, egress.ExtDLQStatus),
		Body:         extString(ev, egress.ExtDLQBody),
		Attempts:     extInt(ev, egress.ExtDLQAttempts),
		Subscription: extString(ev, egress.ExtDLQSubscription),
		Time:         extString(ev, egress.ExtDLQTime),
	}
}

// extString is an extension's canonical string form, "" when absent.
func extString(ev *event.Event, name string) string {
	v, ok := ev.Extensions()[name]
	if !ok {
		return ""
	}
	s, err := types.Format(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return s
}

// extInt is an extension's integer value (events read from the stream hold
// strings), 0 when absent or not an integer.
func extInt(ev *event.Event, name string) int {
	n, err := strconv.Atoi(strings.TrimSpace(extString(ev, name)))
	if err != nil {
		return 0
	}
	return n
}

package egress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"github.com/go-chi/chi/v5"

	"github.com/eventsidecar/eventsidecar/problem"
	"github.com/eventsidecar/eventsidecar/wire"
)

// maxAdminBody bounds the body of an admin request.
const maxAdminBody = 1 << 20

// maxDeadLetterLimit is the largest limit a dead-letter listing accepts.
const maxDeadLetterLimit = 1000

// Subscriptions is what the admin API reads and operates on; *Manager
// satisfies it. It must be safe for concurrent use.
type Subscriptions interface {
	// Stats returns every subscription's live state, in configuration order.
	Stats(ctx context.Context) []Stats
	// DeadLetters returns the named subscription's dead letters, or an
	// error wrapping ErrUnknownSubscription.
	DeadLetters(name string) (*DeadLetters, error)
}

// Admin is the HTTP admin API of subscriptions and dead letters (contract
// §4.4): listing the subscriptions, and listing, replaying and purging a
// subscription's dead letters. Errors are problem JSON. It is safe for
// concurrent use.
type Admin struct {
	subs        Subscriptions
	readTimeout time.Duration
	log         *slog.Logger
}

// NewAdmin returns the admin API over subs. readTimeout is the server's
// http.read_timeout, named in the 408 of a body that did not arrive in
// time.
func NewAdmin(subs Subscriptions, readTimeout time.Duration, log *slog.Logger) *Admin {
	return &Admin{subs: subs, readTimeout: readTimeout, log: log}
}

// deadLetter is one entry of GET /v1/subscriptions/{name}/deadletters: its
// stream sequence, the event as it was before it was dead-lettered
// (structured JSON), and its dead-letter attributes under their names
// (contract §5), the Integer ones as JSON numbers. The dlq* tags spell
// the ExtDLQ* constants, which a struct tag cannot name;
// TestDeadLetterJSONNames holds them together.
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

// Routes adds the admin API's routes to r (the caller mounts r under /v1
// behind its authentication).
func (a *Admin) Routes(r chi.Router) {
	r.Get("/subscriptions", a.listSubscriptions)
	r.Get("/subscriptions/{name}/deadletters", a.listDeadLetters)
	r.Delete("/subscriptions/{name}/deadletters", a.purgeDeadLetters)
	r.Post("/subscriptions/{name}/deadletters/replay", a.replayDeadLetters)
}

func (a *Admin) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	stats := append([]Stats{}, a.subs.Stats(r.Context())...)
	problem.WriteJSON(w, http.StatusOK, map[string][]Stats{"subscriptions": stats})
}

func (a *Admin) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	limit, err := deadLetterLimit(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	name, dl, err := a.deadLetters(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	list, err := dl.List(r.Context(), limit)
	if err != nil {
		problem.Write(w, a.brokerFailure(name, "list", err))
		return
	}
	out := make([]deadLetter, 0, len(list))
	for _, d := range list {
		out = append(out, newDeadLetter(d))
	}
	problem.WriteJSON(w, http.StatusOK, map[string][]deadLetter{"deadletters": out})
}

func (a *Admin) replayDeadLetters(w http.ResponseWriter, r *http.Request) {
	req, err := a.decodeReplay(w, r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	name, dl, err := a.deadLetters(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	if req.IDs != nil && len(req.IDs) == 0 {
		// An explicitly empty list replays nothing (the store reads no ids
		// as all).
		problem.WriteJSON(w, http.StatusOK, map[string]int{"replayed": 0})
		return
	}
	n, err := dl.Replay(r.Context(), req.IDs)
	if err != nil {
		problem.Write(w, a.brokerFailure(name, fmt.Sprintf("replay (%d replayed)", n), err))
		return
	}
	problem.WriteJSON(w, http.StatusOK, map[string]int{"replayed": n})
}

func (a *Admin) purgeDeadLetters(w http.ResponseWriter, r *http.Request) {
	ids := r.URL.Query()["id"]
	for _, id := range ids {
		if id == "" {
			problem.Write(w, problem.New(problem.CodeInvalid, "query parameter id: empty"))
			return
		}
	}
	name, dl, err := a.deadLetters(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	n, err := dl.Purge(r.Context(), ids)
	if err != nil {
		problem.Write(w, a.brokerFailure(name, fmt.Sprintf("purge (%d purged)", n), err))
		return
	}
	problem.WriteJSON(w, http.StatusOK, map[string]int{"purged": n})
}

// deadLetters returns the dead letters of the subscription named in the
// path, or a not-found error.
func (a *Admin) deadLetters(r *http.Request) (string, *DeadLetters, error) {
	name := chi.URLParam(r, "name")
	dl, err := a.subs.DeadLetters(name)
	switch {
	case errors.Is(err, ErrUnknownSubscription):
		return name, nil, problem.New(problem.CodeNotFound, fmt.Sprintf("subscription %q is not configured", name))
	case err != nil:
		a.log.Error("admin: dead letters", "subscription", name, "error", err)
		return name, nil, err
	}
	return name, dl, nil
}

// brokerFailure logs a failed dead-letter operation and returns it as 503.
func (a *Admin) brokerFailure(name, op string, err error) error {
	a.log.Warn("admin: dead letters", "subscription", name, "op", op, "error", err)
	return &problem.Error{Code: problem.CodeUnavailable, RetryAfter: problem.DefaultRetryAfter,
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
		return 0, problem.New(problem.CodeInvalid, fmt.Sprintf("query parameter limit: %q is not an integer from 1 to %d", v, maxDeadLetterLimit))
	}
	return n, nil
}

// decodeReplay reads a replay request: an empty body or one JSON object
// with no members other than "ids", whose entries must not be empty.
func (a *Admin) decodeReplay(w http.ResponseWriter, r *http.Request) (replayRequest, error) {
	var req replayRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	switch {
	case err != nil:
		return req, problem.BodyError(w, err, maxAdminBody, a.readTimeout)
	case len(bytes.TrimSpace(body)) == 0:
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, problem.New(problem.CodeInvalid, fmt.Sprintf(`body: want {} or {"ids":[...]}: %v`, err))
	}
	if dec.More() {
		return req, problem.New(problem.CodeInvalid, "body: data after the JSON object")
	}
	for i, id := range req.IDs {
		if id == "" {
			return req, problem.New(problem.CodeInvalid, fmt.Sprintf("body: ids[%d]: empty", i))
		}
	}
	return req, nil
}

func newDeadLetter(d DeadLetter) deadLetter {
	ev := &d.Event
	original := Original(d.Event)
	return deadLetter{
		Sequence:     d.Sequence,
		Event:        json.RawMessage(wire.EncodeStructured(&original)),
		Reason:       extString(ev, ExtDLQReason),
		Status:       extInt(ev, ExtDLQStatus),
		Body:         extString(ev, ExtDLQBody),
		Attempts:     extInt(ev, ExtDLQAttempts),
		Subscription: extString(ev, ExtDLQSubscription),
		Time:         extString(ev, ExtDLQTime),
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

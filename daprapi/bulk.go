package daprapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/dapr"
	"github.com/eventsidecar/eventsidecar/ingress"
	"github.com/eventsidecar/eventsidecar/problem"
	"github.com/eventsidecar/eventsidecar/wire"
)

// entry is one entry of a bulk publish, from HTTP JSON or gRPC.
type entry struct {
	id          string
	data        []byte
	contentType string
	// metadata is the entry's own; nil when it has none (then it takes
	// none of the request's either, as in Dapr).
	metadata dapr.Metadata
}

// bulkEntryJSON is an entry of Dapr's HTTP bulk body. encoding/json
// matches "entryId" without regard to case, as Dapr does, so the
// JavaScript SDK's "entryID" is read too.
type bulkEntryJSON struct {
	EntryID     string            `json:"entryId"`
	Event       json.RawMessage   `json:"event"`
	ContentType string            `json:"contentType"`
	Metadata    map[string]string `json:"metadata"`
}

// errMismatch is Dapr's cause for an event that its contentType does not
// describe.
var errMismatch = errors.New("error: mismatch between contentType and event")

// bulk is POST|PUT /v1.0-alpha1/publish/bulk/{pubsub}/{topic} (and
// /v1.0/publish/bulk/...): a JSON array of entries, stored as one batch;
// 204 when every entry is stored, else Dapr's error JSON with
// failedEntries (see publishBulk).
func (s *Server) bulk(w http.ResponseWriter, r *http.Request) {
	pubsub, topic := pathTarget(r)
	if e := s.target(pubsub, topic); e != nil {
		dapr.WriteJSON(w, e)
		return
	}
	md := dapr.FromQuery(r.URL.Query())
	if _, err := md.RawPayload(); err != nil {
		dapr.WriteJSON(w, s.daprError(metadataError(err), pubsub, topic))
		return
	}
	body, release, err := s.readBody(w, r, s.cfg.HTTP.MaxBatchBytes)
	if err != nil {
		dapr.WriteJSON(w, s.daprError(err, pubsub, topic))
		return
	}
	defer release()
	entries, err := decodeBulk(body)
	if err != nil {
		dapr.WriteJSON(w, s.daprError(err, pubsub, topic))
		return
	}
	failed, e := s.publishBulk(traceContext(r), pubsub, topic, entries, md)
	switch {
	case e != nil:
		dapr.WriteJSON(w, e)
	case len(failed) > 0:
		dapr.WriteJSON(w, &dapr.Error{Code: dapr.CodePublish, PubSub: pubsub, Topic: topic,
			Cause: fmt.Sprintf("%d of %d entries were not stored", len(failed), len(entries)), FailedEntries: failed})
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// decodeBulk decodes Dapr's HTTP bulk body. Each event is read as its
// contentType says, as Dapr does: application/octet-stream a base64
// string, text/* and application/xml a string, application/json and
// application/cloudevents+json any JSON (kept as sent); any other content
// type is a mismatch.
func decodeBulk(body []byte) ([]entry, error) {
	var in []bulkEntryJSON
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, &dapr.Error{Code: dapr.CodeUnmarshalEvents, Cause: err.Error()}
	}
	entries := make([]entry, len(in))
	for i, e := range in {
		data, err := eventBytes(e.Event, e.ContentType)
		if err != nil {
			return nil, &dapr.Error{Code: dapr.CodeMarshalEnvelope, Cause: fmt.Sprintf("entry %q: %v", e.EntryID, err)}
		}
		entries[i] = entry{id: e.EntryID, data: data, contentType: e.ContentType, metadata: e.Metadata}
	}
	return entries, nil
}

// eventBytes is the data of an entry's event (JSON) of contentType.
func eventBytes(ev json.RawMessage, contentType string) ([]byte, error) {
	mt := wire.MediaType(contentType)
	switch {
	case mt == "application/octet-stream":
		var s string
		if json.Unmarshal(ev, &s) != nil {
			return nil, errMismatch
		}
		data, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("error: unable to decode base64 application/octet-stream data: %w", err)
		}
		return data, nil
	case strings.HasPrefix(mt, "text/") || mt == "application/xml":
		var s string
		if json.Unmarshal(ev, &s) != nil {
			return nil, errMismatch
		}
		return []byte(s), nil
	case mt == "application/json" || mt == wire.StructuredMediaType:
		if ev == nil {
			return []byte("null"), nil
		}
		return ev, nil
	}
	return nil, errMismatch
}

// publishBulk stores a bulk publish of entries to topic in pubsub
// (checked by target), with the request's metadata md, as one batch,
// over HTTP or gRPC alike. Every entry is checked before anything is
// stored: an entry id missing or given twice, too many entries, or an
// entry that is not a valid event answers the whole request. Once the
// batch went to the broker: nil, nil when every entry is stored; the
// failed entries when only some are (a partial failure); the publish
// path's error with every entry failed when none is.
func (s *Server) publishBulk(ctx context.Context, pubsub, topic string, entries []entry, md dapr.Metadata) ([]dapr.FailedEntry, *dapr.Error) {
	raw, err := md.RawPayload()
	if err != nil {
		return nil, s.daprError(metadataError(err), pubsub, topic)
	}
	if err := s.checkEntries(entries); err != nil {
		return nil, s.daprError(err, pubsub, topic)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	events := make([]event.Event, len(entries))
	for i, en := range entries {
		if events[i], err = s.event(raw, en.contentType, en.data, en.metadata.Merge(md)); err != nil {
			return nil, s.daprError(entryError(err, en.id), pubsub, topic)
		}
	}
	_, err = s.store.Store(ctx, ingress.Input{Topic: topic, Mode: wire.ModeBatch, Events: events})
	if err == nil {
		return nil, nil
	}
	return s.bulkFailure(err, pubsub, topic, entries)
}

// checkEntries requires a unique id of every entry and at most
// http.max_batch_events entries.
func (s *Server) checkEntries(entries []entry) error {
	seen := make(map[string]bool, len(entries))
	for _, en := range entries {
		if en.id == "" || seen[en.id] {
			return &dapr.Error{Code: dapr.CodeMarshalEvents, Cause: "entryId is duplicated or not present for entry"}
		}
		seen[en.id] = true
	}
	if len(entries) > s.limits.MaxBatchEvents {
		return problem.New(problem.CodeTooLarge, fmt.Sprintf("%d entries, more than http.max_batch_events (%d)", len(entries), s.limits.MaxBatchEvents))
	}
	return nil
}

// entryError names the entry id in the cause of a *dapr.Error.
func entryError(err error, id string) error {
	var e *dapr.Error
	if errors.As(err, &e) {
		e.Cause = fmt.Sprintf("entry %q: %s", id, e.Cause)
	}
	return err
}

// bulkFailure is the answer of a batch the publish path refused or did
// not store whole (see publishBulk).
func (s *Server) bulkFailure(err error, pubsub, topic string, entries []entry) ([]dapr.FailedEntry, *dapr.Error) {
	p := problem.From(err)
	results, _ := p.Results.([]ingress.Result)
	if results == nil {
		return nil, s.daprError(namedItems(p, entries), pubsub, topic)
	}
	var failed []dapr.FailedEntry
	for i, r := range results {
		if r.Error != "" {
			failed = append(failed, dapr.FailedEntry{EntryID: entries[i].id, Error: r.Error})
		}
	}
	for _, it := range p.Items {
		failed = append(failed, dapr.FailedEntry{EntryID: entries[it.Index].id, Error: it.Detail})
	}
	if len(failed) < len(entries) {
		return failed, nil
	}
	e := s.daprError(p, pubsub, topic)
	e.FailedEntries = failed
	return nil, e
}

// namedItems is p with the entries it names by index named by entry id
// in its detail.
func namedItems(p *problem.Error, entries []entry) *problem.Error {
	if len(p.Items) == 0 {
		return p
	}
	named := *p
	var b strings.Builder
	b.WriteString(p.Detail)
	for _, it := range p.Items {
		fmt.Fprintf(&b, "; entry %q: %s", entries[it.Index].id, it.Detail)
	}
	named.Detail, named.Items = b.String(), nil
	return &named
}

package daprapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/wire"
)

const bulkPath = "/v1.0-alpha1/publish/bulk/pubsub/orders"

func TestBulkPublish(t *testing.T) {
	h := newHarness(t, nil)
	// As the JavaScript SDK sends it ("entryID", metadata {}), with an
	// entry of Dapr's spelling and one without metadata.
	body := `[{"entryID":"a","event":{"orderId":1},"contentType":"application/json","metadata":{}},
		{"entryID":"b","event":"two","contentType":"text/plain","metadata":{"cloudevent.subject":"s"}},
		{"entryId":"c","event":{"specversion":"1.0","id":"ce-2","source":"/s","type":"t","data":"x"},"contentType":"application/cloudevents+json","metadata":{}},
		{"entryId":"d","event":"AQID","contentType":"application/octet-stream"}]`
	wantNoContent(t, h.post(bulkPath+"?metadata.cloudevent.type=bulk.t", body, "Content-Type: application/json"))
	events, subjects := h.stored()
	if len(events) != 4 {
		t.Fatalf("%d events stored, want 4", len(events))
	}
	wantEvent(t, events[0], stored{source: "shop", typ: "bulk.t", contentType: "application/json", data: `{"orderId":1}`})
	wantEvent(t, events[1], stored{source: "shop", typ: "bulk.t", contentType: "text/plain", data: "two"})
	wantEvent(t, events[2], stored{id: "ce-2", source: "/s", typ: "t", contentType: "", data: `"x"`})
	wantEvent(t, events[3], stored{source: "shop", typ: "com.dapr.event.sent", contentType: "application/octet-stream", data: "\x01\x02\x03"})
	if events[1].Subject() != "s" {
		t.Errorf("entry b's subject = %q, want its metadata's", events[1].Subject())
	}
	for _, s := range subjects {
		if s != "events.orders" {
			t.Errorf("subject %s, want events.orders", s)
		}
	}
}

func TestBulkRoutesAndRaw(t *testing.T) {
	h := newHarness(t, nil)
	entry := `[{"entryId":"1","event":{"n":1},"contentType":"application/json"}]`
	wantNoContent(t, h.post("/v1.0/publish/bulk/pubsub/orders", entry))
	wantNoContent(t, h.do(http.MethodPut, bulkPath+"?metadata.rawPayload=true", entry))
	wantNoContent(t, h.post(bulkPath, `[]`))
	events, _ := h.stored()
	if len(events) != 2 {
		t.Fatalf("%d events stored, want 2", len(events))
	}
	wantEvent(t, events[0], stored{source: "shop", typ: "com.dapr.event.sent", contentType: "application/json", data: `{"n":1}`})
	wantEvent(t, events[1], stored{source: "/eventsidecar/shop", typ: wire.RawType, contentType: "application/json", data: `{"n":1}`})
}

func TestBulkErrorsStoreNothing(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.HTTP.MaxBatchEvents = 3
		c.HTTP.MaxEventBytes = 400
		c.HTTP.MaxBatchBytes = 1000
	})
	ok := `{"entryId":"ok","event":"x","contentType":"text/plain"}`
	tests := []struct {
		name, query, body string
		status            int
		errorCode         string
		messageHas        string
	}{
		{"not an array", "", `{"entryId":"1"}`, 400, "ERR_PUBSUB_EVENTS_SER", "unmarshaling"},
		{"not JSON", "", `[`, 400, "ERR_PUBSUB_EVENTS_SER", "unmarshaling"},
		{"text event not a string", "", `[{"entryId":"1","event":{"a":1},"contentType":"text/plain"}]`, 400, "ERR_PUBSUB_EVENTS_SER", "mismatch"},
		{"no content type", "", `[{"entryId":"1","event":"x"}]`, 400, "ERR_PUBSUB_EVENTS_SER", "mismatch"},
		{"other content type", "", `[{"entryId":"1","event":"x","contentType":"application/vnd.api+json"}]`, 400, "ERR_PUBSUB_EVENTS_SER", "mismatch"},
		{"bad base64", "", `[{"entryId":"1","event":"!!","contentType":"application/octet-stream"}]`, 400, "ERR_PUBSUB_EVENTS_SER", "base64"},
		{"entry id missing", "", `[` + ok + `,{"event":"x","contentType":"text/plain"}]`, 400, "ERR_PUBSUB_EVENTS_SER", "entryId is duplicated or not present"},
		{"entry id twice", "", `[` + ok + `,` + ok + `]`, 400, "ERR_PUBSUB_EVENTS_SER", "entryId is duplicated or not present"},
		{"bad rawPayload", "?metadata.rawPayload=maybe", `[` + ok + `]`, 400, "ERR_PUBSUB_REQUEST_METADATA", "rawPayload"},
		{"bad ttl of an entry", "", `[` + ok + `,{"entryId":"e2","event":"x","contentType":"text/plain","metadata":{"ttl":"soon"}}]`, 400, "ERR_PUBSUB_REQUEST_METADATA", `entry "e2"`},
		{"invalid entry", "", `[` + ok + `,{"entryId":"e2","event":{"specversion":"1.0","data":1},"contentType":"application/cloudevents+json"}]`, 400, "ERR_PUBSUB_CLOUD_EVENTS_SER", `entry "e2": id: is required`},
		{"entry too large", "", `[` + ok + `,{"entryId":"big","event":"` + strings.Repeat("x", 401) + `","contentType":"text/plain"}]`, 413, "ERR_PUBSUB_PUBLISH_MESSAGE", `entry "big"`},
		{"too many entries", "", textEntries(4), 413, "ERR_PUBSUB_PUBLISH_MESSAGE", "4 entries, more than http.max_batch_events (3)"},
		{"body too large", "", `[` + strings.Repeat(" ", 1000) + `]`, 413, "ERR_PUBSUB_PUBLISH_MESSAGE", "1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := wantError(t, h.post(bulkPath+tt.query, tt.body, "Content-Type: application/json"), tt.status, tt.errorCode)
			if !strings.Contains(body.Message, tt.messageHas) || len(body.FailedEntries) != 0 {
				t.Errorf("message %q, failedEntries %v; want the message to contain %q and no failed entries", body.Message, body.FailedEntries, tt.messageHas)
			}
		})
	}
	if events, _ := h.stored(); len(events) != 0 {
		t.Errorf("%d events stored, want none", len(events))
	}
}

func TestBulkResendIsIdempotent(t *testing.T) {
	h := newHarness(t, nil)
	body := `[{"entryId":"1","event":"a","contentType":"text/plain","metadata":{"cloudevent.id":"o-1"}},
		{"entryId":"2","event":"b","contentType":"text/plain","metadata":{"cloudevent.id":"o-2"}}]`
	wantNoContent(t, h.post(bulkPath, body))
	wantNoContent(t, h.post(bulkPath, body))
	if events, _ := h.stored(); len(events) != 2 {
		t.Errorf("%d events stored after a resend, want 2", len(events))
	}
}

// A conflict is a real partial failure: the entries that reuse an id with
// other content are not stored, the others are.
func TestBulkPartialFailure(t *testing.T) {
	h := newHarness(t, nil)
	wantNoContent(t, h.post("/v1.0/publish/pubsub/orders?metadata.cloudevent.id=x", "first"))
	body := `[{"entryId":"new","event":"n","contentType":"text/plain","metadata":{}},
		{"entryId":"reused","event":"other","contentType":"text/plain","metadata":{}}]`
	resp := h.post(bulkPath+"?metadata.cloudevent.id=x", strings.Replace(body, `"metadata":{}}`, `"metadata":{"cloudevent.id":"y"}}`, 1))
	got := wantError(t, resp, http.StatusInternalServerError, "ERR_PUBSUB_PUBLISH_MESSAGE")
	if len(got.FailedEntries) != 1 || got.FailedEntries[0].EntryID != "reused" || got.FailedEntries[0].EntryID2 != "reused" ||
		!strings.Contains(got.FailedEntries[0].Error, "different event") {
		t.Errorf("failedEntries = %+v, want only \"reused\", in both spellings", got.FailedEntries)
	}
	if events, _ := h.stored(); len(events) != 2 || events[1].ID() != "y" {
		t.Errorf("stored %d events, want the first and the bulk's new one", len(events))
	}

	all := wantError(t, h.post(bulkPath+"?metadata.cloudevent.id=x", `[{"entryId":"r","event":"again","contentType":"text/plain","metadata":{}}]`),
		http.StatusUnprocessableEntity, "ERR_PUBSUB_PUBLISH_MESSAGE")
	if len(all.FailedEntries) != 1 || all.FailedEntries[0].EntryID != "r" {
		t.Errorf("failedEntries = %+v, want [r]", all.FailedEntries)
	}
}

// textEntries is a bulk body of n text entries with ids e0, e1, ...
func textEntries(n int) string {
	entries := make([]string, n)
	for i := range entries {
		entries[i] = fmt.Sprintf(`{"entryId":"e%d","event":"x","contentType":"text/plain"}`, i)
	}
	return "[" + strings.Join(entries, ",") + "]"
}

// Over capacity nothing is stored: the whole request answers 429 with
// Retry-After, every entry failed.
func TestBulkOverCapacity(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Broker.MaxPending = 1 })
	resp := h.post(bulkPath, textEntries(2))
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	got := wantError(t, resp, http.StatusTooManyRequests, "ERR_PUBSUB_PUBLISH_MESSAGE")
	if len(got.FailedEntries) != 2 || got.FailedEntries[0].EntryID != "e0" || got.FailedEntries[1].EntryID != "e1" {
		t.Errorf("failedEntries = %+v, want e0 and e1", got.FailedEntries)
	}
	if events, _ := h.stored(); len(events) != 0 {
		t.Errorf("%d events stored, want none", len(events))
	}
}

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/dedup"
	"github.com/eventsidecar/eventsidecar/wire"
)

// Topic is where every scenario publishes.
const Topic = "bench.orders"

const (
	// eventSource and eventType are the attributes of every event.
	eventSource = "/bench/orders"
	eventType   = "com.example.order.created"
	// dataType is the datacontenttype of every event.
	dataType = "application/json"
)

// eventData is the data of every event: 100 bytes of JSON.
var eventData = []byte(`{"order_id":"ord-0000000042","customer_id":"cus-0000000007","amount_cents":1299000,"currency":"EUR"}`)

// eventTime is the time attribute of every event, fixed so that every event
// has the same size; clients send it, so the sidecar does not fill it in.
var eventTime = time.Date(2025, 1, 2, 3, 4, 5, 678901000, time.UTC)

// eventTimeText is eventTime as the ce-time header carries it.
var eventTimeText = eventTime.Format(time.RFC3339Nano)

// EventID is the id of worker w's seq-th event: unique within a run and of
// fixed width, so that every event has the same size.
func EventID(w int, seq uint64) string {
	return fmt.Sprintf("evt-%03d-%012d", w, seq)
}

// newEvent is the event with EventID(w, seq) and the in-process
// scenarios' data, as the sidecar decodes it from a binary-mode request.
func newEvent(w int, seq uint64) *event.Event {
	return eventOf(EventID(w, seq), eventData)
}

// eventOf is the benchmark's event with id and data.
func eventOf(id string, data []byte) *event.Event {
	ev := event.New()
	ev.SetID(id)
	ev.SetSource(eventSource)
	ev.SetType(eventType)
	ev.SetTime(eventTime)
	ev.SetDataContentType(dataType)
	ev.DataEncoded = data
	return &ev
}

// storedMessage is what the sidecar's ingress stores for ev: the same
// idempotency key (no Idempotency-Key header, so source and id) and the
// same fingerprint.
func storedMessage(ev *event.Event) broker.Message {
	return broker.Message{Topic: Topic, Event: ev, MsgID: dedup.MsgID(Topic, "", ev), Fingerprint: dedup.Fingerprint(ev)}
}

// StoredMsg is the message the sidecar stores for worker w's seq-th event
// (the events the load generators publish) on subject, in the same
// encoding: its ce- headers, Nats-Msg-Id and fingerprint.
func StoredMsg(subject string, w int, seq uint64) *nats.Msg {
	return broker.Encode(subject, storedMessage(newEvent(w, seq)))
}

// singleRequest is a binary-mode publish of newEvent(w, seq) to url.
func singleRequest(ctx context.Context, url string, w int, seq uint64) (*http.Request, error) {
	return BinaryRequest(ctx, url, EventID(w, seq), eventData)
}

// BinaryRequest is a binary-mode publish to url of the benchmark's event
// with id and data, JSON: the same source, type and time as every other.
func BinaryRequest(ctx context.Context, url, id string, data []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("bench: new request: %w", err)
	}
	h := req.Header
	h.Set("Content-Type", dataType)
	h.Set("Ce-Specversion", event.CloudEventsVersionV1)
	h.Set("Ce-Id", id)
	h.Set("Ce-Source", eventSource)
	h.Set("Ce-Type", eventType)
	h.Set("Ce-Time", eventTimeText)
	return req, nil
}

// structured is one event of a batch, in the structured JSON format.
type structured struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// BatchOf builds batch requests of size events with data, JSON: worker
// w's seq-th request carries its events EventID(w, seq*size) to
// EventID(w, seq*size+size-1).
func BatchOf(size int, data []byte) RequestFunc {
	return func(ctx context.Context, url string, w int, seq uint64) (*http.Request, error) {
		return batchRequest(ctx, url, w, seq, size, data)
	}
}

// batchRequest is a batch publish to url of size events with data: worker
// w's events seq*size to seq*size+size-1, each the same as BinaryRequest's.
func batchRequest(ctx context.Context, url string, w int, seq uint64, size int, data []byte) (*http.Request, error) {
	events := make([]structured, size)
	for i := range events {
		events[i] = structured{
			SpecVersion:     event.CloudEventsVersionV1,
			ID:              EventID(w, seq*uint64(size)+uint64(i)),
			Source:          eventSource,
			Type:            eventType,
			Time:            eventTime,
			DataContentType: dataType,
			Data:            data,
		}
	}
	body, err := json.Marshal(events)
	if err != nil {
		return nil, fmt.Errorf("bench: encode batch: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("bench: new request: %w", err)
	}
	req.Header.Set("Content-Type", wire.BatchMediaType)
	return req, nil
}

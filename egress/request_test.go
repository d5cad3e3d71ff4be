package egress

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/tracing"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/eventsidecar/eventsidecar/wire"
)

// appRequest is a request as the app got it.
type appRequest struct {
	header http.Header
	body   []byte
}

// request rebuilds the request, for sdk-go's HTTP binding.
func (r appRequest) request() *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(r.body))
	req.Header = r.header.Clone()
	return req
}

// appReceiver is an app that answers 204 and hands over every request.
func appReceiver(t *testing.T) (*httptest.Server, <-chan appRequest) {
	t.Helper()
	got := make(chan appRequest, 8)
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read request body: %v", err)
		}
		got <- appRequest{header: r.Header.Clone(), body: body}
		w.WriteHeader(http.StatusNoContent)
	}))
	return srv, got
}

// deliver makes one attempt of d with a webhook for sub and returns what
// the app received.
func deliver(t *testing.T, w *Webhook, got <-chan appRequest, d Delivery) appRequest {
	t.Helper()
	return deliverIn(context.Background(), t, w, got, d)
}

// deliverIn is deliver within ctx's trace context.
func deliverIn(ctx context.Context, t *testing.T, w *Webhook, got <-chan appRequest, d Delivery) appRequest {
	t.Helper()
	if o := w.Attempt(ctx, d); o.Kind != Delivered {
		t.Fatalf("Attempt = %+v, want Delivered", o)
	}
	select {
	case r := <-got:
		return r
	default:
		t.Fatal("the app received nothing")
		return appRequest{}
	}
}

// attributes returns every attribute of ev in its canonical string form.
func attributes(ev *event.Event) map[string]string {
	m := map[string]string{}
	wire.EachAttribute(ev, func(name, value string) { m[name] = value })
	return m
}

func assertSameEvent(t *testing.T, got, want *event.Event) {
	t.Helper()
	ga, wa := attributes(got), attributes(want)
	if len(ga) != len(wa) {
		t.Errorf("attributes = %v, want %v", ga, wa)
	}
	for name, v := range wa {
		if ga[name] != v {
			t.Errorf("attribute %s = %q, want %q", name, ga[name], v)
		}
	}
	if !bytes.Equal(got.Data(), want.Data()) {
		t.Errorf("data = %q, want %q", got.Data(), want.Data())
	}
}

func TestBinaryRequestParsesBack(t *testing.T) {
	srv, got := appReceiver(t)
	w := newTestWebhook(t, testSubscription(srv.URL))
	ev := testEvent()
	ev.SetDataSchema("https://example.com/schemas/order.json")
	ev.SetExtension("priority", int32(5))
	ev.SetExtension("urgent", true)

	r := deliver(t, w, got, Delivery{Event: ev, Attempt: 1})
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if v := r.header.Get("ce-datacontenttype"); v != "" {
		t.Errorf("ce-datacontenttype = %q, want none", v)
	}
	parsed, err := binding.ToEvent(context.Background(), cehttp.NewMessageFromHttpRequest(r.request()))
	if err != nil {
		t.Fatalf("sdk-go cannot read the request: %v", err)
	}
	assertSameEvent(t, parsed, ev)
}

func TestBinaryRequestHeaders(t *testing.T) {
	srv, got := appReceiver(t)
	w := newTestWebhook(t, testSubscription(srv.URL))
	tests := []struct {
		name   string
		change func(*event.Event)
		header string
		want   string
	}{
		{"percent-encoded subject", func(ev *event.Event) { ev.SetSubject("Euro € 😀") }, "ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80"},
		{"percent-encoded extension", func(ev *event.Event) { ev.SetExtension("note", `50% "off"`) }, "ce-note", "50%25%20%22off%22"},
		{"no datacontenttype, no Content-Type", func(ev *event.Event) { ev.SetDataContentType("") }, "Content-Type", ""},
		{"Content-Type with parameters", func(ev *event.Event) { ev.SetDataContentType("text/plain; charset=utf-8") }, "Content-Type", "text/plain; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := testEvent()
			tt.change(ev)
			r := deliver(t, w, got, Delivery{Event: ev, Attempt: 1})
			if v := r.header.Get(tt.header); v != tt.want {
				t.Errorf("%s = %q, want %q", tt.header, v, tt.want)
			}
			if !bytes.Equal(r.body, ev.Data()) {
				t.Errorf("body = %q, want %q", r.body, ev.Data())
			}
		})
	}
}

func TestDeliveryHeaders(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	srv, got := appReceiver(t)
	w := newTestWebhook(t, testSubscription(srv.URL))
	remote := otel.GetTextMapPropagator().Extract(context.Background(),
		propagation.MapCarrier{"traceparent": parent, "tracestate": "vendor=abc,other=1"})
	traced, span := tracing.Tracer().Start(remote, "process test")
	defer span.End()
	tests := []struct {
		name                   string
		ctx                    context.Context
		attempt                int
		wantTraceID, wantState string
		wantAttempt            string
	}{
		{"with trace context", traced, 1, "4bf92f3577b34da6a3ce929d0e0e4736", "vendor=abc,other=1", "1"},
		{"without trace context", context.Background(), 4, "", "", "4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := deliverIn(tt.ctx, t, w, got, Delivery{Event: testEvent(), Attempt: tt.attempt})
			tp := r.header.Get("traceparent")
			parts := strings.Split(tp, "-")
			if len(parts) != 4 || len(tp) != 55 {
				t.Fatalf("traceparent = %q, want a W3C traceparent", tp)
			}
			if tt.wantTraceID != "" && (parts[1] != tt.wantTraceID || parts[2] == "00f067aa0ba902b7" || parts[3] != "01") {
				t.Errorf("traceparent = %q, want a child of %q", tp, parent)
			}
			if tt.wantTraceID == "" && strings.Contains(parent, parts[1]) {
				t.Errorf("traceparent = %q continues a trace it was not given", tp)
			}
			if v := r.header.Values("tracestate"); tt.wantState == "" && len(v) != 0 || tt.wantState != "" && r.header.Get("tracestate") != tt.wantState {
				t.Errorf("tracestate = %q, want %q", v, tt.wantState)
			}
			if v := r.header.Get("eventsidecar-attempt"); v != tt.wantAttempt {
				t.Errorf("eventsidecar-attempt = %q, want %q", v, tt.wantAttempt)
			}
			if v := r.header.Get("User-Agent"); v != "eventsidecar" {
				t.Errorf("User-Agent = %q, want eventsidecar", v)
			}
			if v := r.header.Get("webhook-signature"); v != "" {
				t.Errorf("webhook-signature = %q on an unsigned subscription", v)
			}
		})
	}
}

func TestStructuredRequestParsesBack(t *testing.T) {
	srv, got := appReceiver(t)
	sub := testSubscription(srv.URL)
	sub.ContentMode = "structured"
	w := newTestWebhook(t, sub)
	tests := []struct {
		name        string
		contentType string
		data        []byte
		wantMember  string
	}{
		{"JSON", "application/json", []byte(`{"order":42,"items":["a","b"]}`), "data"},
		{"JSON with parameters", "application/json; charset=utf-8", []byte(`[1,2,3]`), "data"},
		{"text", "text/plain", []byte("hello <world> & \"friends\"\n"), "data"},
		{"XML", "application/xml", []byte(`<order id="42"/>`), "data"},
		{"binary", "application/octet-stream", []byte{0, 1, 2, 0xff, 0xfe}, "data_base64"},
		{"text that is not UTF-8", "text/plain", []byte("caf\xe9"), "data_base64"},
		{"JSON type, not JSON", "application/json", []byte(`{"cut`), "data_base64"},
		{"no datacontenttype, JSON", "", []byte(`{"a":1}`), "data"},
		{"no datacontenttype, not JSON", "", []byte("plain words"), "data_base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := testEvent()
			ev.SetDataContentType(tt.contentType)
			ev.DataEncoded = tt.data
			r := deliver(t, w, got, Delivery{Event: ev, Attempt: 1})
			if ct := r.header.Get("Content-Type"); ct != "application/cloudevents+json" {
				t.Errorf("Content-Type = %q, want application/cloudevents+json", ct)
			}
			if v := r.header.Get("ce-id"); v != "" {
				t.Errorf("ce-id = %q in structured mode", v)
			}
			members := jsonMembers(t, r.body)
			if _, ok := members[tt.wantMember]; !ok {
				t.Errorf("no %q member in %s", tt.wantMember, r.body)
			}
			var parsed event.Event
			if err := parsed.UnmarshalJSON(r.body); err != nil {
				t.Fatalf("sdk-go cannot read %s: %v", r.body, err)
			}
			assertSameEvent(t, &parsed, ev)
		})
	}
}

func TestStructuredJSONData(t *testing.T) {
	srv, got := appReceiver(t)
	sub := testSubscription(srv.URL)
	sub.ContentMode = "structured"
	w := newTestWebhook(t, sub)
	ev := testEvent()
	ev.SetDataContentType("application/vnd.x+json")
	ev.DataEncoded = []byte(`{"nested":{"list":[1,2]},"s":"<b>"}`)
	ev.SetExtension("priority", int32(-7))
	ev.SetExtension("urgent", true)
	ev.SetExtension("count", "12")

	members := jsonMembers(t, deliver(t, w, got, Delivery{Event: ev, Attempt: 1}).body)
	want := map[string]string{
		"data":            string(ev.DataEncoded),
		"datacontenttype": `"application/vnd.x+json"`,
		"priority":        `-7`,
		"urgent":          `true`,
		"count":           `"12"`,
		"time":            `"2025-03-01T12:00:00.123456789Z"`,
		"specversion":     `"1.0"`,
	}
	for name, v := range want {
		if got := string(members[name]); got != v {
			t.Errorf("member %s = %s, want %s", name, got, v)
		}
	}
	if _, ok := members["data_base64"]; ok {
		t.Error("data_base64 present for JSON data")
	}
}

func jsonMembers(t *testing.T, body []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %s is not a JSON object: %v", body, err)
	}
	return m
}

func TestRequestDoesNotModifyEvent(t *testing.T) {
	srv, got := appReceiver(t)
	w := newTestWebhook(t, testSubscription(srv.URL))
	ev := testEvent()
	before := ev.Clone()
	deliver(t, w, got, Delivery{Event: ev, Attempt: 1})
	assertSameEvent(t, ev, &before)
	if _, err := time.Parse(time.RFC3339, attributes(ev)["time"]); err != nil {
		t.Errorf("time attribute: %v", err)
	}
}

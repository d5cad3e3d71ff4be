package daprapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/wire"
)

// stored is what a test expects of a stored event; id "" is a UUID the
// sidecar made.
type stored struct {
	id, source, typ, contentType, data string
	exts                               map[string]string
}

// wantEvent checks ev's attributes, data and extensions (the traceparent
// the publish path adds and a time of receipt always).
func wantEvent(t *testing.T, ev event.Event, want stored) {
	t.Helper()
	if want.id == "" {
		if _, err := uuid.Parse(ev.ID()); err != nil {
			t.Errorf("id = %q, want a UUID", ev.ID())
		}
	} else if ev.ID() != want.id {
		t.Errorf("id = %q, want %q", ev.ID(), want.id)
	}
	if ev.Source() != want.source || ev.Type() != want.typ || ev.DataContentType() != want.contentType || string(ev.Data()) != want.data {
		t.Errorf("event = %s %s %q %q, want %s %s %q %q", ev.Source(), ev.Type(), ev.DataContentType(), ev.Data(),
			want.source, want.typ, want.contentType, want.data)
	}
	if ev.Time().IsZero() || time.Since(ev.Time()) > time.Minute {
		t.Errorf("time = %s, want the time of receipt", ev.Time())
	}
	exts := ev.Extensions()
	if _, ok := exts["traceparent"]; !ok {
		t.Errorf("no traceparent extension: %v", exts)
	}
	for k, v := range want.exts {
		if got, _ := exts[k].(string); got != v && !(v == "*" && got != "") {
			t.Errorf("extension %s = %q, want %q", k, got, v)
		}
	}
	for k := range exts {
		if _, ok := want.exts[k]; !ok && k != "traceparent" {
			t.Errorf("unexpected extension %s = %v", k, exts[k])
		}
	}
}

func TestPublishStoresNativeEvents(t *testing.T) {
	h := newHarness(t, nil)
	const dapr = "com.dapr.event.sent"
	tests := []struct {
		name, method, path, body string
		headers                  []string
		want                     stored
	}{
		{"object", "POST", "/v1.0/publish/pubsub/orders?", `{"orderId":1}`, []string{"Content-Type: application/json"},
			stored{source: "shop", typ: dapr, contentType: "application/json", data: `{"orderId":1}`}},
		{"string", "POST", "/v1.0/publish/pubsub/orders", "hello", []string{"Content-Type: text/plain"},
			stored{source: "shop", typ: dapr, contentType: "text/plain", data: "hello"}},
		{"no content type", "POST", "/v1.0/publish/pubsub/orders", "hello", nil,
			stored{source: "shop", typ: dapr, contentType: "text/plain", data: "hello"}},
		{"bytes", "POST", "/v1.0/publish/pubsub/orders", "\x01\x02\x03", []string{"Content-Type: application/octet-stream"},
			stored{source: "shop", typ: dapr, contentType: "application/octet-stream", data: "\x01\x02\x03"}},
		{"PUT", "PUT", "/v1.0/publish/pubsub/orders", "<a/>", []string{"Content-Type: application/xml"},
			stored{source: "shop", typ: dapr, contentType: "application/xml", data: "<a/>"}},
		{"cloudevent", "POST", "/v1.0/publish/pubsub/orders?metadata.cloudevent.id=ignored",
			`{"specversion":"1.0","id":"ce-1","source":"/src","type":"t.x","datacontenttype":"application/json","data":{"a":1}}`,
			[]string{"Content-Type: application/cloudevents+json"},
			stored{id: "ce-1", source: "/src", typ: "t.x", contentType: "application/json", data: `{"a":1}`}},
		{"raw", "POST", "/v1.0/publish/pubsub/orders?metadata.rawPayload=true&metadata.cloudevent.id=ignored", `{"orderId":2}`,
			[]string{"Content-Type: application/json"},
			stored{source: "/eventsidecar/shop", typ: wire.RawType, contentType: "application/json", data: `{"orderId":2}`}},
		{"overrides and ttl", "POST", "/v1.0/publish/pubsub/orders.created?metadata.cloudevent.id=my-id&metadata.cloudevent.source=/me" +
			"&metadata.cloudevent.type=my.type&metadata.cloudevent.subject=s1&metadata.ttlInSeconds=60", `{"a":1}`,
			[]string{"Content-Type: application/json"},
			stored{id: "my-id", source: "/me", typ: "my.type", contentType: "application/json", data: `{"a":1}`,
				exts: map[string]string{"expiration": "*"}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantNoContent(t, h.do(tt.method, tt.path, tt.body, tt.headers...))
			events, subjects := h.stored()
			if len(events) != i+1 {
				t.Fatalf("%d events stored, want %d", len(events), i+1)
			}
			wantEvent(t, events[i], tt.want)
			topic, _, _ := strings.Cut(strings.TrimPrefix(tt.path, "/v1.0/publish/pubsub/"), "?")
			if subjects[i] != "events."+topic {
				t.Errorf("subject = %s, want events.%s", subjects[i], topic)
			}
		})
	}
	if events, _ := h.stored(); events[len(events)-1].Subject() != "s1" {
		t.Errorf("subject override = %q, want s1", events[len(events)-1].Subject())
	}
}

func TestPublishResendIsIdempotent(t *testing.T) {
	h := newHarness(t, nil)
	path := "/v1.0/publish/pubsub/orders?metadata.cloudevent.id=order-7"
	for range 2 {
		wantNoContent(t, h.post(path, `{"orderId":7}`, "Content-Type: application/json"))
	}
	if events, _ := h.stored(); len(events) != 1 {
		t.Fatalf("%d events stored after a resend, want 1", len(events))
	}
	body := wantError(t, h.post(path, `{"orderId":8}`, "Content-Type: application/json"), http.StatusUnprocessableEntity, "ERR_PUBSUB_PUBLISH_MESSAGE")
	if !strings.Contains(body.Message, "different event") {
		t.Errorf("message = %q, want it to say the key is reused with a different event", body.Message)
	}
	if events, _ := h.stored(); len(events) != 1 {
		t.Errorf("%d events stored, want 1", len(events))
	}
}

func TestPublishErrors(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.Scopes.Publish = []string{"orders", "orders.>", "a.>"}
		c.HTTP.MaxEventBytes = 64
	})
	tests := []struct {
		name, path, body, contentType string
		status                        int
		errorCode                     string
	}{
		{"pubsub empty", "/v1.0/publish//orders", "x", "text/plain", 404, "ERR_PUBSUB_EMPTY"},
		{"pubsub unknown", "/v1.0/publish/kafka/orders", "x", "text/plain", 404, "ERR_PUBSUB_NOT_FOUND"},
		{"topic empty", "/v1.0/publish/pubsub/", "x", "text/plain", 404, "ERR_TOPIC_NAME_EMPTY"},
		{"topic with a slash", "/v1.0/publish/pubsub/a/b", "x", "text/plain", 400, "ERR_MALFORMED_REQUEST"},
		{"topic wildcard", "/v1.0/publish/pubsub/orders.*", "x", "text/plain", 400, "ERR_MALFORMED_REQUEST"},
		{"bad rawPayload", "/v1.0/publish/pubsub/orders?metadata.rawPayload=yes", "x", "text/plain", 400, "ERR_PUBSUB_REQUEST_METADATA"},
		{"bad ttl", "/v1.0/publish/pubsub/orders?metadata.ttlInSeconds=soon", "x", "text/plain", 400, "ERR_PUBSUB_REQUEST_METADATA"},
		{"cloudevent not JSON", "/v1.0/publish/pubsub/orders", "{bad", "application/cloudevents+json", 500, "ERR_PUBSUB_CLOUD_EVENTS_SER"},
		{"cloudevent without id", "/v1.0/publish/pubsub/orders", `{"specversion":"1.0","data":1}`, "application/cloudevents+json", 400, "ERR_PUBSUB_CLOUD_EVENTS_SER"},
		{"bad override", "/v1.0/publish/pubsub/orders?metadata.cloudevent.source=%25zz", "x", "text/plain", 400, "ERR_PUBSUB_CLOUD_EVENTS_SER"},
		{"bad content type", "/v1.0/publish/pubsub/orders", "x", "text/", 400, "ERR_PUBSUB_CLOUD_EVENTS_SER"},
		{"topic outside the scopes", "/v1.0/publish/pubsub/audit", "x", "text/plain", 403, "ERR_PUBSUB_FORBIDDEN"},
		{"reserved topic", "/v1.0/publish/pubsub/_replay", "x", "text/plain", 403, "ERR_PUBSUB_FORBIDDEN"},
		{"too large", "/v1.0/publish/pubsub/orders", strings.Repeat("x", 65), "text/plain", 413, "ERR_PUBSUB_PUBLISH_MESSAGE"},
		{"too large once wrapped", "/v1.0/publish/pubsub/orders?metadata.cloudevent.type=" + strings.Repeat("t", 40), strings.Repeat("x", 40), "text/plain", 413, "ERR_PUBSUB_PUBLISH_MESSAGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := wantError(t, h.post(tt.path, tt.body, "Content-Type: "+tt.contentType), tt.status, tt.errorCode)
			if body.Message == "" {
				t.Error("no message")
			}
		})
	}
	if events, _ := h.stored(); len(events) != 0 {
		t.Errorf("%d events stored, want none", len(events))
	}
}

func TestForbiddenNamesTheApp(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Scopes.Publish = []string{"orders"} })
	body := wantError(t, h.post("/v1.0/publish/pubsub/audit", "x"), http.StatusForbidden, "ERR_PUBSUB_FORBIDDEN")
	if want := "topic audit is not allowed for app id shop"; body.Message != want {
		t.Errorf("message = %q, want %q", body.Message, want)
	}
}

func TestPublishWithoutPubSubs(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Dapr.PubSubNames = nil })
	wantError(t, h.post("/v1.0/publish/pubsub/orders", "x"), http.StatusBadRequest, "ERR_PUBSUB_NOT_CONFIGURED")
	wantError(t, h.post("/v1.0-alpha1/publish/bulk/pubsub/orders", "[]"), http.StatusBadRequest, "ERR_PUBSUB_NOT_CONFIGURED")
}

func TestOtherPubSubNames(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Dapr.PubSubNames = []string{"kafka", "redis"} })
	wantNoContent(t, h.post("/v1.0/publish/kafka/orders", "a"))
	wantNoContent(t, h.post("/v1.0/publish/redis/orders", "b"))
	wantError(t, h.post("/v1.0/publish/pubsub/orders", "c"), http.StatusNotFound, "ERR_PUBSUB_NOT_FOUND")
	if _, subjects := h.stored(); len(subjects) != 2 || subjects[0] != subjects[1] {
		t.Errorf("subjects = %v, want one topic for both pub/sub names", subjects)
	}
}

func TestUnimplemented(t *testing.T) {
	h := newHarness(t, nil)
	for _, req := range []struct{ method, path string }{
		{"GET", "/v1.0/state/store/key"},
		{"POST", "/v1.0/invoke/app/method/x"},
		{"GET", "/v1.0/publish/pubsub/orders"},
		{"POST", "/v1.0-alpha1/crypto/x/encrypt"},
		{"POST", "/v1.0-beta1/workflows/dapr/w/start"},
		{"POST", "/v1.0-alpha2/conversation/x/converse"},
	} {
		wantError(t, h.do(req.method, req.path, ""), http.StatusNotImplemented, "ERR_API_UNIMPLEMENTED")
	}
	if resp := h.do("GET", "/v1.1/metadata", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1.1/metadata = %d, want 404 (not the Dapr API)", resp.StatusCode)
	}
}

// Dapr publishes hold their bodies in the in-flight byte budget that every
// publish shares: one that does not fit answers 429 with Retry-After, over
// HTTP single and bulk and over gRPC, and nothing is stored.
func TestPublishWithinInFlightBytes(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.HTTP.MaxInFlightBytes = 100 })
	big := strings.Repeat("x", 200)
	for _, path := range []string{"/v1.0/publish/pubsub/orders", bulkPath} {
		body := big
		if path == bulkPath {
			body = `[{"entryId":"e0","event":"` + big + `","contentType":"text/plain"}]`
		}
		resp := h.post(path, body, "Content-Type: text/plain")
		wantError(t, resp, http.StatusTooManyRequests, "ERR_PUBSUB_PUBLISH_MESSAGE")
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 429 without Retry-After", path)
		}
	}
	_, err := h.daprClient().PublishEvent(context.Background(), &runtimev1.PublishEventRequest{
		PubsubName: "pubsub", Topic: "orders", Data: []byte(big), DataContentType: "text/plain"})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("gRPC PublishEvent: %v, want ResourceExhausted", err)
	}
	if events, _ := h.stored(); len(events) != 0 {
		t.Errorf("%d events stored, want none", len(events))
	}
	wantNoContent(t, h.post("/v1.0/publish/pubsub/orders", "small", "Content-Type: text/plain"))
}

package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	natsjs "github.com/cloudevents/sdk-go/protocol/nats_jetstream/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/wire"
)

// stream opens the EVENTS stream through a plain nats.go client
// connected with opts.
func stream(t *testing.T, url string, opts ...nats.Option) jetstream.Stream {
	t.Helper()
	s, _ := openStream(t, url, opts...)
	return s
}

// openStream is stream, with the client's connection.
func openStream(t *testing.T, url string, opts ...nats.Option) (jetstream.Stream, *nats.Conn) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatalf("stream EVENTS: %v", err)
	}
	return s, nc
}

func msgCount(t *testing.T, s jetstream.Stream) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
}

// roundTrip is one publish request and the NATS message it must store.
type roundTrip struct {
	name    string
	body    string
	headers []string
	// want are the stored ce- headers (without prefix) and their exact values;
	// "*" accepts any non-empty value (generated id, receipt time, the
	// traceparent extension the publish span adds).
	want map[string]string
	data string
}

var roundTrips = []roundTrip{
	{
		name: "binary",
		body: `{"total":12.5}`,
		headers: []string{"ce-specversion: 1.0", "ce-id: b-1", "ce-source: /shop/web", "ce-type: com.example.order.created",
			"Content-Type: application/json", "ce-subject: order-1", "ce-time: 2024-05-06T07:08:09.123Z",
			"ce-dataschema: https://example.com/order.json", "ce-partitionkey: customer-9", "ce-tenant: acme"},
		want: map[string]string{"traceparent": "*", "specversion": "1.0", "id": "b-1", "source": "/shop/web", "type": "com.example.order.created",
			"datacontenttype": "application/json", "subject": "order-1", "time": "2024-05-06T07:08:09.123Z",
			"dataschema": "https://example.com/order.json", "partitionkey": "customer-9", "tenant": "acme"},
		data: `{"total":12.5}`,
	},
	{
		name: "structured",
		body: `{"specversion":"1.0","id":"s-1","source":"/shop/web","type":"com.example.order.created",
			"datacontenttype":"application/json","subject":"order-2","time":"2024-05-06T07:08:09Z",
			"count":42,"flag":true,"tenant":"acme","data":{"total": 7}}`,
		headers: []string{"Content-Type: application/cloudevents+json"},
		want: map[string]string{"traceparent": "*", "specversion": "1.0", "id": "s-1", "source": "/shop/web", "type": "com.example.order.created",
			"datacontenttype": "application/json", "subject": "order-2", "time": "2024-05-06T07:08:09Z",
			"count": "42", "flag": "true", "tenant": "acme"},
		data: `{"total": 7}`,
	},
	{
		name: "structured base64",
		body: `{"specversion":"1.0","id":"s-2","source":"/shop/web","type":"com.example.blob",
			"datacontenttype":"application/octet-stream","data_base64":"AAEC/w=="}`,
		headers: []string{"Content-Type: application/cloudevents+json; charset=utf-8"},
		want: map[string]string{"traceparent": "*", "specversion": "1.0", "id": "s-2", "source": "/shop/web", "type": "com.example.blob",
			"datacontenttype": "application/octet-stream", "time": "*"},
		data: "\x00\x01\x02\xff",
	},
	{
		name:    "raw",
		body:    "just text",
		headers: []string{"Content-Type: text/plain", "ce-type: com.example.note"},
		want: map[string]string{"traceparent": "*", "specversion": "1.0", "id": "*", "source": "/eventsidecar/e2e", "type": "com.example.note",
			"datacontenttype": "text/plain", "time": "*"},
		data: "just text",
	},
}

func TestEveryModeRoundTrips(t *testing.T) {
	sc := startSidecar(t, embeddedConfig(t.TempDir(), ""))
	s := stream(t, sc.natsURL)
	seqs := make([]uint64, len(roundTrips))
	for i, rt := range roundTrips {
		r := sc.mustPublish("/v1/publish/orders.created", rt.body, rt.headers...)
		seqs[i] = r.Sequence
		t.Run(rt.name+"/nats.go", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			msg, err := s.GetMsg(ctx, r.Sequence)
			if err != nil {
				t.Fatalf("get %d: %v", r.Sequence, err)
			}
			if msg.Subject != "events.orders.created" {
				t.Errorf("subject = %q", msg.Subject)
			}
			got := map[string]string{}
			for k, v := range msg.Header {
				if name, ok := strings.CutPrefix(k, wire.HeaderPrefix); ok {
					got[name] = v[0]
				}
			}
			compareAttrs(t, got, rt.want)
			if string(msg.Data) != rt.data {
				t.Errorf("payload = %q, want %q", msg.Data, rt.data)
			}
			if msg.Header.Get("Nats-Msg-Id") == "" {
				t.Error("no Nats-Msg-Id")
			}
		})
	}
	// The batch goes through the same checks with the CloudEvents SDK's
	// JetStream receiver, which reads every stored message in order.
	batch := `[{"specversion":"1.0","id":"x-1","source":"/b","type":"t","data":"one"},
	           {"specversion":"1.0","id":"x-2","source":"/b","type":"t","datacontenttype":"text/plain","data":"two"}]`
	code, _, body := sc.post("/v1/publish/orders.created", batch, "Content-Type: application/cloudevents-batch+json")
	if code != http.StatusOK {
		t.Fatalf("batch: %d %s", code, body)
	}
	want := append([]roundTrip(nil), roundTrips...)
	want = append(want,
		roundTrip{name: "batch[0]", want: map[string]string{"traceparent": "*", "specversion": "1.0", "id": "x-1", "source": "/b", "type": "t", "time": "*"}, data: `"one"`},
		roundTrip{name: "batch[1]", want: map[string]string{"traceparent": "*", "specversion": "1.0", "id": "x-2", "source": "/b", "type": "t", "time": "*", "datacontenttype": "text/plain"}, data: "two"})
	readWithSDK(t, sc.natsURL, want)
}

func compareAttrs(t *testing.T, got, want map[string]string) {
	t.Helper()
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("attribute %q missing; got %v", name, got)
		case w == "*" && g == "":
			t.Errorf("attribute %q empty", name)
		case w != "*" && g != w:
			t.Errorf("attribute %q = %q, want %q", name, g, w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected attribute %q = %q", name, got[name])
		}
	}
}

// readWithSDK reads len(want) messages from the stream with
// cloudevents/sdk-go's nats_jetstream receiver and compares each.
func readWithSDK(t *testing.T, url string, want []roundTrip) {
	t.Helper()
	consumer, err := natsjs.NewConsumer(url, "EVENTS", "events.orders.created", nil, nil,
		[]nats.SubOpt{nats.BindStream("EVENTS"), nats.DeliverAll(), nats.AckNone()})
	if err != nil {
		t.Fatalf("sdk consumer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() { _ = consumer.OpenInbound(ctx) }()
	defer consumer.Close(context.Background())
	for _, w := range want {
		msg, err := consumer.Receive(ctx)
		if err != nil {
			t.Fatalf("sdk receive %s: %v", w.name, err)
		}
		ev, err := binding.ToEvent(ctx, msg)
		if err != nil {
			t.Fatalf("sdk ToEvent %s: %v", w.name, err)
		}
		got := map[string]string{}
		wire.EachAttribute(ev, func(n, v string) { got[n] = v })
		t.Run(w.name+"/sdk-go", func(t *testing.T) {
			compareAttrs(t, got, w.want)
			if string(ev.Data()) != w.data {
				t.Errorf("data = %q, want %q", ev.Data(), w.data)
			}
		})
	}
}

func TestPercentEncodingVectorThroughTheStream(t *testing.T) {
	sc := startSidecar(t, embeddedConfig(t.TempDir(), ""))
	s := stream(t, sc.natsURL)
	r := sc.mustPublish("/v1/publish/greetings", "hi", "ce-specversion: 1.0", "ce-id: euro-1",
		"ce-source: /shop", "ce-type: t", "ce-subject: Euro%20%E2%82%AC%20%F0%9F%98%80", "Content-Type: text/plain")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := s.GetMsg(ctx, r.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get("ce-subject"); got != "Euro%20%E2%82%AC%20%F0%9F%98%80" {
		t.Errorf("stored ce-subject = %q", got)
	}
	if got, err := wire.DecodeHeader(msg.Header.Get("ce-subject")); err != nil || got != "Euro € 😀" {
		t.Errorf("decoded ce-subject = %q, %v", got, err)
	}
}

func TestRejectedPublishStoresNothing(t *testing.T) {
	sc := startSidecar(t, embeddedConfig(t.TempDir(), ""))
	s := stream(t, sc.natsURL)
	code, hdr, body := sc.post("/v1/publish/orders.created", `{"specversion":"1.0","id":"1","type":"t"}`,
		"Content-Type: application/cloudevents+json")
	if code != http.StatusBadRequest || hdr.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("answer %d %s: %s", code, hdr.Get("Content-Type"), body)
	}
	var p struct {
		Status int
		Detail string
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Status != 400 || !strings.Contains(p.Detail, "source") {
		t.Errorf("problem = %s (%v), want status 400 naming source", body, err)
	}
	if n := msgCount(t, s); n != 0 {
		t.Errorf("stream holds %d messages, want 0", n)
	}
}

func TestDuplicateAfterRestart(t *testing.T) {
	dir := t.TempDir()
	event := []string{"ce-specversion: 1.0", "ce-id: once", "ce-source: /shop", "ce-type: t", "Content-Type: text/plain"}
	sc := startSidecar(t, embeddedConfig(dir, ""))
	first := sc.mustPublish("/v1/publish/orders.created", "x", event...)
	sc.stop()

	sc = startSidecar(t, embeddedConfig(dir, ""))
	again := sc.mustPublish("/v1/publish/orders.created", "x", event...)
	if !again.Duplicate || again.Sequence != first.Sequence {
		t.Errorf("after restart: %+v, want a duplicate of sequence %d", again, first.Sequence)
	}
	code, _, body := sc.post("/v1/publish/orders.created", "changed", event...)
	if code != http.StatusUnprocessableEntity {
		t.Errorf("same key, different data after restart: %d %s, want 422", code, body)
	}
	if n := msgCount(t, stream(t, sc.natsURL)); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

func TestKill9KeepsEveryAcknowledgedEvent(t *testing.T) {
	dir := t.TempDir()
	sc := startSidecar(t, embeddedConfig(dir, ""))
	const n = 200
	ids := map[uint64]string{}
	for i := range n {
		r := sc.mustPublish("/v1/publish/orders.created", fmt.Sprint(i),
			"ce-specversion: 1.0", fmt.Sprintf("ce-id: k-%d", i), "ce-source: /shop", "ce-type: t", "Content-Type: text/plain")
		ids[r.Sequence] = r.ID
	}
	sc.kill()

	sc = startSidecar(t, embeddedConfig(dir, ""))
	s := stream(t, sc.natsURL)
	if got := msgCount(t, s); got != n {
		t.Fatalf("after kill -9 and restart the stream holds %d messages, want %d", got, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for seq, id := range ids {
		msg, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get %d: %v", seq, err)
		}
		if got := msg.Header.Get("ce-id"); got != id {
			t.Errorf("sequence %d holds id %q, want %q", seq, got, id)
		}
	}
}

func TestGracefulStop(t *testing.T) {
	sc := startSidecar(t, embeddedConfig(t.TempDir(), ""))
	if code, body := sc.get("/readyz"); code != http.StatusOK {
		t.Fatalf("readyz = %d %s", code, body)
	}
	sc.stop()
	for _, want := range []string{`"msg":"shutting down"`, `"msg":"stopped"`} {
		if !strings.Contains(sc.log(), want) {
			t.Errorf("log lacks %s:\n%s", want, sc.log())
		}
	}
}

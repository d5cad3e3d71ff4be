package ingress

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/apitest"
	"github.com/eventsidecar/eventsidecar/problem"
	"github.com/eventsidecar/eventsidecar/wire"
)

var binaryEvent = []string{"ce-specversion: 1.0", "ce-id: id-1", "ce-source: /shop", "ce-type: order.created", "Content-Type: application/json"}

// read returns the stored event at seq.
func (h *harness) read(seq uint64) event.Event {
	h.t.Helper()
	raw := h.rawMsg(seq)
	if want := "events.orders.created"; raw.Subject != want {
		h.t.Errorf("subject = %q, want %q", raw.Subject, want)
	}
	ev, err := wire.DecodeNATS(raw.Header, raw.Data)
	if err != nil {
		h.t.Fatalf("decode message %d: %v", seq, err)
	}
	return ev
}

func TestPublishModes(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name    string
		body    string
		headers []string
		check   func(t *testing.T, ev event.Event)
	}{
		{"binary", `{"n":1}`, binaryEvent, func(t *testing.T, ev event.Event) {
			wantAttrs(t, ev, "id-1", "/shop", "order.created", "application/json", `{"n":1}`)
		}},
		{"structured", `{"specversion":"1.0","id":"id-2","source":"/shop","type":"order.created","datacontenttype":"application/json","data":{"n": 2}}`,
			[]string{"Content-Type: application/cloudevents+json"}, func(t *testing.T, ev event.Event) {
				wantAttrs(t, ev, "id-2", "/shop", "order.created", "application/json", `{"n": 2}`)
			}},
		{"raw", `plain text`, []string{"Content-Type: text/plain", "ce-type: note.taken"}, func(t *testing.T, ev event.Event) {
			wantAttrs(t, ev, ev.ID(), "/eventsidecar/test", "note.taken", "text/plain", "plain text")
			if len(ev.ID()) != 36 {
				t.Errorf("raw id = %q, want a UUID", ev.ID())
			}
		}},
		{"raw default type", `{}`, []string{"Content-Type: application/json"}, func(t *testing.T, ev event.Event) {
			wantAttrs(t, ev, ev.ID(), "/eventsidecar/test", "eventsidecar.raw", "application/json", "{}")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now().UTC()
			resp := h.post("/v1/publish/orders.created", tt.body, tt.headers...)
			apitest.WantStatus(t, resp, http.StatusOK)
			got := apitest.DecodeJSON[Result](t, resp)
			if got.Topic != "orders.created" || got.Sequence == 0 || got.Duplicate {
				t.Errorf("answer = %+v", got)
			}
			ev := h.read(got.Sequence)
			if ev.ID() != got.ID || ev.Source() != got.Source {
				t.Errorf("answer id/source %q %q, stored %q %q", got.ID, got.Source, ev.ID(), ev.Source())
			}
			if ev.Time().Before(before.Add(-time.Second)) {
				t.Errorf("missing time not set to receipt time: %v", ev.Time())
			}
			tt.check(t, ev)
		})
	}
}

func wantAttrs(t *testing.T, ev event.Event, id, source, typ, ct, data string) {
	t.Helper()
	got := []string{ev.ID(), ev.Source(), ev.Type(), ev.DataContentType(), string(ev.Data())}
	want := []string{id, source, typ, ct, data}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("stored event [id source type datacontenttype data] = %q, want %q", got, want)
			return
		}
	}
}

func TestPublishBatch(t *testing.T) {
	h := newHarness(t, nil)
	var entries []string
	for i := range 3 {
		entries = append(entries, fmt.Sprintf(`{"specversion":"1.0","id":"b%d","source":"/shop","type":"t","data":%d}`, i, i))
	}
	resp := h.post("/v1/publish/orders.created", "["+strings.Join(entries, ",")+"]",
		"Content-Type: application/cloudevents-batch+json; charset=utf-8")
	apitest.WantStatus(t, resp, http.StatusOK)
	got := apitest.DecodeJSON[map[string][]Result](t, resp)["results"]
	if len(got) != 3 {
		t.Fatalf("results = %+v, want 3", got)
	}
	for i, r := range got {
		if r.ID != fmt.Sprintf("b%d", i) || r.Duplicate || (i > 0 && r.Sequence != got[i-1].Sequence+1) {
			t.Errorf("result %d = %+v", i, r)
		}
		if ev := h.read(r.Sequence); string(ev.Data()) != fmt.Sprint(i) {
			t.Errorf("entry %d stored data %q", i, ev.Data())
		}
	}
}

// problemBody is the RFC 9457 answer.
type problemBody struct {
	Type    string              `json:"type"`
	Title   string              `json:"title"`
	Status  int                 `json:"status"`
	Detail  string              `json:"detail"`
	Errors  []problem.ItemError `json:"errors"`
	Results []Result            `json:"results"`
}

func wantProblem(t *testing.T, resp *http.Response, status int, detailHas string) problemBody {
	t.Helper()
	apitest.WantStatus(t, resp, status)
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	p := apitest.DecodeJSON[problemBody](t, resp)
	if p.Status != status || p.Type == "" || p.Title == "" {
		t.Errorf("problem = %+v", p)
	}
	all := p.Detail
	for _, e := range p.Errors {
		all += " " + e.Detail
	}
	if !strings.Contains(all, detailHas) {
		t.Errorf("problem detail %q does not mention %q", all, detailHas)
	}
	return p
}

func TestPublishRejects(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.HTTP.MaxEventBytes = 2048
		c.HTTP.MaxBatchEvents = 2
		c.Scopes.Publish = []string{"orders.>", "audit"}
	})
	structured := "Content-Type: application/cloudevents+json"
	big := strings.Repeat("x", 3000)
	tests := []struct {
		name, topic, body string
		headers           []string
		status            int
		detail            string
	}{
		{"wildcard topic", "orders.*", "x", binaryEvent, 400, "topic"},
		{"empty token", "orders..x", "x", binaryEvent, 400, "topic"},
		{"reserved topic", "_replay.x", "x", binaryEvent, 403, "reserved"},
		{"out of scope", "payments.x", "x", binaryEvent, 403, "scopes.publish"},
		{"bad specversion", "orders.a", `{"specversion":"0.3","id":"1","source":"/s","type":"t"}`, []string{structured}, 400, "specversion"},
		{"missing id", "orders.a", `{"specversion":"1.0","source":"/s","type":"t"}`, []string{structured}, 400, "id"},
		{"missing source", "orders.a", "x", []string{"ce-specversion: 1.0", "ce-id: 1", "ce-type: t"}, 400, "source"},
		{"bad time", "orders.a", "x", append(binaryEvent, "ce-time: yesterday"), 400, "time"},
		{"bad percent-encoding", "orders.a", "x", append(binaryEvent, "ce-subject: %ZZ"), 400, "ce-subject"},
		{"invalid utf-8 after decoding", "orders.a", "x", append(binaryEvent, "ce-subject: %C3%28"), 400, "ce-subject"},
		{"bad extension name", "orders.a", `{"specversion":"1.0","id":"1","source":"/s","type":"t","Bad":"x"}`, []string{structured}, 400, "Bad"},
		{"data and data_base64", "orders.a", `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":1,"data_base64":"AA=="}`, []string{structured}, 400, "data"},
		{"int32 overflow", "orders.a", `{"specversion":"1.0","id":"1","source":"/s","type":"t","n":2147483648}`, []string{structured}, 400, "n"},
		{"relative dataschema", "orders.a", `{"specversion":"1.0","id":"1","source":"/s","type":"t","dataschema":"x/y"}`, []string{structured}, 400, "dataschema"},
		{"unsupported format", "orders.a", "<e/>", []string{"Content-Type: application/cloudevents+xml"}, 415, "Content-Type"},
		{"event too large", "orders.a", big, binaryEvent, 413, "limit"},
		{"too many in batch", "orders.a", `[{},{},{}]`, []string{"Content-Type: application/cloudevents-batch+json"}, 413, "max_batch_events"},
		{"key on batch", "orders.a", `[]`, []string{"Content-Type: application/cloudevents-batch+json", "Idempotency-Key: k"}, 400, "Idempotency-Key"},
		{"bad key", "orders.a", "x", append(binaryEvent, `Idempotency-Key: "open`), 400, "Idempotency-Key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantProblem(t, h.post("/v1/publish/"+tt.topic, tt.body, tt.headers...), tt.status, tt.detail)
			if n := h.stored(); n != 0 {
				t.Errorf("stored = %d after a rejected publish, want 0", n)
			}
		})
	}
}

func TestBatchWithOneBadEntryStoresNothing(t *testing.T) {
	h := newHarness(t, nil)
	body := `[{"specversion":"1.0","id":"1","source":"/s","type":"t"},
	          {"specversion":"1.0","id":"2","source":"/s","type":"t","time":"not a time"},
	          {"specversion":"1.0","id":"3","source":"/s","type":"t"}]`
	p := wantProblem(t, h.post("/v1/publish/orders.a", body, "Content-Type: application/cloudevents-batch+json"), 400, "time")
	if len(p.Errors) != 1 || p.Errors[0].Index != 1 {
		t.Errorf("errors = %+v, want one at index 1", p.Errors)
	}
	if n := h.stored(); n != 0 {
		t.Errorf("stored = %d, want 0", n)
	}
}

func TestIdempotency(t *testing.T) {
	h := newHarness(t, nil)
	first := apitest.DecodeJSON[Result](t, h.post("/v1/publish/orders.created", `{"n":1}`, binaryEvent...))
	t.Run("same event is a duplicate", func(t *testing.T) {
		resp := h.post("/v1/publish/orders.created", `{"n":1}`, binaryEvent...)
		apitest.WantStatus(t, resp, http.StatusOK)
		got := apitest.DecodeJSON[Result](t, resp)
		if !got.Duplicate || got.Sequence != first.Sequence || got.ID != first.ID {
			t.Errorf("second publish = %+v, want duplicate of %+v", got, first)
		}
	})
	t.Run("same key, different data", func(t *testing.T) {
		wantProblem(t, h.post("/v1/publish/orders.created", `{"n":2}`, binaryEvent...), 422, fmt.Sprint(first.Sequence))
	})
	t.Run("same event on another topic is stored", func(t *testing.T) {
		got := apitest.DecodeJSON[Result](t, h.post("/v1/publish/orders.other", `{"n":1}`, binaryEvent...))
		if got.Duplicate {
			t.Errorf("publish to another topic = %+v, want stored", got)
		}
	})
	if n := h.stored(); n != 2 {
		t.Errorf("stored = %d, want 2", n)
	}
}

func TestIdempotencyKeyHeader(t *testing.T) {
	h := newHarness(t, nil)
	raw := []string{"Content-Type: text/plain"}
	first := apitest.DecodeJSON[Result](t, h.post("/v1/publish/orders.created", "hello", append(raw, "Idempotency-Key: order-7")...))
	for _, key := range []string{"order-7", `"order-7"`} {
		t.Run(key, func(t *testing.T) {
			got := apitest.DecodeJSON[Result](t, h.post("/v1/publish/orders.created", "hello", append(raw, "Idempotency-Key: "+key)...))
			if !got.Duplicate || got.Sequence != first.Sequence || got.ID != first.ID {
				t.Errorf("resend = %+v, want duplicate of %+v", got, first)
			}
		})
	}
	wantProblem(t, h.post("/v1/publish/orders.created", "other", append(raw, "Idempotency-Key: order-7")...), 422, "different event")
	if n := h.stored(); n != 1 {
		t.Errorf("stored = %d, want 1", n)
	}
}

func TestTraceContextIsStored(t *testing.T) {
	h := newHarness(t, nil)
	const fromRequest = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	const fromEvent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	n := 0
	structured := func(ext string) string {
		n++
		return fmt.Sprintf(`{"specversion":"1.0","id":"tc-%d","source":"/s","type":"t"%s}`, n, ext)
	}
	tests := []struct {
		name, body string
		headers    []string
		// trace is the trace id the stored context must be in ("" for a new
		// trace); state the tracestate; extension the stored ce-traceparent
		// ("span" for the publish span's own).
		trace, state, extension string
	}{
		{"request headers", structured(""), []string{"traceparent: " + fromRequest, "tracestate: congo=t61rcWkgMzE"},
			"4bf92f3577b34da6a3ce929d0e0e4736", "congo=t61rcWkgMzE", "span"},
		{"event extension", structured(`,"traceparent":"` + fromEvent + `","tracestate":"rojo=1"`), nil,
			"0af7651916cd43dd8448eb211c80319c", "rojo=1", fromEvent},
		{"request wins", structured(`,"traceparent":"` + fromEvent + `"`), []string{"traceparent: " + fromRequest},
			"4bf92f3577b34da6a3ce929d0e0e4736", "", fromEvent},
		{"invalid starts a trace", structured(""), []string{"traceparent: 00-zz-00"}, "", "", "span"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.post("/v1/publish/orders.created", tt.body, append(tt.headers, "Content-Type: application/cloudevents+json")...)
			apitest.WantStatus(t, resp, http.StatusOK)
			msg := h.rawMsg(apitest.DecodeJSON[Result](t, resp).Sequence)
			parent, state := msg.Header.Get("traceparent"), msg.Header.Get("tracestate")
			parts := strings.Split(parent, "-")
			if len(parts) != 4 || parts[1] == "0000000000000000" {
				t.Fatalf("stored traceparent %q is not a trace context", parent)
			}
			if tt.trace != "" && parts[1] != tt.trace {
				t.Errorf("stored traceparent %q, want trace %s", parent, tt.trace)
			}
			if tt.trace == "" && (strings.Contains(fromRequest, parts[1]) || strings.Contains(fromEvent, parts[1])) {
				t.Errorf("stored traceparent %q continues a trace it was not given", parent)
			}
			if parent == fromRequest || parent == fromEvent {
				t.Errorf("stored traceparent %q is the caller's, not the publish span's", parent)
			}
			if state != tt.state {
				t.Errorf("stored tracestate %q, want %q", state, tt.state)
			}
			want := tt.extension
			if want == "span" {
				want = parent
			}
			if got := msg.Header.Get("ce-traceparent"); got != want {
				t.Errorf("stored ce-traceparent %q, want %q", got, want)
			}
		})
	}
}

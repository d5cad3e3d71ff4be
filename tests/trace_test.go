package tests

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// span is one span as the stdout exporter prints it.
type span struct {
	Name        string
	SpanKind    int
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
	Attributes  []struct {
		Key   string
		Value struct{ Value any }
	}
	Events []struct{ Name string }
}

// The stdout exporter's span kinds.
const (
	kindClient   = 3
	kindProducer = 4
	kindConsumer = 5
)

func (s span) attr(key string) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			return strings.Trim(strings.TrimSpace(jsonString(a.Value.Value)), `"`)
		}
	}
	return ""
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// spans stops the sidecar (which flushes its spans) and reads them.
func spans(t *testing.T, sc *sidecar) []span {
	t.Helper()
	sc.stop()
	var out []span
	scan := bufio.NewScanner(strings.NewReader(sc.output()))
	scan.Buffer(make([]byte, 1<<20), 1<<20)
	for scan.Scan() {
		var s span
		if err := json.Unmarshal(scan.Bytes(), &s); err != nil {
			t.Fatalf("span line %q: %v", scan.Text(), err)
		}
		out = append(out, s)
	}
	return out
}

func find(spans []span, kind int, parent string) []span {
	var out []span
	for _, s := range spans {
		if s.SpanKind == kind && (parent == "" || s.Parent.SpanID == parent) {
			out = append(out, s)
		}
	}
	return out
}

func tracedSidecar(t *testing.T, endpoint, retry string) *sidecar {
	t.Helper()
	return startSidecar(t, embeddedConfig(t.TempDir(), subscriptionConfig(endpoint, retry)+"tracing:\n  exporter: stdout\n"))
}

func TestOneTraceFromPublishToWebhook(t *testing.T) {
	const traceID, appSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	a := newApp(t, http.StatusOK)
	sc := tracedSidecar(t, a.URL, fastRetry)
	sc.mustPublish("/v1/publish/orders.created", `{}`, "ce-specversion: 1.0", "ce-id: traced-1", "ce-source: /shop",
		"ce-type: t", "Content-Type: application/json", "traceparent: 00-"+traceID+"-"+appSpan+"-01")
	poll.Until(t, 20*time.Second, "delivery", func() bool { return a.deliveredOnce(t, []string{"traced-1"}) })
	a.mu.Lock()
	delivered := strings.Split(a.last.Get("traceparent"), "-")
	a.mu.Unlock()
	all := spans(t, sc)

	publish := find(all, kindProducer, appSpan)
	if len(publish) != 1 || publish[0].Name != "publish orders.created" || publish[0].SpanContext.TraceID != traceID ||
		publish[0].attr("messaging.system") != "nats" || publish[0].attr("messaging.message.id") != "traced-1" {
		t.Fatalf("publish span = %+v; all spans %+v", publish, all)
	}
	process := find(all, kindConsumer, publish[0].SpanContext.SpanID)
	if len(process) != 1 || process[0].Name != "process handler" || process[0].SpanContext.TraceID != traceID {
		t.Fatalf("process span = %+v", process)
	}
	attempt := find(all, kindClient, process[0].SpanContext.SpanID)
	if len(attempt) != 1 || attempt[0].attr("eventsidecar.attempt") != "1" || attempt[0].attr("eventsidecar.outcome") != "delivered" {
		t.Fatalf("attempt spans = %+v", attempt)
	}
	if len(delivered) != 4 || delivered[1] != traceID || delivered[2] != attempt[0].SpanContext.SpanID {
		t.Errorf("the webhook got traceparent %v, want the attempt span %s in trace %s", delivered, attempt[0].SpanContext.SpanID, traceID)
	}
}

func TestRetriesAndDeadLettersInTheTrace(t *testing.T) {
	// 500, not 503: an app answering 503 to everything is down, which
	// pauses the subscription instead of using up the event's attempts.
	a := newApp(t, http.StatusInternalServerError)
	sc := tracedSidecar(t, a.URL, "      max_attempts: 3\n      initial_backoff: 10ms\n      max_backoff: 20ms\n")
	sc.mustPublish("/v1/publish/orders.created", `{}`, "ce-specversion: 1.0", "ce-id: doomed", "ce-source: /shop",
		"ce-type: t", "Content-Type: application/json")
	poll.Until(t, 20*time.Second, "the dead letter", func() bool {
		_, body := sc.get("/v1/subscriptions")
		return strings.Contains(string(body), `"dead_lettered":1`)
	})
	all := spans(t, sc)
	publish := find(all, kindProducer, "")
	if len(publish) != 1 || publish[0].Parent.SpanID != "0000000000000000" {
		t.Fatalf("an untraced publish must root a trace: %+v", publish)
	}
	var attempts, deadLetters int
	var deadLetterSpan string
	for _, p := range find(all, kindConsumer, publish[0].SpanContext.SpanID) {
		attempts += len(find(all, kindClient, p.SpanContext.SpanID))
		for _, e := range p.Events {
			if e.Name == "dead-lettered" {
				deadLetters++
				deadLetterSpan = p.SpanContext.SpanID
			}
		}
	}
	if attempts != 3 || deadLetters != 1 {
		t.Errorf("%d attempt spans and %d dead-letter events under the publish span, want 3 and 1; spans %+v", attempts, deadLetters, all)
	}
	var logged bool
	for _, line := range strings.Split(sc.log(), "\n") {
		var rec struct{ Msg, TraceID, SpanID string }
		_ = json.Unmarshal([]byte(strings.NewReplacer(`"trace_id"`, `"traceid"`, `"span_id"`, `"spanid"`).Replace(line)), &rec)
		if rec.Msg == "event dead-lettered" {
			logged = true
			if rec.TraceID != publish[0].SpanContext.TraceID || rec.SpanID != deadLetterSpan {
				t.Errorf("dead-letter log line %s, want trace_id %s span_id %s", line, publish[0].SpanContext.TraceID, deadLetterSpan)
			}
		}
	}
	if !logged {
		t.Errorf("no dead-letter log line in:\n%s", sc.log())
	}
}

package egress

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestDeadLetterEvent(t *testing.T) {
	ev := testEvent()
	ev.SetExtension("dlqreason", "from an earlier dead letter")
	before := ev.Clone()
	now := time.Date(2025, 3, 1, 13, 0, 0, 0, time.FixedZone("CET", 3600))
	o := Outcome{Kind: Dead, Status: 500, Reason: "gave up after 8 attempts: HTTP 500", Body: "line one\nline two\t\x7f"}

	dl := DeadLetterEvent(ev, o, 8, "orders-handler", now)
	assertSameEvent(t, ev, &before)
	for _, attr := range []string{"id", "source", "type", "subject", "time", "datacontenttype", "partitionkey"} {
		if got, want := attributes(dl)[attr], attributes(ev)[attr]; got != want {
			t.Errorf("%s = %q, want %q", attr, got, want)
		}
	}
	if string(dl.Data()) != string(ev.Data()) {
		t.Errorf("data = %q, want %q", dl.Data(), ev.Data())
	}
	want := map[string]any{
		"dlqreason":       "gave up after 8 attempts: HTTP 500",
		"dlqstatus":       int32(500),
		"dlqbody":         "line one line two  ",
		"dlqattempts":     int32(8),
		"dlqsubscription": "orders-handler",
		"dlqtime":         "2025-03-01T12:00:00Z",
	}
	exts := dl.Extensions()
	for name, v := range want {
		if exts[name] != v {
			t.Errorf("%s = %#v, want %#v", name, exts[name], v)
		}
	}
	if err := dl.Validate(); err != nil {
		t.Errorf("dead letter is not a valid event: %v", err)
	}
	if dl.DataEncoded != nil && &dl.DataEncoded[0] == &ev.DataEncoded[0] {
		t.Error("dead letter shares its data with the original")
	}
}

func TestDeadLetterEventLimits(t *testing.T) {
	tests := []struct {
		name     string
		o        Outcome
		attempts int
		wantBody string
		status   int32
	}{
		{"no answer", Outcome{Kind: Dead, Reason: "gave up after 3 attempts: connection refused"}, 3, "", 0},
		{"long body", Outcome{Kind: Dead, Status: 400, Body: strings.Repeat("é", 600)}, 1, strings.Repeat("é", 512), 400},
		{"invalid UTF-8", Outcome{Kind: Dead, Status: 400, Body: "a\xffb"}, 1, "a\uFFFDb", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dl := DeadLetterEvent(testEvent(), tt.o, tt.attempts, "s", time.Now())
			body, _ := dl.Extensions()["dlqbody"].(string)
			if body != tt.wantBody || len(body) > answerBodyMax || !utf8.ValidString(body) {
				t.Errorf("dlqbody = %q (%d bytes), want %q", body, len(body), tt.wantBody)
			}
			if got := dl.Extensions()["dlqstatus"]; got != tt.status {
				t.Errorf("dlqstatus = %#v, want %d", got, tt.status)
			}
			for name := range dl.Extensions() {
				if len(name) > 20 {
					t.Errorf("extension name %q is longer than 20 characters", name)
				}
			}
		})
	}
}

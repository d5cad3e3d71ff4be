package egress

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// testSecret is a Standard Webhooks secret with a 32-byte key.
var testSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func TestSignedRequestVerifies(t *testing.T) {
	for _, mode := range []string{"binary", "structured"} {
		t.Run(mode, func(t *testing.T) {
			srv, got := appReceiver(t)
			sub := testSubscription(srv.URL)
			sub.ContentMode = mode
			sub.SigningSecret = testSecret
			w := newTestWebhook(t, sub)
			verifier, err := standardwebhooks.NewWebhook(testSecret)
			if err != nil {
				t.Fatal(err)
			}
			ev := testEvent()
			var ids []string
			for attempt := 1; attempt <= 2; attempt++ {
				r := deliver(t, w, got, Delivery{Event: ev, Attempt: attempt})
				if err := verifier.Verify(r.body, r.header); err != nil {
					t.Errorf("attempt %d: Verify: %v", attempt, err)
				}
				ts, err := strconv.ParseInt(r.header.Get("webhook-timestamp"), 10, 64)
				if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
					t.Errorf("webhook-timestamp = %q, want now in Unix seconds", r.header.Get("webhook-timestamp"))
				}
				if sig := r.header.Get("webhook-signature"); !strings.HasPrefix(sig, "v1,") {
					t.Errorf("webhook-signature = %q, want v1,<base64>", sig)
				}
				tampered := append([]byte("x"), r.body...)
				if err := verifier.Verify(tampered, r.header); err == nil {
					t.Error("Verify accepted a tampered body")
				}
				ids = append(ids, r.header.Get("webhook-id"))
			}
			if ids[0] != ids[1] || ids[0] != WebhookID(ev) {
				t.Errorf("webhook-id of two attempts = %q, want both %q", ids, WebhookID(ev))
			}
		})
	}
}

func TestWebhookID(t *testing.T) {
	ev := testEvent()
	id := WebhookID(ev)
	sum := sha256.Sum256([]byte("/orders\x00evt-1"))
	if want := "msg_" + base64.RawURLEncoding.EncodeToString(sum[:]); id != want {
		t.Errorf("WebhookID = %q, want %q", id, want)
	}
	if strings.ContainsAny(id, ".=+/") {
		t.Errorf("WebhookID = %q, want no '.', padding or non-URL base64", id)
	}
	clone := ev.Clone()
	clone.SetSubject("other")
	if WebhookID(&clone) != id {
		t.Error("WebhookID depends on more than source and id")
	}
	tests := []struct{ name, source, id string }{
		{"other id", "/orders", "evt-2"},
		{"other source", "/billing", "evt-1"},
		{"bytes moved across the separator", "/orders\x00evt", "-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			other := testEvent()
			other.SetSource(tt.source)
			other.SetID(tt.id)
			if WebhookID(other) == id {
				t.Errorf("WebhookID(%q, %q) = WebhookID of /orders, evt-1", tt.source, tt.id)
			}
		})
	}
}

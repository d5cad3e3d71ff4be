package dedup

import (
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/wire"
)

// streamedFingerprint is Fingerprint as a stream of every part into the
// hash, the way it was first written: the fingerprints of events already
// stored must not change.
func streamedFingerprint(ev *event.Event) string {
	h := sha256.New()
	wire.EachAttribute(ev, func(name, value string) { write(h, name, value) })
	write(h, "data")
	h.Write(ev.Data())
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

func TestFingerprintStable(t *testing.T) {
	ext := newEvent("1", "x")
	ext.SetExtension("foo", "bar")
	ext.SetExtension("abc", int32(7))
	for name, ev := range map[string]*event.Event{
		"small":       newEvent("1", "x"),
		"extensions":  ext,
		"at the edge": newEvent("1", strings.Repeat("d", hashInPlace-40)),
		"large":       newEvent("1", strings.Repeat("d", 3*hashInPlace)),
	} {
		if got, want := Fingerprint(ev), streamedFingerprint(ev); got != want {
			t.Errorf("%s: Fingerprint = %s, want %s", name, got, want)
		}
	}
	if got, want := Fingerprint(newEvent("1", "x")), "AAoNqxn02ICW1SqUVe3WkS64FeewRaC_tFsOc1Aw0iI"; got != want {
		t.Errorf("Fingerprint = %s, want %s as before", got, want)
	}
}

func TestMsgIDStable(t *testing.T) {
	ev := newEvent("1", "x")
	for _, tt := range []struct{ topic, key, want string }{
		{"orders", "", digestOf("orders", "event", "/src", "1")},
		{"orders", "k", digestOf("orders", "key", "k")},
		{"orders", strings.Repeat("k", MaxKeyLen), digestOf("orders", "key", strings.Repeat("k", MaxKeyLen))},
	} {
		if got := MsgID(tt.topic, tt.key, ev); got != tt.want {
			t.Errorf("MsgID(%q, %q) = %s, want %s", tt.topic, tt.key, got, tt.want)
		}
	}
}

// digestOf is the streamed digest of parts.
func digestOf(parts ...string) string {
	h := sha256.New()
	write(h, parts...)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// benchEvent is the separate-process benchmark's event.
func benchEvent(b *testing.B) *event.Event {
	ev := newEvent("evt-000-000000000042", strings.Repeat("x", 256))
	ev.SetSource("/bench/orders")
	ev.SetType("com.example.order.created")
	if err := ev.Context.SetTime(time.Date(2025, 1, 2, 3, 4, 5, 678901000, time.UTC)); err != nil {
		b.Fatal(err)
	}
	return ev
}

func BenchmarkFingerprint(b *testing.B) {
	ev := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		Fingerprint(ev)
	}
}

func BenchmarkMsgID(b *testing.B) {
	ev := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		MsgID("bench.orders", "", ev)
	}
}

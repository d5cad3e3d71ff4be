package dedup

import (
	"errors"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

func TestParseKey(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"bare", "order-42", "order-42"},
		{"quoted", `"order-42"`, "order-42"},
		{"quoted with escapes", `"a\"b\\c"`, `a"b\c`},
		{"quoted with space", `"a b"`, "a b"},
		{"surrounding spaces", `  "k"  `, "k"},
		{"bare with punctuation", "a:b/c", "a:b/c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseKey(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseKeyInvalid(t *testing.T) {
	tests := map[string]string{
		"empty":              "",
		"empty quoted":       `""`,
		"unterminated":       `"abc`,
		"text after quote":   `"a"b`,
		"bad escape":         `"a\nb"`,
		"non-ascii":          "ключ",
		"control":            "a\x01b",
		"too long":           strings.Repeat("k", MaxKeyLen+1),
		"too long unquoted ": `"` + strings.Repeat("k", MaxKeyLen+1) + `"`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseKey(in); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("ParseKey(%q) error = %v, want ErrInvalidKey", in, err)
			}
		})
	}
}

func newEvent(id, data string) *event.Event {
	ev := event.New()
	ev.SetID(id)
	ev.SetSource("/src")
	ev.SetType("t")
	_ = ev.SetData("text/plain", []byte(data))
	return &ev
}

func TestMsgID(t *testing.T) {
	a := newEvent("1", "x")
	if MsgID("t", "", a) != MsgID("t", "", newEvent("1", "other data")) {
		t.Error("same source and id gave different MsgIDs")
	}
	distinct := map[string]string{
		"base":          MsgID("t", "", a),
		"other id":      MsgID("t", "", newEvent("2", "x")),
		"other topic":   MsgID("u", "", a),
		"with key":      MsgID("t", "k", a),
		"key elsewhere": MsgID("u", "k", a),
	}
	seen := map[string]string{}
	for name, id := range distinct {
		if other, dup := seen[id]; dup {
			t.Errorf("MsgID for %q equals MsgID for %q", name, other)
		}
		seen[id] = name
	}
	if strings.ContainsAny(distinct["base"], " \r\n") {
		t.Errorf("MsgID %q is not header-safe", distinct["base"])
	}
}

func TestFingerprint(t *testing.T) {
	base := Fingerprint(newEvent("1", "x"))
	if base != Fingerprint(newEvent("1", "x")) {
		t.Fatal("equal events gave different fingerprints")
	}
	ext := newEvent("1", "x")
	ext.SetExtension("foo", "bar")
	for name, other := range map[string]*event.Event{
		"data":      newEvent("1", "y"),
		"id":        newEvent("2", "x"),
		"extension": ext,
	} {
		if Fingerprint(other) == base {
			t.Errorf("changing %s kept the fingerprint", name)
		}
	}
}

package wire

import (
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

func TestEncodeDecodeSpecVector(t *testing.T) {
	const plain, encoded = "Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"
	if got := EncodeHeader(plain); got != encoded {
		t.Errorf("EncodeHeader(%q) = %q, want %q", plain, got, encoded)
	}
	got, err := DecodeHeader(encoded)
	if err != nil || got != plain {
		t.Errorf("DecodeHeader(%q) = %q, %v; want %q", encoded, got, err, plain)
	}
}

func TestEncodeHeader(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "abc/def:1", "abc/def:1"},
		{"quote and percent", `a"b%c`, "a%22b%25c"},
		{"control", "a\tb", "a%09b"},
		{"del", "a\x7fb", "a%7Fb"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EncodeHeader(tt.in); got != tt.want {
				t.Errorf("EncodeHeader(%q) = %q, want %q", tt.in, got, tt.want)
			}
			back, err := DecodeHeader(tt.want)
			if err != nil || back != tt.in {
				t.Errorf("DecodeHeader(%q) = %q, %v; want %q", tt.want, back, err, tt.in)
			}
		})
	}
}

func TestDecodeHeaderInvalid(t *testing.T) {
	for _, in := range []string{"%", "a%2", "%zz", "%FF", "%C3%28", "\xff"} {
		t.Run(in, func(t *testing.T) {
			if _, err := DecodeHeader(in); !errors.Is(err, ErrInvalidHeader) {
				t.Errorf("DecodeHeader(%q) error = %v, want ErrInvalidHeader", in, err)
			}
		})
	}
}

func TestDecodeHeaderLowercaseHex(t *testing.T) {
	got, err := DecodeHeader("%e2%82%ac")
	if err != nil || got != "€" {
		t.Errorf("DecodeHeader = %q, %v; want €", got, err)
	}
}

func TestEachAttribute(t *testing.T) {
	ev := event.New()
	ev.SetID("1")
	ev.SetSource("/s")
	ev.SetType("t")
	ev.SetSubject("sub")
	ev.SetTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	ev.SetExtension("zeta", "z")
	ev.SetExtension("alpha", 7)
	if err := ev.SetData("application/json", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	var got []string
	EachAttribute(&ev, func(n, v string) { got = append(got, n+"="+v) })
	want := []string{"specversion=1.0", "id=1", "source=/s", "type=t",
		"datacontenttype=application/json", "subject=sub", "time=2024-01-02T03:04:05Z",
		"alpha=7", "zeta=z"}
	if len(got) != len(want) {
		t.Fatalf("EachAttribute gave %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("EachAttribute[%d] = %q, want %q", i, got[i], want[i])
		}
	}
}

package headers

import (
	"errors"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

func TestEncodeDecodeSpecVector(t *testing.T) {
	const plain, encoded = "Euro € 😀", "Euro%20%E2%82%AC%20%F0%9F%98%80"
	if got := Encode(plain); got != encoded {
		t.Errorf("Encode(%q) = %q, want %q", plain, got, encoded)
	}
	got, err := Decode(encoded)
	if err != nil || got != plain {
		t.Errorf("Decode(%q) = %q, %v; want %q", encoded, got, err, plain)
	}
}

func TestEncode(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", "abc/def:1", "abc/def:1"},
		{"quote and percent", `a"b%c`, "a%22b%25c"},
		{"control", "a\tb", "a%09b"},
		{"del", "a\x7fb", "a%7Fb"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Encode(tt.in); got != tt.want {
				t.Errorf("Encode(%q) = %q, want %q", tt.in, got, tt.want)
			}
			back, err := Decode(tt.want)
			if err != nil || back != tt.in {
				t.Errorf("Decode(%q) = %q, %v; want %q", tt.want, back, err, tt.in)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	for _, in := range []string{"%", "a%2", "%zz", "%FF", "%C3%28", "\xff"} {
		t.Run(in, func(t *testing.T) {
			if _, err := Decode(in); !errors.Is(err, ErrInvalid) {
				t.Errorf("Decode(%q) error = %v, want ErrInvalid", in, err)
			}
		})
	}
}

func TestDecodeLowercaseHex(t *testing.T) {
	got, err := Decode("%e2%82%ac")
	if err != nil || got != "€" {
		t.Errorf("Decode = %q, %v; want €", got, err)
	}
}

func TestEach(t *testing.T) {
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
	Each(&ev, func(n, v string) { got = append(got, n+"="+v) })
	want := []string{"specversion=1.0", "id=1", "source=/s", "type=t",
		"datacontenttype=application/json", "subject=sub", "time=2024-01-02T03:04:05Z",
		"alpha=7", "zeta=z"}
	if len(got) != len(want) {
		t.Fatalf("Each gave %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Each[%d] = %q, want %q", i, got[i], want[i])
		}
	}
}

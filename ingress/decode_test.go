package ingress

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

// wantFieldError fails unless err is a *FieldError for index and field
// whose reason is meaningful and contains reasonHas.
func wantFieldError(t *testing.T, err error, index int, field, reasonHas string) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("error = %v (%T), want *FieldError", err, err)
	}
	if fe.Index != index || fe.Field != field {
		t.Errorf("error = %q: index %d field %q, want index %d field %q", fe, fe.Index, fe.Field, index, field)
	}
	if len(fe.Reason) < 8 || !strings.Contains(fe.Reason, reasonHas) {
		t.Errorf("reason = %q, want a meaningful reason containing %q", fe.Reason, reasonHas)
	}
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestModeString(t *testing.T) {
	tests := []struct {
		mode Mode
		want string
	}{
		{ModeRaw, "raw"}, {ModeBinary, "binary"}, {ModeStructured, "structured"}, {ModeBatch, "batch"}, {Mode(9), "Mode(9)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.mode.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDetectMode(t *testing.T) {
	tests := []struct {
		name    string
		h       http.Header
		want    Mode
		wantErr error
	}{
		{"structured", header("Content-Type", "application/cloudevents+json"), ModeStructured, nil},
		{"structured mixed case", header("Content-Type", "Application/CloudEvents+JSON"), ModeStructured, nil},
		{"structured with charset", header("Content-Type", "application/cloudevents+json; charset=UTF-8"), ModeStructured, nil},
		{"batch with charset", header("Content-Type", "application/cloudevents-batch+json; charset=utf-8"), ModeBatch, nil},
		{"batch", header("Content-Type", "application/cloudevents-batch+json"), ModeBatch, nil},
		{"structured xml", header("Content-Type", "application/cloudevents+xml"), ModeRaw, ErrUnsupportedMediaType},
		{"batch xml", header("Content-Type", "application/cloudevents-batch+xml"), ModeRaw, ErrUnsupportedMediaType},
		{"cloudevents without suffix", header("Content-Type", "application/cloudevents"), ModeRaw, ErrUnsupportedMediaType},
		{"structured wins over ce headers", header("Content-Type", "application/cloudevents+json", "ce-specversion", "1.0"), ModeStructured, nil},
		{"binary", header("ce-specversion", "1.0", "Content-Type", "application/json"), ModeBinary, nil},
		{"binary non-canonical key", http.Header{"ce-specversion": {"1.0"}}, ModeBinary, nil},
		{"binary without content type", header("Ce-Specversion", "1.0"), ModeBinary, nil},
		{"raw json", header("Content-Type", "application/json"), ModeRaw, nil},
		{"raw cloudevents lookalike", header("Content-Type", "application/cloudeventsfoo+json"), ModeRaw, nil},
		{"raw no headers", http.Header{}, ModeRaw, nil},
		{"raw with ce-type only", header("ce-type", "x"), ModeRaw, nil},
		{"non-canonical content type", http.Header{"content-type": {"application/cloudevents+json"}}, ModeStructured, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DetectMode(tt.h)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DetectMode error = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("DetectMode = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDecodeRaw(t *testing.T) {
	tests := []struct {
		name     string
		h        http.Header
		body     string
		wantType string
		wantCT   string
	}{
		{"text", header("Content-Type", "text/plain; charset=utf-8"), "hello", RawType, "text/plain; charset=utf-8"},
		{"ce-type percent-decoded", header("ce-type", "com.example.%E2%82%AC"), "x", "com.example.€", ""},
		{"empty body", header("Content-Type", "application/json"), "", RawType, "application/json"},
		{"no headers", http.Header{}, "\x00\xff", RawType, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := DecodeRaw(tt.h, []byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeRaw: %v", err)
			}
			if ev.Type() != tt.wantType || ev.DataContentType() != tt.wantCT {
				t.Errorf("type %q datacontenttype %q, want %q %q", ev.Type(), ev.DataContentType(), tt.wantType, tt.wantCT)
			}
			if string(ev.Data()) != tt.body || (tt.body == "" && ev.Data() != nil) {
				t.Errorf("data = %q, want %q", ev.Data(), tt.body)
			}
			if ev.ID() != "" || ev.Source() != "" || !ev.Time().IsZero() || ev.SpecVersion() != "1.0" {
				t.Errorf("id %q source %q time %v specversion %q: want only specversion set",
					ev.ID(), ev.Source(), ev.Time(), ev.SpecVersion())
			}
		})
	}
}

func TestDecodeRawErrors(t *testing.T) {
	tests := []struct {
		name, field, reasonHas string
		h                      http.Header
	}{
		{"unparseable content type", "Content-Type", "media type", header("Content-Type", "text/plain; charset")},
		{"content type without subtype", "Content-Type", "type/subtype", header("Content-Type", "text")},
		{"empty content type", "Content-Type", "empty", header("Content-Type", "")},
		{"two content types", "Content-Type", "once", header("Content-Type", "text/plain", "Content-Type", "text/html")},
		{"empty ce-type", "ce-type", "empty", header("ce-type", "")},
		{"bad percent-encoding", "ce-type", "percent", header("ce-type", "a%zz")},
		{"invalid UTF-8 after decoding", "ce-type", "UTF-8", header("ce-type", "%C3%28")},
		{"two ce-types", "ce-type", "once", header("ce-type", "a", "ce-type", "b")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRaw(tt.h, []byte("x"))
			wantFieldError(t, err, -1, tt.field, tt.reasonHas)
		})
	}
}

func TestFieldErrorString(t *testing.T) {
	tests := []struct {
		err  FieldError
		want string
	}{
		{FieldError{Index: -1, Field: "source", Reason: "must be a URI-reference"}, "source: must be a URI-reference"},
		{FieldError{Index: 3, Field: "source", Reason: "must be a URI-reference"}, "[3] source: must be a URI-reference"},
		{FieldError{Index: 0, Reason: "an event must be a JSON object"}, "[0] an event must be a JSON object"},
		{*fieldErr(strings.Repeat("a", 63)+"€", "x"), strings.Repeat("a", 63) + "…: x"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

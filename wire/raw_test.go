package wire

import (
	"net/http"
	"testing"
)

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

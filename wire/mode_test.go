package wire

import (
	"errors"
	"net/http"
	"testing"
)

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

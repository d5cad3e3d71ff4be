package wire

import "testing"

func TestMediaType(t *testing.T) {
	tests := []struct{ in, want string }{
		{"application/json", "application/json"},
		{" Application/JSON ; charset=utf-8", "application/json"},
		{"text/plain;charset=utf-8", "text/plain"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := MediaType(tt.in); got != tt.want {
				t.Errorf("MediaType(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestIsJSONAndIsText(t *testing.T) {
	tests := []struct {
		ct           string
		json, isText bool
	}{
		{"application/json", true, false},
		{"text/json", true, true},
		{"Application/JSON; charset=utf-8", true, false},
		{"application/vnd.foo+json", true, false},
		{"application/cloudevents+json", true, false},
		{"application/+json", false, false},
		{"application/jsonx", false, false},
		{"json", false, false},
		{"", false, false},
		{"text/plain", false, true},
		{"TEXT/CSV; charset=utf-8", false, true},
		{"application/xml", false, true},
		{"image/svg+xml", false, true},
		{"application/vnd.order+xml", false, true},
		// The drifted copy in the old Subscribe adapter took any */xml and
		// a bare "+xml" subtype for text; RFC 7303 names neither.
		{"image/xml", false, false},
		{"application/+xml", false, false},
		{"application/octet-stream", false, false},
		{"xml", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.ct, func(t *testing.T) {
			if got := IsJSON(tt.ct); got != tt.json {
				t.Errorf("IsJSON(%q) = %v, want %v", tt.ct, got, tt.json)
			}
			if got := IsText(tt.ct); got != tt.isText {
				t.Errorf("IsText(%q) = %v, want %v", tt.ct, got, tt.isText)
			}
		})
	}
}

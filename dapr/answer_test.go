package dapr

import "testing"

// TestHTTPAnswer is Dapr's table of an HTTP app's answers (design notes
// §3.6), with the status strings matched without regard to case.
func TestHTTPAnswer(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   Verdict
	}{
		{"200 empty", 200, "", Success},
		{"204", 204, "", Success},
		{"200 not JSON", 200, "OK", Success},
		{"200 JSON not an object", 200, `["RETRY"]`, Success},
		{"200 status not a string", 200, `{"status":1}`, Success},
		{"200 {}", 200, `{}`, Success},
		{"200 null", 200, `null`, Success},
		{"200 empty status", 200, `{"status":""}`, Success},
		{"200 SUCCESS", 200, `{"status":"SUCCESS"}`, Success},
		{"200 success", 200, `{"status":"success"}`, Success},
		{"201 SUCCESS", 201, `{"status":"SUCCESS","other":[1]}`, Success},
		{"200 RETRY", 200, `{"status":"RETRY"}`, Retry},
		{"200 retry", 200, `{"status":"retry"}`, Retry},
		{"200 DROP", 200, `{"status":"DROP"}`, Drop},
		{"200 Drop", 200, `{"status":"Drop"}`, Drop},
		{"200 unknown status", 200, `{"status":"MAYBE"}`, Retry},
		{"404", 404, "not found", Drop},
		{"404 SUCCESS body", 404, `{"status":"SUCCESS"}`, Drop},
		{"400", 400, "", Retry},
		{"415", 415, "", Retry},
		{"303 (Go SDK, undecodable)", 303, "", Retry},
		{"500", 500, `{"status":"SUCCESS"}`, Retry},
		{"503", 503, "", Retry},
		{"100", 100, "", Retry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HTTPAnswer(tt.status, []byte(tt.body)); got != tt.want {
				t.Errorf("HTTPAnswer(%d, %q) = %v, want %v", tt.status, tt.body, got, tt.want)
			}
		})
	}
}

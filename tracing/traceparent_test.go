package tracing

import (
	"regexp"
	"strings"
	"testing"
)

var wellFormed = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

const (
	validTraceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	validParentID = "00f067aa0ba902b7"
)

func TestChildOfValid(t *testing.T) {
	tests := []struct {
		name, in, wantFlags string
	}{
		{"sampled", "00-" + validTraceID + "-" + validParentID + "-01", "01"},
		{"not sampled", "00-" + validTraceID + "-" + validParentID + "-00", "00"},
		{"unknown flags kept in version 00", "00-" + validTraceID + "-" + validParentID + "-09", "09"},
		{"later version", "cc-" + validTraceID + "-" + validParentID + "-03", "01"},
		{"later version with more fields", "cc-" + validTraceID + "-" + validParentID + "-02-what-the-future-holds", "00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Child(tt.in)
			if !wellFormed.MatchString(got) {
				t.Fatalf("Child(%q) = %q, not a version-00 traceparent", tt.in, got)
			}
			parts := strings.Split(got, "-")
			if parts[1] != validTraceID {
				t.Errorf("trace-id = %s, want %s", parts[1], validTraceID)
			}
			if parts[2] == validParentID || parts[2] == strings.Repeat("0", 16) {
				t.Errorf("parent-id = %s, want a fresh non-zero one", parts[2])
			}
			if parts[3] != tt.wantFlags {
				t.Errorf("flags = %s, want %s", parts[3], tt.wantFlags)
			}
		})
	}
}

func TestChildNewRoot(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"garbage", "not a traceparent"},
		{"all-zero trace-id", "00-" + strings.Repeat("0", 32) + "-" + validParentID + "-01"},
		{"all-zero parent-id", "00-" + validTraceID + "-" + strings.Repeat("0", 16) + "-01"},
		{"upper-case hex", "00-" + strings.ToUpper(validTraceID) + "-" + validParentID + "-01"},
		{"version ff", "ff-" + validTraceID + "-" + validParentID + "-01"},
		{"version 00 too long", "00-" + validTraceID + "-" + validParentID + "-01-extra"},
		{"too short", "00-" + validTraceID + "-" + validParentID + "-1"},
		{"later version without dash after flags", "cc-" + validTraceID + "-" + validParentID + "-01x"},
		{"wrong separator", "00_" + validTraceID + "-" + validParentID + "-01"},
		{"non-hex flags", "00-" + validTraceID + "-" + validParentID + "-0g"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Child(tt.in)
			if !wellFormed.MatchString(got) {
				t.Fatalf("Child(%q) = %q, not a version-00 traceparent", tt.in, got)
			}
			parts := strings.Split(got, "-")
			if parts[1] == strings.Repeat("0", 32) || parts[2] == strings.Repeat("0", 16) {
				t.Errorf("Child(%q) = %q has an all-zero id", tt.in, got)
			}
			if strings.Contains(tt.in, parts[1]) {
				t.Errorf("Child(%q) = %q kept the invalid trace-id", tt.in, got)
			}
			if parts[3] != "01" {
				t.Errorf("flags = %s, want 01", parts[3])
			}
			if seen[parts[1]] {
				t.Errorf("trace-id %s repeated", parts[1])
			}
			seen[parts[1]] = true
		})
	}
}

func TestChildOfChild(t *testing.T) {
	root := Child("")
	child := Child(root)
	if root[3:35] != child[3:35] {
		t.Errorf("Child(%q) = %q, want the same trace-id", root, child)
	}
	if root[36:52] == child[36:52] {
		t.Errorf("Child(%q) = %q, want a different parent-id", root, child)
	}
}

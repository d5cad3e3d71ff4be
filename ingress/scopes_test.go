package ingress

import "testing"

func TestAllowed(t *testing.T) {
	if !allowed(nil, "x") {
		t.Error("no scopes must allow every topic")
	}
	if allowed([]string{"a.>", "b"}, "c") {
		t.Error("c allowed by [a.> b]")
	}
	if !allowed([]string{"a.>", "b"}, "b") {
		t.Error("b refused by [a.> b]")
	}
}

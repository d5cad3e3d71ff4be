package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestNoClientset keeps client-go's clientset, which registers every API
// group, out of the binary every sidecar carries (ARCHITECTURE.md).
func TestNoClientset(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "k8s.io/client-go/rest") {
		t.Fatalf("go list -deps lists no k8s.io/client-go/rest: %q", deps)
	}
	for _, p := range deps {
		if p == "k8s.io/client-go/kubernetes" || strings.HasPrefix(p, "k8s.io/client-go/kubernetes/") {
			t.Errorf("the binary imports %s", p)
		}
	}
}

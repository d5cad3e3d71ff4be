package main

import (
	"runtime/debug"
	"testing"
)

func TestDefaultGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	defaultGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("with no GOGC, GC percent %d, want %d", got, gcPercent)
	}
	defaultGC(func(key string) string {
		if key == "GOGC" {
			return "100"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC=100, GC percent %d, want it left at 100", got)
	}
}

package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelpListsCommands(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"-help"}, {"--help"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, strings.NewReader(""), &stdout, &stderr); code != 0 {
			t.Errorf("%v: exit %d, want 0 (stderr %q)", args, code, stderr.String())
		}
		for _, cmd := range []string{"[run]", "publish", "listen", "dlq", "inject", "version"} {
			if !strings.Contains(stdout.String(), "eventsidecar "+cmd+" ") {
				t.Errorf("%v: usage does not list %q:\n%s", args, cmd, stdout.String())
			}
		}
	}
}

func TestRunHelpListsItsFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"run", "--help"}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	for _, flag := range []string{"-config", "-log-level", "-health-listen"} {
		if !strings.Contains(stderr.String(), flag) {
			t.Errorf("run --help does not list %s:\n%s", flag, stderr.String())
		}
	}
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"bogus"}, strings.NewReader(""), &stdout, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), `unknown command "bogus"`) || !strings.Contains(stderr.String(), "Usage:") {
		t.Errorf("stderr does not name the command and show the usage:\n%s", stderr.String())
	}
}

func TestUnknownRunFlagIsAUsageError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--bogus"}, strings.NewReader(""), &stdout, &stderr); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "bogus") {
		t.Errorf("stderr does not name the flag:\n%s", stderr.String())
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// validOptions are options that pass validation, with the CA bundle and
// output in dir.
func validOptions(t *testing.T, dir string) Options {
	t.Helper()
	ca := writeCA(dir)
	if ca == "" {
		t.Fatal("cannot write a test CA bundle")
	}
	return Options{
		Out:     filepath.Join(dir, "image.tar"),
		Tag:     testTag,
		Version: testVersion,
		Commit:  testCommit,
		Arch:    "amd64",
		CACerts: ca,
		Epoch:   time.Unix(testEpoch, 0).UTC(),
	}
}

// TestBuildRejects covers every check Build makes before it compiles.
func TestBuildRejects(t *testing.T) {
	dir := t.TempDir()
	noPEM := filepath.Join(dir, "not-pem.crt")
	if err := os.WriteFile(noPEM, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.crt")
	cases := []struct {
		name   string
		modify func(*Options)
		want   string
	}{
		{"missing CA bundle", func(o *Options) { o.CACerts = missing }, missing},
		{"CA bundle is a directory", func(o *Options) { o.CACerts = dir }, dir},
		{"CA bundle without certificates", func(o *Options) { o.CACerts = noPEM }, noPEM + " holds no PEM CERTIFICATE"},
		{"empty CA path", func(o *Options) { o.CACerts = "" }, "--ca-certs: empty path"},
		{"unknown arch", func(o *Options) { o.Arch = "386" }, `--arch "386"`},
		{"version with a space", func(o *Options) { o.Version = "1 -X main.x=y" }, `--version "1 -X main.x=y"`},
		{"empty version", func(o *Options) { o.Version = "" }, `--version ""`},
		{"commit with a quote", func(o *Options) { o.Commit = `a"b` }, `--commit "a\"b"`},
		{"bad tag", func(o *Options) { o.Tag = "Upper:case:tag" }, `--tag "Upper:case:tag"`},
		{"empty output", func(o *Options) { o.Out = "" }, "--out: empty path"},
		{"output in a missing directory", func(o *Options) { o.Out = filepath.Join(missing, "x.tar") }, "no directory " + missing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := validOptions(t, t.TempDir())
			c.modify(&o)
			_, err := Build(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Build error = %v, want it to contain %q", err, c.want)
			}
			if _, err := os.Stat(o.Out); err == nil {
				t.Errorf("%s was written despite the error", o.Out)
			}
		})
	}
}

func TestBuildCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Build(ctx, validOptions(t, t.TempDir()))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Build error = %v, want context.Canceled", err)
	}
}

func TestGoBuildFails(t *testing.T) {
	root, err := moduleRoot(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	o := validOptions(t, t.TempDir())
	err = goBuild(context.Background(), root, "./does-not-exist", filepath.Join(t.TempDir(), "bin"), o)
	if err == nil || !strings.Contains(err.Error(), "go build ./does-not-exist (GOOS=linux GOARCH=amd64)") ||
		!strings.Contains(err.Error(), "does-not-exist") {
		t.Fatalf("goBuild error = %v, want one naming the package and go's message", err)
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := moduleRoot(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "eventsidecar")); err != nil {
		t.Errorf("module root %s has no cmd/eventsidecar: %v", root, err)
	}
	if _, err := moduleRoot(context.Background(), t.TempDir()); err == nil || !strings.Contains(err.Error(), "not inside a Go module") {
		t.Errorf("moduleRoot outside a module: error = %v, want \"not inside a Go module\"", err)
	}
}

func TestDetectCommitWithoutRepository(t *testing.T) {
	if got := detectCommit(context.Background(), t.TempDir()); got != "unknown" {
		t.Errorf("detectCommit outside a repository = %q, want \"unknown\"", got)
	}
}

func TestSourceDateEpoch(t *testing.T) {
	cases := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"", 0, false},
		{"0", 0, false},
		{"1700000000", 1700000000, false},
		{"-1", 0, true},
		{"1.5", 0, true},
		{"soon", 0, true},
		{"99999999999999", 0, true},
	}
	for _, c := range cases {
		got, err := sourceDateEpoch(c.in)
		if (err != nil) != c.wantErr || (err == nil && got.Unix() != c.want) {
			t.Errorf("sourceDateEpoch(%q) = %v, %v; want %d, error %v", c.in, got.Unix(), err, c.want, c.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
			t.Errorf("sourceDateEpoch(%q) error %q does not name SOURCE_DATE_EPOCH", c.in, err)
		}
	}
}

// TestRunExitCodes covers the command line's failures; TestReproducible
// covers its success.
func TestRunExitCodes(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.crt")
	cases := []struct {
		name       string
		epoch      string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"help", "", []string{"-h"}, 0, "-ca-certs"},
		{"unknown flag", "", []string{"--nope"}, 2, "flag provided but not defined: -nope"},
		{"extra argument", "", []string{"extra"}, 2, `unexpected argument "extra"`},
		{"bad SOURCE_DATE_EPOCH", "yesterday", nil, 2, `SOURCE_DATE_EPOCH "yesterday"`},
		{"missing CA bundle", "", []string{"--ca-certs", missing}, 1, missing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", c.epoch)
			var stdout, stderr bytes.Buffer
			args := append([]string{"--out", filepath.Join(t.TempDir(), "x.tar")}, c.args...)
			code := run(context.Background(), args, &stdout, &stderr)
			if code != c.wantCode || !strings.Contains(stderr.String(), c.wantStderr) {
				t.Errorf("run = %d, stderr %q; want %d and %q", code, &stderr, c.wantCode, c.wantStderr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", &stdout)
			}
		})
	}
}

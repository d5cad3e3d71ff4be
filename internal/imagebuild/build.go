package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// mainPackage is the package built into the image, relative to the module root.
const mainPackage = "./cmd/eventsidecar"

// Options says what to build. Every field but Commit and Dir must be set;
// the command's flags supply the defaults.
type Options struct {
	// Out is the path of the tarball to write; it is replaced only once the
	// whole image is written.
	Out string
	// Tag is the image reference recorded in the tarball ("eventsidecar:dev").
	Tag string
	// Version is stamped into the binary (main.version) and the
	// org.opencontainers.image.version label.
	Version string
	// Commit is stamped into the binary (main.commit) and the
	// org.opencontainers.image.revision label. Empty means the output of
	// `git rev-parse --short HEAD` in the module root, else "unknown".
	Commit string
	// Arch is the target architecture: "amd64" or "arm64".
	Arch string
	// CACerts is the PEM bundle copied to /etc/ssl/certs/ca-certificates.crt.
	CACerts string
	// Epoch is the modification time of every file in the layer and the
	// image's creation time.
	Epoch time.Time
}

// Result describes the image Build wrote.
type Result struct {
	// Path is the absolute path of the tarball.
	Path string
	// Tag is the reference recorded in the tarball.
	Tag name.Tag
	// Digest is the image manifest's digest, what a registry would report.
	Digest v1.Hash
	// ImageID is the config's digest, the ID `docker images` shows.
	ImageID v1.Hash
}

// Build cross-compiles the binary, assembles the image and writes it as a
// Docker-loadable tarball to o.Out. Cancelling ctx stops the compiler.
func Build(ctx context.Context, o Options) (Result, error) {
	tag, err := validate(o)
	if err != nil {
		return Result{}, err
	}
	out, err := outputPath(o.Out)
	if err != nil {
		return Result{}, err
	}
	caCerts, err := readCACerts(o.CACerts)
	if err != nil {
		return Result{}, err
	}
	root, err := moduleRoot(ctx, "")
	if err != nil {
		return Result{}, err
	}
	if o.Commit == "" {
		o.Commit = detectCommit(ctx, root)
	}
	tmp, err := os.MkdirTemp("", "imagebuild-")
	if err != nil {
		return Result{}, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	img, err := buildImage(ctx, root, tmp, caCerts, o)
	if err != nil {
		return Result{}, err
	}
	return writeTarball(out, tag, img)
}

// outputPath makes out absolute, so it names the same file whatever
// directory the compiler runs in, and checks that its directory exists, so
// a typo fails before the build and not after.
func outputPath(out string) (string, error) {
	abs, err := filepath.Abs(out)
	if err != nil {
		return "", fmt.Errorf("--out %q: %w", out, err)
	}
	if fi, err := os.Stat(filepath.Dir(abs)); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("--out %q: no directory %s", out, filepath.Dir(abs))
	}
	return abs, nil
}

// versionPattern is what -version and -commit may hold: they end up in
// -ldflags and labels, so no spaces or quotes.
var versionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)

// validate checks the options that need no file system and parses the tag.
func validate(o Options) (name.Tag, error) {
	if o.Arch != "amd64" && o.Arch != "arm64" {
		return name.Tag{}, fmt.Errorf("--arch %q: want amd64 or arm64", o.Arch)
	}
	if !versionPattern.MatchString(o.Version) {
		return name.Tag{}, fmt.Errorf("--version %q: want letters, digits and . _ + - (at most 128)", o.Version)
	}
	if o.Commit != "" && !versionPattern.MatchString(o.Commit) {
		return name.Tag{}, fmt.Errorf("--commit %q: want letters, digits and . _ + - (at most 128)", o.Commit)
	}
	if o.Out == "" {
		return name.Tag{}, errors.New("--out: empty path")
	}
	if o.CACerts == "" {
		return name.Tag{}, errors.New("--ca-certs: empty path")
	}
	tag, err := name.NewTag(o.Tag)
	if err != nil {
		return name.Tag{}, fmt.Errorf("--tag %q: %w", o.Tag, err)
	}
	return tag, nil
}

// sourceDateEpoch parses SOURCE_DATE_EPOCH (whole seconds since 1970);
// empty means the epoch itself.
func sourceDateEpoch(s string) (time.Time, error) {
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || sec < 0 || sec > 1<<33-1 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want whole seconds since 1970", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// moduleRoot finds the directory of the go.mod that governs dir (empty:
// the current directory).
func moduleRoot(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", "GOMOD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module (go env GOMOD in %q is %q): run from the eventsidecar repository", dir, gomod)
	}
	return filepath.Dir(gomod), nil
}

// detectCommit returns the short commit hash of root's Git checkout, or
// "unknown" without Git or a repository.
func detectCommit(ctx context.Context, root string) string {
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD")
	cmd.Dir = root
	out, err := cmd.Output()
	commit := strings.TrimSpace(string(out))
	if err != nil || !versionPattern.MatchString(commit) {
		return "unknown"
	}
	return commit
}

// goBuild compiles pkg (relative to the module root) for linux/o.Arch into
// the file out: static (CGO_ENABLED=0), without file system paths or VCS
// stamps, stripped, with version and commit set.
func goBuild(ctx context.Context, root, pkg, out string, o Options) error {
	ldflags := fmt.Sprintf("-s -w -X main.version=%s -X main.commit=%s", o.Version, o.Commit)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.Arch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s (GOOS=linux GOARCH=%s): %w\n%s", pkg, o.Arch, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/elf"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The inputs of the image every test shares.
const (
	testEpoch   = 1700000000
	testVersion = "v1.2.3-test"
	testCommit  = "abc1234"
	testTag     = "eventsidecar:test"
)

// shared is built once for all tests: a real cross-compile and image build.
var shared struct {
	once   sync.Once
	dir    string
	opts   Options
	result Result
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// testArch is the host's architecture when the image supports it, so the
// binary in the image can run here.
func testArch() string {
	if runtime.GOARCH == "arm64" {
		return "arm64"
	}
	return "amd64"
}

// builtImage builds the shared image on first use and returns its options
// and result.
func builtImage(t *testing.T) (Options, Result) {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "imagebuild-test-")
		if shared.err != nil {
			return
		}
		shared.opts = Options{
			Out:     filepath.Join(shared.dir, "image.tar"),
			Tag:     testTag,
			Version: testVersion,
			Commit:  testCommit,
			Arch:    testArch(),
			CACerts: writeCA(shared.dir),
			Epoch:   time.Unix(testEpoch, 0).UTC(),
		}
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		shared.result, shared.err = Build(ctx, shared.opts)
	})
	if shared.err != nil {
		t.Fatalf("Build: %v", shared.err)
	}
	return shared.opts, shared.result
}

// writeCA writes a PEM bundle with one self-signed certificate into dir and
// returns its path; it returns "" (which Build rejects) if that fails.
func writeCA(dir string) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return ""
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "imagebuild test CA"},
		NotBefore:             time.Unix(testEpoch, 0),
		NotAfter:              time.Unix(testEpoch, 0).Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return ""
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return ""
	}
	return path
}

// readImage reads the shared tarball back.
func readImage(t *testing.T) (Options, Result, v1.Image) {
	t.Helper()
	o, res := builtImage(t)
	tag, err := name.NewTag(testTag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(res.Path, &tag)
	if err != nil {
		t.Fatalf("ImageFromPath(%s): %v", res.Path, err)
	}
	return o, res, img
}

// layerFiles reads the image's only layer into headers and file contents.
func layerFiles(t *testing.T, img v1.Image) ([]*tar.Header, map[string][]byte) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("Layers() = %d layers, %v; want 1", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var hdrs []*tar.Header
	bodies := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hdrs, bodies
		}
		if err != nil {
			t.Fatalf("layer: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("layer %s: %v", h.Name, err)
		}
		hdrs = append(hdrs, h)
		bodies[h.Name] = body
	}
}

func TestImageConfig(t *testing.T) {
	o, res, img := readImage(t)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	checks := []struct{ what, got, want string }{
		{"User", c.User, "65532:65532"},
		{"Entrypoint", fmt.Sprint(c.Entrypoint), "[/usr/local/bin/eventsidecar]"},
		{"Cmd", fmt.Sprint(c.Cmd), "[run]"},
		{"WorkingDir", c.WorkingDir, "/data"},
		{"ExposedPorts", fmt.Sprint(c.ExposedPorts), "map[3600/tcp:{} 3601/tcp:{}]"},
		{"Env", fmt.Sprint(c.Env), "[PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt]"},
		{"OS", cf.OS, "linux"},
		{"Architecture", cf.Architecture, o.Arch},
		{"Created", cf.Created.UTC().String(), o.Epoch.String()},
		{"title label", c.Labels["org.opencontainers.image.title"], "eventsidecar"},
		{"version label", c.Labels["org.opencontainers.image.version"], testVersion},
		{"revision label", c.Labels["org.opencontainers.image.revision"], testCommit},
		{"source label", c.Labels["org.opencontainers.image.source"], sourceURL},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.what, ch.got, ch.want)
		}
	}
	if len(cf.RootFS.DiffIDs) != 1 || len(cf.History) != 1 {
		t.Errorf("config has %d diff IDs and %d history entries, want 1 and 1", len(cf.RootFS.DiffIDs), len(cf.History))
	}
	digest, err := img.Digest()
	if err != nil || digest != res.Digest {
		t.Errorf("digest read back = %v (%v), Build reported %v", digest, err, res.Digest)
	}
}

func TestLayerContents(t *testing.T) {
	o, _, img := readImage(t)
	hdrs, bodies := layerFiles(t, img)
	want := []struct {
		name string
		typ  byte
		mode int64
		id   int
	}{
		{"data/", tar.TypeDir, 0o755, 65532},
		{"etc/", tar.TypeDir, 0o755, 0},
		{"etc/group", tar.TypeReg, 0o644, 0},
		{"etc/passwd", tar.TypeReg, 0o644, 0},
		{"etc/ssl/", tar.TypeDir, 0o755, 0},
		{"etc/ssl/certs/", tar.TypeDir, 0o755, 0},
		{"etc/ssl/certs/ca-certificates.crt", tar.TypeReg, 0o644, 0},
		{"usr/", tar.TypeDir, 0o755, 0},
		{"usr/local/", tar.TypeDir, 0o755, 0},
		{"usr/local/bin/", tar.TypeDir, 0o755, 0},
		{"usr/local/bin/eventsidecar", tar.TypeReg, 0o755, 0},
	}
	if len(hdrs) != len(want) {
		t.Errorf("layer has %d entries, want %d", len(hdrs), len(want))
	}
	for i, h := range hdrs {
		if i >= len(want) {
			t.Errorf("unexpected entry %s", h.Name)
			continue
		}
		w := want[i]
		if h.Name != w.name || h.Typeflag != w.typ || h.Mode != w.mode || h.Uid != w.id || h.Gid != w.id {
			t.Errorf("entry %d = %s type %c mode %o owner %d:%d, want %s type %c mode %o owner %d:%d",
				i, h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, w.name, w.typ, w.mode, w.id, w.id)
		}
		if !h.ModTime.Equal(o.Epoch) {
			t.Errorf("%s mtime = %v, want %v", h.Name, h.ModTime, o.Epoch)
		}
		if h.Typeflag == tar.TypeReg && h.Mode&0o111 != 0 && h.Name != binaryPath {
			t.Errorf("%s is executable; only %s may be", h.Name, binaryPath)
		}
		if strings.HasPrefix(h.Name, "bin/") || h.Name == "bin" || strings.HasSuffix(h.Name, "/sh") {
			t.Errorf("layer has %s; the image must have no shell", h.Name)
		}
	}
	if !strings.Contains(string(bodies["etc/passwd"]), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd = %q, want a nonroot entry for 65532", bodies["etc/passwd"])
	}
	ca, err := os.ReadFile(o.CACerts)
	if err != nil || !bytes.Equal(bodies[caCertsPath], ca) {
		t.Errorf("CA bundle in the image differs from %s (%v)", o.CACerts, err)
	}
}

// extractBinary writes the image's binary to a temporary file.
func extractBinary(t *testing.T) string {
	t.Helper()
	_, _, img := readImage(t)
	_, bodies := layerFiles(t, img)
	path := filepath.Join(t.TempDir(), "eventsidecar")
	if err := os.WriteFile(path, bodies[binaryPath], 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBinaryIsStatic(t *testing.T) {
	o, _ := builtImage(t)
	f, err := elf.Open(extractBinary(t))
	if err != nil {
		t.Fatalf("the binary is not ELF: %v", err)
	}
	defer f.Close()
	machine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[o.Arch]
	if f.Machine != machine {
		t.Errorf("ELF machine = %v, want %v", f.Machine, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("ELF has a %v program header: dynamically linked", p.Type)
		}
	}
	for _, s := range []string{".interp", ".dynamic"} {
		if f.Section(s) != nil {
			t.Errorf("ELF has a %s section: dynamically linked", s)
		}
	}
}

func TestBinaryRunsVersion(t *testing.T) {
	o, _ := builtImage(t)
	if runtime.GOOS != "linux" || runtime.GOARCH != o.Arch {
		t.Skipf("a linux/%s binary does not run on %s/%s", o.Arch, runtime.GOOS, runtime.GOARCH)
	}
	bin := extractBinary(t)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version: %v\n%s", bin, err, out)
	}
	want := fmt.Sprintf("eventsidecar %s (commit %s, go", testVersion, testCommit)
	if !strings.HasPrefix(string(out), want) {
		t.Errorf("version output = %q, want it to start %q", out, want)
	}
}

// TestReproducible builds again, through the command line, and expects the
// same bytes.
func TestReproducible(t *testing.T) {
	o, first := builtImage(t)
	t.Setenv("SOURCE_DATE_EPOCH", fmt.Sprint(testEpoch))
	out := filepath.Join(t.TempDir(), "again.tar")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{
		"--out", out, "--tag", testTag, "--version", testVersion, "--commit", testCommit,
		"--arch", o.Arch, "--ca-certs", o.CACerts,
	}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("run = %d, stderr:\n%s", code, &stderr)
	}
	for _, want := range []string{"tag:      " + testTag, "digest:   " + first.Digest.String(), "wrote:    " + out} {
		if !strings.Contains(stdout.String(), want+"\n") {
			t.Errorf("stdout = %q, want a line %q", &stdout, want)
		}
	}
	if a, b := fileSum(t, first.Path), fileSum(t, out); a != b {
		t.Errorf("two builds of the same inputs differ: sha256 %x and %x", a, b)
	}
}

// fileSum is the SHA-256 of the file at path.
func fileSum(t *testing.T, path string) [sha256.Size]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

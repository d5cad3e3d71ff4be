package inject

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/syncbuf"
)

// newTestLogger logs JSON to w.
func newTestLogger(w *syncbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil))
}

// testPair is a serving certificate for 127.0.0.1 from a fresh CA.
type testPair struct {
	cert, key, ca []byte
}

func newTestPair(t *testing.T) testPair {
	t.Helper()
	opts, err := ProvisionOptions{Namespace: "test", Hosts: []string{"127.0.0.1"}}.complete()
	if err != nil {
		t.Fatal(err)
	}
	data, err := newServingSecretData(opts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return testPair{data[secretCertKey], data[secretKeyKey], data[secretCAKey]}
}

// der is the DER of the pair's certificate.
func (p testPair) der(t *testing.T) []byte {
	t.Helper()
	c, err := tls.X509KeyPair(p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return c.Certificate[0]
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes data to a new file and renames it to name, as most
// writers do.
func replaceFile(t *testing.T, name string, data []byte) {
	t.Helper()
	writeFile(t, name+".new", data)
	if err := os.Rename(name+".new", name); err != nil {
		t.Fatal(err)
	}
}

// steppingClock returns a clock that advances a second per reading, so
// that every handshake checks the files.
func steppingClock() func() time.Time {
	var mu sync.Mutex
	t := time.Now()
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(certCheckInterval)
		return t
	}
}

// serveTLS serves handshakes with getCert on loopback and returns the
// address.
func serveTLS(t *testing.T, getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error)) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: getCert, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
			}(c)
		}
	}()
	return ln.Addr().String()
}

// servedCert handshakes with addr and returns the certificate it served.
func servedCert(t *testing.T, addr string) []byte {
	t.Helper()
	// The test compares the served certificate byte for byte instead of
	// verifying it against a CA, since the pairs come from different CAs.
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// waitServed polls handshakes until addr serves want.
func waitServed(t *testing.T, addr string, want []byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !bytes.Equal(servedCert(t, addr), want) {
		if time.Now().After(deadline) {
			t.Fatal("the new certificate was not served within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFailed polls handshakes until log holds s, checking that each
// serves want.
func waitFailed(t *testing.T, addr string, log *syncbuf.Buffer, s string, want []byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if !bytes.Equal(servedCert(t, addr), want) {
			t.Fatal("a failed reload changed the certificate served")
		}
		if strings.Contains(log.String(), s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q within 10s:\n%s", s, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// certDir holds a pair as a Secret volume does: tls.crt and tls.key are
// symlinks into ..data, itself a symlink to a versioned directory.
type certDir struct {
	t       *testing.T
	dir     string
	version int
}

func newCertDir(t *testing.T, p testPair) *certDir {
	d := &certDir{t: t, dir: t.TempDir()}
	d.swap(p)
	for _, name := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(d.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// swap writes p into a new version and points ..data at it atomically.
func (d *certDir) swap(p testPair) {
	d.version++
	v := filepath.Join(d.dir, "..v"+strconv.Itoa(d.version))
	if err := os.Mkdir(v, 0o700); err != nil {
		d.t.Fatal(err)
	}
	writeFile(d.t, filepath.Join(v, "tls.crt"), p.cert)
	writeFile(d.t, filepath.Join(v, "tls.key"), p.key)
	tmp := filepath.Join(d.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(v), tmp); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, "..data")); err != nil {
		d.t.Fatal(err)
	}
}

func (d *certDir) files() (string, string) {
	return filepath.Join(d.dir, "tls.crt"), filepath.Join(d.dir, "tls.key")
}

// TestCertReloaderSymlinkSwap replaces the pair as a Secret volume does,
// with the real clock: the new pair is served within a second or so.
func TestCertReloaderSymlinkSwap(t *testing.T) {
	a, b := newTestPair(t), newTestPair(t)
	d := newCertDir(t, a)
	certFile, keyFile := d.files()
	r, err := NewCertReloader(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTLS(t, r.GetCertificate)
	if got := servedCert(t, addr); !bytes.Equal(got, a.der(t)) {
		t.Fatal("the initial certificate is not served")
	}
	d.swap(b)
	waitServed(t, addr, b.der(t))
}

// TestCertReloaderRewrites rewrites the files in the ways writers do, and
// badly: good rewrites are served, bad ones keep the old pair and are
// logged, and a repaired rewrite is served again.
func TestCertReloaderRewrites(t *testing.T) {
	a, b := newTestPair(t), newTestPair(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeFile(t, certFile, a.cert)
	writeFile(t, keyFile, a.key)
	var log syncbuf.Buffer
	r, err := NewCertReloader(certFile, keyFile, newTestLogger(&log))
	if err != nil {
		t.Fatal(err)
	}
	r.now = steppingClock()
	addr := serveTLS(t, r.GetCertificate)
	later := time.Now().Add(time.Minute)
	steps := []struct {
		name    string
		write   func()
		serves  testPair
		wantLog string // a failed reload's log line, "" when it succeeds
	}{
		{"rename new files", func() { replaceFile(t, certFile, b.cert); replaceFile(t, keyFile, b.key) }, b, ""},
		{"in place, later", func() {
			writeFile(t, certFile, a.cert)
			writeFile(t, keyFile, a.key)
			// In place the inodes stay: the modification time tells, and
			// a real rewrite happens later than this test's.
			for _, f := range []string{certFile, keyFile} {
				if err := os.Chtimes(f, later, later); err != nil {
					t.Fatal(err)
				}
			}
		}, a, ""},
		{"cert only: key does not match", func() { replaceFile(t, certFile, b.cert) }, a, "private key does not match"},
		{"key too: repaired", func() { replaceFile(t, keyFile, b.key) }, b, ""},
		{"garbage cert", func() { replaceFile(t, certFile, []byte("not a certificate")) }, b, "failed to find any PEM data"},
		{"key removed", func() {
			if err := os.Remove(keyFile); err != nil {
				t.Fatal(err)
			}
		}, b, "no such file or directory"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.write()
			if st.wantLog == "" {
				waitServed(t, addr, st.serves.der(t))
				return
			}
			waitFailed(t, addr, &log, st.wantLog, st.serves.der(t))
			if got := servedCert(t, addr); !bytes.Equal(got, st.serves.der(t)) {
				t.Error("the certificate served changed after a failed reload")
			}
		})
	}
	if n := strings.Count(log.String(), "no such file or directory"); n != 1 {
		t.Errorf("the missing key was logged %d times, want once:\n%s", n, log.String())
	}
	if n := strings.Count(log.String(), "serving certificate reloaded"); n != 3 {
		t.Errorf("%d reloads logged, want 3:\n%s", n, log.String())
	}
}

// TestCertReloaderChecksOncePerSecond uses a clock the test sets.
func TestCertReloaderChecksOncePerSecond(t *testing.T) {
	a, b := newTestPair(t), newTestPair(t)
	d := newCertDir(t, a)
	certFile, keyFile := d.files()
	r, err := NewCertReloader(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := r.checked
	r.now = func() time.Time { return now }
	d.swap(b)
	tests := []struct {
		name    string
		advance time.Duration
		want    testPair
	}{
		{"at once", 0, a},
		{"within the second", certCheckInterval - time.Millisecond, a},
		{"a second after", time.Millisecond, b},
	}
	for _, tt := range tests {
		now = now.Add(tt.advance)
		got, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Certificate[0], tt.want.der(t)) {
			t.Errorf("%s: served the other certificate", tt.name)
		}
	}
}

func TestNewCertReloaderRefuses(t *testing.T) {
	a, b := newTestPair(t), newTestPair(t)
	dir := t.TempDir()
	file := func(name string, data []byte) string {
		f := filepath.Join(dir, name)
		writeFile(t, f, data)
		return f
	}
	tests := []struct {
		name, cert, key, want string
	}{
		{"missing cert", filepath.Join(dir, "none.crt"), file("a.key", a.key), "none.crt: no such file"},
		{"missing key", file("a.crt", a.cert), filepath.Join(dir, "none.key"), "none.key: no such file"},
		{"key of another", file("a.crt", a.cert), file("b.key", b.key), "private key does not match"},
		{"garbage", file("bad.crt", []byte("junk")), file("a.key", a.key), "bad.crt"},
		{"swapped", file("a.key", a.key), file("a.crt", a.cert), "load serving certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewCertReloader(tt.cert, tt.key, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewCertReloader = %v, %v; want an error with %q", r, err, tt.want)
			}
		})
	}
}

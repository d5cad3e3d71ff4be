package inject

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckInterval is how often, at most, a CertReloader looks at its
// files again.
const certCheckInterval = time.Second

// CertReloader serves a certificate and key read from PEM files and reads
// them again when they change, so that a certificate renewed by
// cert-manager or any other issuer is served without a restart. Secret
// volumes and cert-manager replace the files by swapping a symlink, so the
// paths are stat'ed (following symlinks), at most once a second during a
// handshake, and the pair is reloaded when either file's modification
// time, size or inode changed. A reload that fails keeps the pair being
// served and logs why, once per distinct error; the files are tried again
// at the next check. It is safe for concurrent use.
type CertReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex // guards the fields below
	cert    *tls.Certificate
	stamps  [2]os.FileInfo // of certFile and keyFile when cert was read
	checked time.Time      // when the files were last stat'ed
	lastErr string         // the last failed reload's error, "" after a success
}

// NewCertReloader reads the pair from certFile and keyFile and returns a
// CertReloader that serves it; it is an error if the pair cannot be read
// or does not match. Reload failures go to log (nil: slog.Default()).
func NewCertReloader(certFile, keyFile string, log *slog.Logger) (*CertReloader, error) {
	if log == nil {
		log = slog.Default()
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	stamps, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert, r.stamps, r.checked = cert, stamps, r.now()
	return r, nil
}

// GetCertificate returns the current pair, first reloading it when the
// files changed since it was read and the last check is a second old. It
// fits tls.Config.GetCertificate and never fails once constructed.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= certCheckInterval {
		r.checked = now
		r.reload()
	}
	return r.cert, nil
}

// reload reads the pair again if the files changed; r.mu must be held.
func (r *CertReloader) reload() {
	stamps, err := r.stat()
	if err != nil {
		r.fail(err)
		return
	}
	if sameFile(stamps[0], r.stamps[0]) && sameFile(stamps[1], r.stamps[1]) {
		return
	}
	cert, err := r.load()
	if err != nil {
		r.fail(err)
		return
	}
	r.cert, r.stamps, r.lastErr = cert, stamps, ""
	r.log.Info("serving certificate reloaded", "cert_file", r.certFile,
		"subject", cert.Leaf.Subject.String(), "serial", cert.Leaf.SerialNumber.String(),
		"not_after", cert.Leaf.NotAfter)
}

// fail logs a failed reload unless it failed the same way last time.
func (r *CertReloader) fail(err error) {
	if msg := err.Error(); msg != r.lastErr {
		r.lastErr = msg
		r.log.Error("serving certificate not reloaded; keeping the current one", "error", err)
	}
}

// stat returns the FileInfo of both files, following symlinks.
func (r *CertReloader) stat() ([2]os.FileInfo, error) {
	var stamps [2]os.FileInfo
	for i, name := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return stamps, fmt.Errorf("inject: serving certificate: %w", err)
		}
		stamps[i] = fi
	}
	return stamps, nil
}

// load reads and parses the pair.
func (r *CertReloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("inject: load serving certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	if cert.Leaf == nil { // GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("inject: parse serving certificate %s: %w", r.certFile, err)
		}
	}
	return &cert, nil
}

// sameFile reports whether a and b describe the same, unchanged file.
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

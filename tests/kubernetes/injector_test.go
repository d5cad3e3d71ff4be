package kubernetes_test

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// injectorReadyTimeout bounds the wait for an injector's /readyz.
const injectorReadyTimeout = 2 * time.Minute

// injector is one `eventsidecar inject` process.
type injector struct {
	proc *process
	addr string // 127.0.0.1:PORT
}

// freeAddr is 127.0.0.1 with a port that is free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return hostPort(port)
}

// startInjector runs `eventsidecar inject --listen addr` with the extra
// args; it is stopped (SIGTERM, which must end it with status 0) when the
// test ends.
func startInjector(t *testing.T, name, addr string, args ...string) *injector {
	t.Helper()
	args = append([]string{"inject", "--listen", addr}, args...)
	return &injector{proc: startTestProcess(t, name, eventsidecarBinary, args...), addr: addr}
}

// injectorURL is the webhook URL of an injector listening on addr.
func injectorURL(addr string) string {
	return "https://" + addr + "/mutate"
}

// waitReady waits until GET /readyz answers 200 over TLS verified with the
// CA certificates caPEM (for the name 127.0.0.1). It returns the serving
// certificate the injector presented.
func (in *injector) waitReady(t *testing.T, caPEM []byte) *x509.Certificate {
	t.Helper()
	hc, err := httpsClient(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	var leaf *x509.Certificate
	eventually(t, injectorReadyTimeout, in.proc.name+" /readyz 200", func() error {
		if err := in.proc.exitError(); err != nil {
			return stopPolling(err)
		}
		leaf, err = getOK(hc, "https://"+in.addr+"/readyz")
		return err
	})
	return leaf
}

// getOK GETs url and returns an error unless it answers 200; on 200 it
// returns the server's leaf certificate.
func getOK(hc *http.Client, url string) (*x509.Certificate, error) {
	resp, err := hc.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, body)
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
		return nil, errors.New("no TLS peer certificate")
	}
	return resp.TLS.PeerCertificates[0], nil
}

// poolOf is a certificate pool of the PEM certificates in caPEM.
func poolOf(caPEM []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no PEM certificate in the CA bundle")
	}
	return pool, nil
}

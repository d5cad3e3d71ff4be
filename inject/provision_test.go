package inject

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

func testOptions(t *testing.T, hosts ...string) ProvisionOptions {
	t.Helper()
	opts, err := ProvisionOptions{Namespace: "events", Service: "injector", Hosts: hosts}.complete()
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

func parsePEMCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	b, rest := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("not one PEM certificate: %q", data)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewServingSecretData(t *testing.T) {
	opts := testOptions(t, "injector.example.com", "10.0.0.7", "::1", "injector")
	now := time.Now()
	data, err := newServingSecretData(opts, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(data)); !slices.Equal(got, []string{"ca.crt", "tls.crt", "tls.key"}) {
		t.Fatalf("keys = %v, want ca.crt, tls.crt, tls.key and no CA key", got)
	}
	ca, leaf := parsePEMCert(t, data["ca.crt"]), parsePEMCert(t, data["tls.crt"])
	t.Run("CA", func(t *testing.T) {
		if !ca.IsCA || !ca.BasicConstraintsValid || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
			t.Errorf("CA: IsCA %v, basic constraints %v, key usage %b", ca.IsCA, ca.BasicConstraintsValid, ca.KeyUsage)
		}
		if err := ca.CheckSignatureFrom(ca); err != nil {
			t.Errorf("CA is not self-signed: %v", err)
		}
		checkP256(t, ca)
		checkValidity(t, ca, now)
	})
	t.Run("serving certificate", func(t *testing.T) {
		if err := leaf.CheckSignatureFrom(ca); err != nil {
			t.Errorf("not signed by the CA: %v", err)
		}
		if leaf.IsCA || !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
			t.Errorf("IsCA %v, extended key usage %v; want a server certificate", leaf.IsCA, leaf.ExtKeyUsage)
		}
		wantDNS := []string{"injector.events.svc", "injector.events.svc.cluster.local", "injector.events", "injector", "injector.example.com"}
		if !slices.Equal(leaf.DNSNames, wantDNS) {
			t.Errorf("DNS names = %v, want %v", leaf.DNSNames, wantDNS)
		}
		wantIPs := []net.IP{net.ParseIP("10.0.0.7"), net.ParseIP("::1")}
		if !slices.EqualFunc(leaf.IPAddresses, wantIPs, net.IP.Equal) {
			t.Errorf("IP addresses = %v, want %v", leaf.IPAddresses, wantIPs)
		}
		if leaf.Subject.CommonName != "injector.events.svc" {
			t.Errorf("common name = %q", leaf.Subject.CommonName)
		}
		if leaf.SerialNumber.Cmp(ca.SerialNumber) == 0 {
			t.Error("the certificate and the CA have one serial number")
		}
		checkP256(t, leaf)
		checkValidity(t, leaf, now)
	})
	t.Run("key matches", func(t *testing.T) {
		pair, err := tls.X509KeyPair(data["tls.crt"], data["tls.key"])
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := pem.Decode(data["tls.key"]); b == nil || b.Type != "PRIVATE KEY" {
			t.Errorf("tls.key is not a PKCS #8 PEM key")
		}
		if !pair.PrivateKey.(*ecdsa.PrivateKey).PublicKey.Equal(leaf.PublicKey) {
			t.Error("the key is not the certificate's")
		}
	})
	t.Run("verifies for every name", func(t *testing.T) {
		if _, _, err := parseServingSecret(data, opts.names(), now); err != nil {
			t.Error(err)
		}
	})
	again, err := newServingSecretData(opts, now)
	if err != nil {
		t.Fatal(err)
	}
	if string(again["ca.crt"]) == string(data["ca.crt"]) || string(again["tls.key"]) == string(data["tls.key"]) {
		t.Error("two generations made the same CA or key")
	}
}

func checkP256(t *testing.T, c *x509.Certificate) {
	t.Helper()
	if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("%s: key %T, want ECDSA P-256", c.Subject, c.PublicKey)
	}
}

// checkValidity wants c valid from before now for 10 years.
func checkValidity(t *testing.T, c *x509.Certificate, now time.Time) {
	t.Helper()
	if c.NotBefore.After(now) || now.Sub(c.NotBefore) > 2*time.Hour {
		t.Errorf("%s: not before %v, want a little before %v", c.Subject, c.NotBefore, now)
	}
	if d := c.NotAfter.Sub(now); d < 10*365*24*time.Hour-time.Minute || d > 10*366*24*time.Hour {
		t.Errorf("%s: valid for %v from now, want 10 years", c.Subject, d)
	}
}

func TestParseServingSecret(t *testing.T) {
	opts := testOptions(t, "127.0.0.1")
	now := time.Now()
	good, err := newServingSecretData(opts, now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := newServingSecretData(opts, now)
	if err != nil {
		t.Fatal(err)
	}
	with := func(key string, value []byte) map[string][]byte {
		d := maps.Clone(good)
		if value == nil {
			delete(d, key)
		} else {
			d[key] = value
		}
		return d
	}
	tests := []struct {
		name  string
		data  map[string][]byte
		names []string
		now   time.Time
		want  string // in the error; "" for none
	}{
		{"good", good, opts.names(), now, ""},
		{"no data", nil, opts.names(), now, "key tls.crt is missing"},
		{"tls.crt missing", with("tls.crt", nil), opts.names(), now, "key tls.crt is missing"},
		{"tls.key empty", with("tls.key", []byte{}), opts.names(), now, "key tls.key is missing or empty"},
		{"ca.crt missing", with("ca.crt", nil), opts.names(), now, "key ca.crt is missing"},
		{"tls.crt garbage", with("tls.crt", []byte("junk")), opts.names(), now, "keys tls.crt and tls.key"},
		{"key of another", with("tls.key", other["tls.key"]), opts.names(), now, "private key does not match"},
		{"ca.crt garbage", with("ca.crt", []byte("junk")), opts.names(), now, "key ca.crt holds no PEM certificate"},
		{"CA of another", with("ca.crt", other["ca.crt"]), opts.names(), now, "unknown authority"},
		{"CA in tls.crt", with("tls.crt", good["ca.crt"]), opts.names(), now, "private key does not match"},
		{"name not covered", good, append(opts.names(), "new.example.com"), now, "for new.example.com"},
		{"IP not covered", good, []string{"10.1.1.1"}, now, "for 10.1.1.1"},
		{"expired", good, opts.names(), now.Add(11 * 365 * 24 * time.Hour), "expired"},
		{"not yet valid", good, opts.names(), now.Add(-24 * time.Hour), "not yet valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert, ca, err := parseServingSecret(tt.data, tt.names, tt.now)
			if tt.want == "" {
				if err != nil || cert == nil || cert.Leaf == nil || string(ca) != string(good["ca.crt"]) {
					t.Errorf("parseServingSecret = %v, %q, %v; want the pair and ca.crt", cert, ca, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one with %q", err, tt.want)
			}
		})
	}
}

func TestProvisionOptions(t *testing.T) {
	got, err := ProvisionOptions{Namespace: "ns"}.complete()
	if err != nil {
		t.Fatal(err)
	}
	if got.Service != DefaultService || got.Secret != DefaultSecret || got.WebhookConfig != DefaultWebhookConfig ||
		got.Resync != DefaultResync || got.Log == nil {
		t.Errorf("defaults = %+v", got)
	}
	names := testOptions(t, "injector", "a.example", "a.example", "injector.events.svc").names()
	want := []string{"injector.events.svc", "injector.events.svc.cluster.local", "injector.events", "injector", "a.example"}
	if !slices.Equal(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
	for _, bad := range []ProvisionOptions{{}, {Namespace: "ns", Hosts: []string{""}}} {
		if _, err := bad.complete(); err == nil {
			t.Errorf("%+v: complete accepted it", bad)
		}
		if _, err := Provision(context.Background(), nil, bad); err == nil {
			t.Errorf("%+v: Provision accepted it", bad)
		}
	}
}

func TestSetCABundle(t *testing.T) {
	ca := []byte("the CA")
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{Webhooks: []admissionregistrationv1.MutatingWebhook{
		{Name: "equal", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: []byte("the CA")}},
		{Name: "empty"},
		{Name: "other", ClientConfig: admissionregistrationv1.WebhookClientConfig{CABundle: []byte("another CA")}},
	}}
	if n := setCABundle(cfg, ca); n != 2 {
		t.Errorf("first: changed %d, want 2", n)
	}
	for _, w := range cfg.Webhooks {
		if string(w.ClientConfig.CABundle) != "the CA" {
			t.Errorf("%s: caBundle %q", w.Name, w.ClientConfig.CABundle)
		}
	}
	ca[0] = 'T'
	if string(cfg.Webhooks[1].ClientConfig.CABundle) != "the CA" {
		t.Error("caBundle shares the caller's bytes")
	}
	if n := setCABundle(cfg, []byte("the CA")); n != 0 {
		t.Errorf("again: changed %d, want 0", n)
	}
}

func TestProvisionedReady(t *testing.T) {
	p := &Provisioned{}
	if err := p.Ready(); err == nil || err.Error() != "caBundle not written yet" {
		t.Errorf("at first: Ready = %v", err)
	}
	p.lastErr = context.DeadlineExceeded
	if err := p.Ready(); err == nil || !strings.Contains(err.Error(), "not written yet: context deadline exceeded") {
		t.Errorf("after a failure: Ready = %v", err)
	}
	p.written = true
	if err := p.Ready(); err != nil {
		t.Errorf("once written: Ready = %v", err)
	}
}

package inject

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"time"
)

const (
	// certValidity is how long the CA and the serving certificate are valid.
	certValidity = 10 * 365 * 24 * time.Hour
	// clockSkew backdates the certificates for clocks a little behind.
	clockSkew = time.Hour
)

// newServingSecretData generates a CA and a serving certificate it signs
// for opts.names(), both valid from now, and returns them as the Secret's
// data. The CA's key is dropped.
func newServingSecretData(opts ProvisionOptions, now time.Time) (map[string][]byte, error) {
	ca, caKey, err := newCA(opts.Service+" CA ("+opts.Namespace+")", now)
	if err != nil {
		return nil, err
	}
	certDER, keyDER, err := newServingCert(opts.names(), ca, caKey)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		secretCertKey: pemBlock("CERTIFICATE", certDER),
		secretKeyKey:  pemBlock("PRIVATE KEY", keyDER),
		secretCAKey:   pemBlock("CERTIFICATE", ca.Raw),
	}, nil
}

// newCA generates a self-signed CA valid from now for certValidity.
func newCA(name string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("inject: generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(certValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := createCertificate(tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("inject: parse new CA: %w", err)
	}
	return ca, key, nil
}

// newServingCert generates a key and a server certificate for names (the
// first is its common name), signed by ca and valid as long as ca, and
// returns both in DER, the key as PKCS #8.
func newServingCert(names []string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certDER, keyDER []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("inject: generate serving key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: names[0]},
		NotBefore:   ca.NotBefore,
		NotAfter:    ca.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	tmpl.DNSNames, tmpl.IPAddresses = splitHosts(names)
	if certDER, err = createCertificate(tmpl, ca, &key.PublicKey, caKey); err != nil {
		return nil, nil, err
	}
	if keyDER, err = x509.MarshalPKCS8PrivateKey(key); err != nil {
		return nil, nil, fmt.Errorf("inject: encode serving key: %w", err)
	}
	return certDER, keyDER, nil
}

// createCertificate signs tmpl, given a random serial number, with parent
// and its key.
func createCertificate(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("inject: certificate serial number: %w", err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("inject: create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	return der, nil
}

// splitHosts sorts hosts into DNS names and IP addresses.
func splitHosts(hosts []string) (dns []string, ips []net.IP) {
	for _, h := range hosts {
		if ip, err := netip.ParseAddr(h); err == nil {
			ips = append(ips, net.IP(ip.AsSlice()))
		} else {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// parseServingSecret returns the key pair and the CA in a Secret's data,
// checking that at now the CA signs the certificate for every one of names.
func parseServingSecret(data map[string][]byte, names []string, now time.Time) (*tls.Certificate, []byte, error) {
	for _, k := range []string{secretCertKey, secretKeyKey, secretCAKey} {
		if len(data[k]) == 0 {
			return nil, nil, fmt.Errorf("key %s is missing or empty", k)
		}
	}
	cert, err := tls.X509KeyPair(data[secretCertKey], data[secretKeyKey])
	if err != nil {
		return nil, nil, fmt.Errorf("keys %s and %s: %w", secretCertKey, secretKeyKey, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("key %s: %w", secretCertKey, err)
	}
	cert.Leaf = leaf
	opts := x509.VerifyOptions{
		Roots:         x509.NewCertPool(),
		Intermediates: x509.NewCertPool(),
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if !opts.Roots.AppendCertsFromPEM(data[secretCAKey]) {
		return nil, nil, fmt.Errorf("key %s holds no PEM certificate", secretCAKey)
	}
	for _, der := range cert.Certificate[1:] {
		if ic, err := x509.ParseCertificate(der); err == nil {
			opts.Intermediates.AddCert(ic)
		}
	}
	for _, name := range names {
		opts.DNSName = name
		if _, err := leaf.Verify(opts); err != nil {
			return nil, nil, fmt.Errorf("key %s for %s, against %s: %w", secretCertKey, name, secretCAKey, err)
		}
	}
	return &cert, data[secretCAKey], nil
}

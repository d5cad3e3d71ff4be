package broker

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/eventsidecar/eventsidecar/config"
)

// authSetup is a server configured for one authentication method, the
// client settings that pass it, and settings that must not.
type authSetup struct {
	opts    *server.Options
	valid   func(cfg *config.Broker)
	invalid []authChange
	secrets []string // must not appear in any error
}

// authChange is client settings that Start must refuse, or that keep the
// Client from ever becoming ready, with an error containing want.
type authChange struct {
	name, want string
	change     func(cfg *config.Broker)
}

const authViolation = "Authorization Violation"

func noCredentials(*config.Broker) {}

func TestAuth(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) authSetup
	}{
		{"user password", userPasswordSetup},
		{"token", tokenSetup},
		{"nkey seed file", nkeySetup},
		{"credentials file", credsSetup},
		{"mutual TLS", tlsSetup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.setup(t)
			s := authServer(t, a.opts)
			withAuth := func(change func(cfg *config.Broker)) config.Broker {
				cfg := config.Default().Broker
				cfg.URL = s.ClientURL()
				change(&cfg)
				return cfg
			}
			t.Run("valid", func(t *testing.T) {
				publishOne(t, open(t, withAuth(a.valid)), messages(t, 1)[0])
			})
			for _, ic := range a.invalid {
				t.Run(ic.name, func(t *testing.T) { checkRefused(t, withAuth(ic.change), ic.want, a.secrets) })
			}
		})
	}
}

// checkRefused checks that Start fails, or Ready reports the broker's
// refusal, with an error containing want and none of the secrets.
func checkRefused(t *testing.T, cfg config.Broker, want string, secrets []string) {
	t.Helper()
	c, err := Start(t.Context(), cfg, "eventsidecar test", testLogger(t))
	if err == nil {
		defer c.Close()
		waitFor(t, 10*time.Second, "Ready reporting the refusal", func() error {
			if err = c.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), want) {
				return fmt.Errorf("Ready = %v, want an error containing %q", err, want)
			}
			return nil
		})
	}
	for _, secret := range secrets {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains the secret %q", err, secret)
		}
	}
}

// authServer starts a JetStream server on 127.0.0.1 with opts'
// authentication and shuts it down when the test ends.
func authServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, true, true
	opts.JetStream, opts.StoreDir = true, t.TempDir()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// writeSecret writes data to a new file readable only by its owner and
// returns its path.
func writeSecret(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func userPasswordSetup(*testing.T) authSetup {
	const password, wrong = "s3cret-Pa55word", "wr0ng-Pa55word"
	return authSetup{
		opts:  &server.Options{Username: "sidecar", Password: password},
		valid: func(cfg *config.Broker) { cfg.User, cfg.Password = "sidecar", password },
		invalid: []authChange{
			{"wrong password", authViolation, func(cfg *config.Broker) { cfg.User, cfg.Password = "sidecar", wrong }},
			{"wrong user", authViolation, func(cfg *config.Broker) { cfg.User, cfg.Password = "other", password }},
			{"no password", authViolation, func(cfg *config.Broker) { cfg.User = "sidecar" }},
			{"no credentials", authViolation, noCredentials},
		},
		secrets: []string{password, wrong},
	}
}

func tokenSetup(*testing.T) authSetup {
	const token, wrong = "t0ken-9f8e7d6c5b4a", "t0ken-0000000000"
	return authSetup{
		opts:  &server.Options{Authorization: token},
		valid: func(cfg *config.Broker) { cfg.Token = token },
		invalid: []authChange{
			{"wrong token", authViolation, func(cfg *config.Broker) { cfg.Token = wrong }},
			{"no credentials", authViolation, noCredentials},
		},
		secrets: []string{token, wrong},
	}
}

// newKey returns a fresh key pair made by create and its public key.
func newKey(t *testing.T, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, string) {
	t.Helper()
	kp, err := create()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return kp, pub
}

// newUser returns a fresh user key's public key and seed.
func newUser(t *testing.T) (string, []byte) {
	t.Helper()
	kp, pub := newKey(t, nkeys.CreateUser)
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	return pub, seed
}

func nkeySetup(t *testing.T) authSetup {
	pub, seed := newUser(t)
	_, otherSeed := newUser(t)
	corrupt := bytes.Clone(seed) // one character changed: the checksum fails
	corrupt[10] = 'A'
	if seed[10] == 'A' {
		corrupt[10] = 'B'
	}
	good := writeSecret(t, "user.nk", seed)
	other := writeSecret(t, "other.nk", otherSeed)
	bad := writeSecret(t, "corrupt.nk", corrupt)
	return authSetup{
		opts:  &server.Options{Nkeys: []*server.NkeyUser{{Nkey: pub}}},
		valid: func(cfg *config.Broker) { cfg.NkeySeedFile = good },
		invalid: []authChange{
			{"unknown nkey", authViolation, func(cfg *config.Broker) { cfg.NkeySeedFile = other }},
			{"corrupt seed", "nkey_seed_file", func(cfg *config.Broker) { cfg.NkeySeedFile = bad }},
			{"missing seed file", "no such file", func(cfg *config.Broker) { cfg.NkeySeedFile = good + ".missing" }},
			{"no credentials", authViolation, noCredentials},
		},
		secrets: []string{string(seed), string(otherSeed), string(corrupt)},
	}
}

// encode signs claims with kp.
func encode(t *testing.T, claims jwt.Claims, kp nkeys.KeyPair) string {
	t.Helper()
	s, err := claims.Encode(kp)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newAccount returns an account key pair, its public key and its JWT signed
// by the operator, with unlimited JetStream when js is set.
func newAccount(t *testing.T, operator nkeys.KeyPair, js bool) (nkeys.KeyPair, string, string) {
	t.Helper()
	kp, pub := newKey(t, nkeys.CreateAccount)
	ac := jwt.NewAccountClaims(pub)
	if js {
		ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	}
	return kp, pub, encode(t, ac, operator)
}

// creds writes a .creds file for the user claims signed by account, with
// seed as the user's key.
func creds(t *testing.T, name string, claims *jwt.UserClaims, seed []byte, account nkeys.KeyPair) string {
	t.Helper()
	data, err := jwt.FormatUserConfig(encode(t, claims, account), seed)
	if err != nil {
		t.Fatal(err)
	}
	return writeSecret(t, name, data)
}

func credsSetup(t *testing.T) authSetup {
	operator, opub := newKey(t, nkeys.CreateOperator)
	account, apub, ajwt := newAccount(t, operator, true)
	_, syspub, sysjwt := newAccount(t, operator, false)
	unknown, _, _ := newAccount(t, operator, true)
	resolver := &server.MemAccResolver{}
	for _, acc := range [][2]string{{apub, ajwt}, {syspub, sysjwt}} {
		if err := resolver.Store(acc[0], acc[1]); err != nil {
			t.Fatal(err)
		}
	}
	upub, seed := newUser(t)
	good := creds(t, "user.creds", jwt.NewUserClaims(upub), seed, account)
	stranger := creds(t, "stranger.creds", jwt.NewUserClaims(upub), seed, unknown)
	expiredClaims := jwt.NewUserClaims(upub)
	expiredClaims.Expires = time.Now().Add(-time.Minute).Unix()
	expired := creds(t, "expired.creds", expiredClaims, seed, account)
	bareSeed := writeSecret(t, "seed.creds", seed)
	return authSetup{
		opts: &server.Options{
			TrustedOperators: []*jwt.OperatorClaims{jwt.NewOperatorClaims(opub)},
			AccountResolver:  resolver,
			SystemAccount:    syspub,
		},
		valid: func(cfg *config.Broker) { cfg.CredentialsFile = good },
		invalid: []authChange{
			{"unknown account", authViolation, func(cfg *config.Broker) { cfg.CredentialsFile = stranger }},
			{"expired user", authViolation, func(cfg *config.Broker) { cfg.CredentialsFile = expired }},
			{"missing creds file", "no such file", func(cfg *config.Broker) { cfg.CredentialsFile = good + ".missing" }},
			{"bare seed as creds file", "no NATS user JWT", func(cfg *config.Broker) { cfg.CredentialsFile = bareSeed }},
			{"no credentials", authViolation, noCredentials},
		},
		secrets: []string{string(seed)},
	}
}

// certKey is a certificate and its key, in memory and as PEM files.
type certKey struct {
	cert              *x509.Certificate
	key               *ecdsa.PrivateKey
	certFile, keyFile string
}

// issue creates an ECDSA P-256 certificate named name from tmpl, signed by
// parent or self-signed when parent is nil.
func issue(t *testing.T, name string, tmpl *x509.Certificate, parent *certKey) *certKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber, tmpl.Subject = big.NewInt(time.Now().UnixNano()), pkix.Name{CommonName: name}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	signer := &certKey{cert: tmpl, key: key}
	if parent != nil {
		signer = parent
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer.cert, &key.PublicKey, signer.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &certKey{
		cert: cert, key: key,
		certFile: writeSecret(t, name+".pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyFile:  writeSecret(t, name+"-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})),
	}
}

func tlsSetup(t *testing.T) authSetup {
	caTmpl := func() *x509.Certificate {
		return &x509.Certificate{IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	}
	clientTmpl := func() *x509.Certificate {
		return &x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	}
	ca, otherCA := issue(t, "ca", caTmpl(), nil), issue(t, "other-ca", caTmpl(), nil)
	srv := issue(t, "server", &x509.Certificate{
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca)
	client, stranger := issue(t, "client", clientTmpl(), ca), issue(t, "stranger", clientTmpl(), otherCA)
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: srv.certFile, KeyFile: srv.keyFile, CaFile: ca.certFile, Verify: true})
	if err != nil {
		t.Fatalf("GenTLSConfig: %v", err)
	}
	withTLS := func(ca, client *certKey) func(cfg *config.Broker) {
		return func(cfg *config.Broker) {
			cfg.TLS.CAFile = ca.certFile
			if client != nil {
				cfg.TLS.CertFile, cfg.TLS.KeyFile = client.certFile, client.keyFile
			}
		}
	}
	const unknownCA = "certificate signed by unknown authority"
	return authSetup{
		opts:  &server.Options{TLS: true, TLSVerify: true, TLSConfig: tc},
		valid: withTLS(ca, client),
		invalid: []authChange{
			{"no client certificate", "tls", withTLS(ca, nil)},
			{"untrusted client certificate", "tls", withTLS(ca, stranger)},
			{"untrusted server", unknownCA, withTLS(otherCA, client)},
			{"no TLS settings", unknownCA, noCredentials},
		},
	}
}

package broker

import (
	"bytes"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/eventsidecar/eventsidecar/config"
)

// authOptions turns the configured credentials into connection options.
func authOptions(cfg config.Broker) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.CredentialsFile != "" {
		if err := checkCreds(cfg.CredentialsFile); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(cfg.CredentialsFile))
	}
	if cfg.NkeySeedFile != "" {
		opt, err := nats.NkeyOptionFromSeed(cfg.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("broker: nkey_seed_file: %w", err)
		}
		opts = append(opts, opt)
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLS.CAFile))
	}
	if cfg.TLS.CertFile != "" || cfg.TLS.KeyFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile))
	}
	return opts, nil
}

// checkCreds refuses a credentials file without a user JWT: given a bare
// seed, nats.go would send the seed itself to the server as the JWT.
func checkCreds(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("broker: credentials_file: %w", err)
	}
	if !bytes.Contains(b, []byte("-----BEGIN NATS USER JWT-----")) {
		return fmt.Errorf("broker: credentials_file %s: no NATS user JWT in it (is it a seed? use nkey_seed_file)", path)
	}
	return nil
}

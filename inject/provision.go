package inject

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/eventsidecar/eventsidecar/internal/pause"
)

// The defaults of ProvisionOptions, which the manifests use.
const (
	// DefaultService is the injector's Service.
	DefaultService = "eventsidecar-injector"
	// DefaultSecret is the Secret that keeps the serving certificate.
	DefaultSecret = "eventsidecar-injector-tls"
	// DefaultWebhookConfig is the injector's MutatingWebhookConfiguration.
	DefaultWebhookConfig = "eventsidecar-injector"
	// DefaultResync is how often the caBundle is checked again.
	DefaultResync = time.Minute
)

// The keys of the Secret that holds the serving certificate.
const (
	secretCertKey = corev1.TLSCertKey       // tls.crt: the serving certificate, PEM
	secretKeyKey  = corev1.TLSPrivateKeyKey // tls.key: its private key, PEM (PKCS #8)
	secretCAKey   = "ca.crt"                // the CA that signed it, PEM: the caBundle
)

const (
	// fieldManager names the injector in the objects it writes.
	fieldManager = "eventsidecar-inject"
	// apiTimeout bounds one check of the caBundle.
	apiTimeout = 30 * time.Second
	// caRetryMin is the first wait after a failed caBundle check; it
	// doubles up to the resync interval.
	caRetryMin = time.Second
)

// ProvisionOptions say where Provision keeps the serving certificate and
// whose caBundle it writes. Only Namespace is required.
type ProvisionOptions struct {
	// Namespace is the injector's namespace: where the Secret is kept and
	// the namespace of the Service the certificate is for.
	Namespace string
	// Service is the name of the injector's Service; the certificate is
	// valid for <service>.<namespace>.svc, <service>.<namespace>.svc.cluster.local,
	// <service>.<namespace> and <service>. Default DefaultService.
	Service string
	// Secret is the name of the kubernetes.io/tls Secret that holds the
	// certificate, its key and the CA (keys tls.crt, tls.key, ca.crt).
	// Default DefaultSecret.
	Secret string
	// WebhookConfig is the MutatingWebhookConfiguration whose webhooks get
	// the CA as their caBundle. Default DefaultWebhookConfig.
	WebhookConfig string
	// Hosts are further DNS names or IP addresses (as IP SANs) the
	// certificate is valid for.
	Hosts []string
	// Resync is how often the caBundle is checked again, so that a
	// re-applied manifest that emptied it is repaired. Default DefaultResync.
	Resync time.Duration
	// Log receives what provisioning does and the errors it retries.
	// Default slog.Default().
	Log *slog.Logger
}

// complete returns o with its defaults set, or an error naming what is wrong.
func (o ProvisionOptions) complete() (ProvisionOptions, error) {
	if o.Namespace == "" {
		return o, errors.New("inject: provision: no namespace")
	}
	for _, h := range o.Hosts {
		if h == "" {
			return o, errors.New("inject: provision: empty host")
		}
	}
	o.Service = cmp.Or(o.Service, DefaultService)
	o.Secret = cmp.Or(o.Secret, DefaultSecret)
	o.WebhookConfig = cmp.Or(o.WebhookConfig, DefaultWebhookConfig)
	if o.Resync <= 0 {
		o.Resync = DefaultResync
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return o, nil
}

// names are the names the serving certificate is valid for: the Service's
// DNS names, then Hosts, without repeats.
func (o ProvisionOptions) names() []string {
	svc := o.Service + "." + o.Namespace
	all := append([]string{svc + ".svc", svc + ".svc.cluster.local", svc, o.Service}, o.Hosts...)
	seen := make(map[string]bool, len(all))
	names := all[:0]
	for _, n := range all {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names
}

// Provisioned is a serving certificate kept in a Secret by Provision. Its
// Run keeps the webhook configuration's caBundle equal to the Secret's CA.
// It is safe for concurrent use.
type Provisioned struct {
	cert   *tls.Certificate
	ca     []byte
	client *Client
	opts   ProvisionOptions

	mu      sync.Mutex // guards written and lastErr
	written bool       // the caBundle was found or made right once
	lastErr error      // of the last check, nil after a success
}

// Provision returns the serving certificate in the Secret opts.Secret of
// opts.Namespace. When the Secret does not exist, it generates a CA (ECDSA
// P-256, valid 10 years) and a certificate the CA signs for the Service's
// DNS names and opts.Hosts, and creates the Secret with them; when another
// replica created it first, it uses that one, so that replicas share one
// CA. The CA's private key is not kept. An existing Secret whose
// certificate is not valid, not signed by its ca.crt or not for every one
// of the names is an error: delete the Secret to have a new one made.
//
// The client needs get and create on Secrets in the namespace; Run needs
// get and update on the MutatingWebhookConfiguration.
func Provision(ctx context.Context, client *Client, opts ProvisionOptions) (*Provisioned, error) {
	opts, err := opts.complete()
	if err != nil {
		return nil, err
	}
	secret, err := getOrCreateSecret(ctx, client, opts)
	if err != nil {
		return nil, err
	}
	cert, ca, err := parseServingSecret(secret.Data, opts.names(), time.Now())
	if err != nil {
		return nil, fmt.Errorf("inject: secret %s/%s: %w (delete the Secret to have a new one made)", opts.Namespace, opts.Secret, err)
	}
	return &Provisioned{cert: cert, ca: ca, client: client, opts: opts}, nil
}

// getOrCreateSecret gets the Secret, creating it when absent; when another
// replica creates it at the same time, it gets that one.
func getOrCreateSecret(ctx context.Context, client *Client, opts ProvisionOptions) (*corev1.Secret, error) {
	where := opts.Namespace + "/" + opts.Secret
	s, err := client.getSecret(ctx, opts.Namespace, opts.Secret)
	if err == nil {
		opts.Log.Info("serving certificate from secret", "secret", where)
		return s, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("inject: get secret %s: %w", where, err)
	}
	data, err := newServingSecretData(opts, time.Now())
	if err != nil {
		return nil, err
	}
	s = &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: opts.Secret, Namespace: opts.Namespace,
			Labels: map[string]string{"app.kubernetes.io/managed-by": fieldManager}},
		Type: corev1.SecretTypeTLS,
		Data: data,
	}
	created, err := client.createSecret(ctx, s)
	if err == nil {
		opts.Log.Info("serving certificate created", "secret", where, "names", opts.names())
		return created, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("inject: create secret %s: %w", where, err)
	}
	if s, err = client.getSecret(ctx, opts.Namespace, opts.Secret); err != nil {
		return nil, fmt.Errorf("inject: get secret %s another replica created: %w", where, err)
	}
	opts.Log.Info("serving certificate from secret another replica created", "secret", where)
	return s, nil
}

// GetCertificate returns the provisioned certificate; it fits
// tls.Config.GetCertificate and never fails.
func (p *Provisioned) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return p.cert, nil
}

// Ready returns nil once Run has found or made the caBundle of every
// webhook in the configuration equal to the Secret's ca.crt, else why not
// yet.
func (p *Provisioned) Ready() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.written:
		return nil
	case p.lastErr != nil:
		return fmt.Errorf("caBundle not written yet: %w", p.lastErr)
	default:
		return errors.New("caBundle not written yet")
	}
}

// Run writes the Secret's ca.crt into the caBundle of every webhook of the
// MutatingWebhookConfiguration opts.WebhookConfig where it differs, at once
// and then every opts.Resync, logging each (re)write. A failed check (the
// configuration not yet applied, the API server unreachable) is logged and
// tried again after a second, doubling up to opts.Resync. It returns nil
// when ctx ends.
func (p *Provisioned) Run(ctx context.Context) error {
	wait, backoff := time.Duration(0), caRetryMin
	for pause.For(ctx, wait) {
		err := p.check(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			p.opts.Log.Warn("caBundle not written; retrying", "error", err, "retry_in", backoff.String())
			wait, backoff = backoff, min(2*backoff, p.opts.Resync)
		default:
			wait, backoff = p.opts.Resync, caRetryMin
		}
	}
	return nil
}

// check makes the caBundle right once and records the outcome.
func (p *Provisioned) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	n, err := p.syncCABundle(ctx)
	p.mu.Lock()
	p.lastErr = err
	p.written = p.written || err == nil
	p.mu.Unlock()
	if n > 0 {
		p.opts.Log.Info("caBundle written", "mutatingwebhookconfiguration", p.opts.WebhookConfig, "webhooks", n)
	}
	return err
}

// syncCABundle updates the configuration where its caBundles differ from
// the CA, retrying on conflicts, and returns how many webhooks it changed.
func (p *Provisioned) syncCABundle(ctx context.Context) (int, error) {
	var n int
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n = 0
		cfg, err := p.client.getWebhookConfig(ctx, p.opts.WebhookConfig)
		if err != nil {
			return err
		}
		if len(cfg.Webhooks) == 0 {
			return errors.New("it has no webhooks")
		}
		changed := setCABundle(cfg, p.ca)
		if changed == 0 {
			return nil
		}
		if err := p.client.updateWebhookConfig(ctx, cfg); err != nil {
			return err
		}
		n = changed
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("inject: caBundle of mutatingwebhookconfiguration %s: %w", p.opts.WebhookConfig, err)
	}
	return n, nil
}

// setCABundle sets ca as the caBundle of every webhook of cfg where it
// differs and returns how many it changed.
func setCABundle(cfg *admissionregistrationv1.MutatingWebhookConfiguration, ca []byte) int {
	n := 0
	for i := range cfg.Webhooks {
		cc := &cfg.Webhooks[i].ClientConfig
		if !bytes.Equal(cc.CABundle, ca) {
			cc.CABundle = bytes.Clone(ca)
			n++
		}
	}
	return n
}

package kubernetes_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/eventsidecar/eventsidecar/inject"
	"github.com/eventsidecar/eventsidecar/internal/syncbuf"
)

// What TestProvisionRaces provisions.
const (
	provisionSecret        = "provision-e2e-tls"
	provisionWebhookConfig = "eventsidecar-e2e-provision"
	provisionUserAgent     = "eventsidecar-e2e/provision"
	touchedLabel           = "e2e.eventsidecar.io/touched"
)

// TestProvisionRaces runs inject.Provision and Provisioned.Run in the test
// process, with inject's own client, against the API server through a
// proxy that makes what another replica does happen between two of their
// requests: it creates the Secret after their get found none, and changes
// the webhook configuration after their get of it, so they take the paths
// of the AlreadyExists and Conflict answers, which need the API server's
// Status decoded.
func TestProvisionRaces(t *testing.T) {
	c := sharedCluster(t)
	ns := createNamespace(t, c, "e2e-provision-", nil)
	opts := inject.ProvisionOptions{Namespace: ns, Service: "provision-e2e", Secret: provisionSecret, WebhookConfig: provisionWebhookConfig}
	direct, err := inject.NewClient(c.config)
	if err != nil {
		t.Fatal(err)
	}
	secretsPath := "/api/v1/namespaces/" + ns + "/secrets"
	secretPath := secretsPath + "/" + provisionSecret
	configPath := "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/" + provisionWebhookConfig
	others := make(chan *inject.Provisioned, 1)
	var createOnce, touchOnce sync.Once
	proxy := startAPIProxy(t, c, func(resp *http.Response) (err error) {
		switch {
		case resp.Request.URL.Path == secretPath && resp.StatusCode == http.StatusNotFound:
			createOnce.Do(func() { err = provisionOther(resp.Request.Context(), direct, opts, others) })
		case resp.Request.URL.Path == configPath && resp.Request.Method == http.MethodGet:
			touchOnce.Do(func() { err = touchWebhookConfig(c) })
		}
		if err != nil {
			t.Errorf("%s %s: %v", resp.Request.Method, resp.Request.URL.Path, err)
		}
		return err
	})
	log := &syncbuf.Buffer{}
	opts.Log = slog.New(slog.NewTextHandler(log, nil))
	client, err := inject.NewClient(&rest.Config{Host: proxy.url, UserAgent: provisionUserAgent, Timeout: c.config.Timeout})
	if err != nil {
		t.Fatal(err)
	}
	p, err := inject.Provision(context.Background(), client, opts)
	if err != nil {
		t.Fatalf("Provision after another replica created the Secret: %v", err)
	}
	t.Run("Secret created by another replica", func(t *testing.T) {
		want := []string{"GET " + secretPath + " 404", "POST " + secretsPath + " 409", "GET " + secretPath + " 200"}
		if got := proxy.requests(); !slices.Equal(got, want) {
			t.Errorf("requests = %q, want %q", got, want)
		}
		select {
		case other := <-others:
			checkSameCertificate(t, servedLeaf(t, other), servedLeaf(t, p))
		default:
			t.Fatal("the other replica did not provision")
		}
		if got := proxy.userAgents(); !slices.Equal(got, []string{provisionUserAgent}) {
			t.Errorf("user agents = %q, want %q", got, provisionUserAgent)
		}
	})
	t.Run("caBundle written after a conflict", func(t *testing.T) {
		proxy.reset()
		registerWebhooks(t, c, provisionWebhookConfig, unusedWebhook("a.provision.eventsidecar.io"), unusedWebhook("b.provision.eventsidecar.io"))
		runUntilReady(t, p)
		want := []string{"GET " + configPath + " 200", "PUT " + configPath + " 409", "GET " + configPath + " 200", "PUT " + configPath + " 200"}
		if got := proxy.requests(); !slices.Equal(got, want) {
			t.Errorf("requests = %q, want %q", got, want)
		}
		if logs := log.String(); strings.Contains(logs, "level=WARN") || !strings.Contains(logs, `msg="caBundle written"`) {
			t.Errorf("want the caBundle written in one check, without a retry after a failed one; log:\n%s", logs)
		}
		checkProvisionedConfig(t, c, secretCA(t, c, ns))
	})
}

// provisionOther provisions as another replica would, with client, and
// sends what it provisioned on others.
func provisionOther(ctx context.Context, client *inject.Client, opts inject.ProvisionOptions, others chan<- *inject.Provisioned) error {
	opts.Log = slog.New(slog.DiscardHandler)
	p, err := inject.Provision(ctx, client, opts)
	if err != nil {
		return fmt.Errorf("the other replica: %w", err)
	}
	others <- p
	return nil
}

// runUntilReady runs p until it is ready, then stops it.
func runUntilReady(t *testing.T, p *inject.Provisioned) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx) }()
	eventually(t, provisionTimeout, "Provisioned ready", p.Ready)
	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// checkProvisionedConfig checks that every webhook of the configuration
// has ca as its caBundle, that the change made between the injector's get
// and update survived and that the injector wrote as its field manager.
func checkProvisionedConfig(t *testing.T, c *cluster, ca []byte) {
	t.Helper()
	cfg, err := c.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), provisionWebhookConfig, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range cfg.Webhooks {
		if len(ca) == 0 || !bytes.Equal(w.ClientConfig.CABundle, ca) {
			t.Errorf("webhook %s: caBundle %q, want the Secret's ca.crt %q", w.Name, w.ClientConfig.CABundle, ca)
		}
	}
	if cfg.Labels[touchedLabel] != "true" {
		t.Errorf("labels %v: the update after the conflict lost %s", cfg.Labels, touchedLabel)
	}
	if !slices.ContainsFunc(cfg.ManagedFields, func(f metav1.ManagedFieldsEntry) bool { return f.Manager == "eventsidecar-inject" }) {
		t.Errorf("no field manager eventsidecar-inject in %+v", cfg.ManagedFields)
	}
}

// secretCA is the ca.crt of the provisioned Secret of namespace ns.
func secretCA(t *testing.T, c *cluster, ns string) []byte {
	t.Helper()
	s, err := c.client.CoreV1().Secrets(ns).Get(context.Background(), provisionSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Data["ca.crt"]
}

// touchWebhookConfig labels the webhook configuration as the admin, so
// that an update based on what was read before conflicts.
func touchWebhookConfig(c *cluster) error {
	api := c.client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := api.Get(context.Background(), provisionWebhookConfig, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get the webhook configuration: %w", err)
	}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[touchedLabel] = "true"
	if _, err := api.Update(context.Background(), cfg, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("label the webhook configuration: %w", err)
	}
	return nil
}

// unusedWebhook is a webhook the API server never calls: no namespace
// has the label it selects.
func unusedWebhook(name string) admissionregistrationv1.MutatingWebhook {
	w := podWebhook(name, "https://127.0.0.1:1/mutate", nil)
	w.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"e2e.eventsidecar.io/never": "true"}}
	return w
}

// servedLeaf is the certificate p serves.
func servedLeaf(t *testing.T, p *inject.Provisioned) *x509.Certificate {
	t.Helper()
	if p == nil {
		t.Fatal("not provisioned")
	}
	cert, err := p.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return cert.Leaf
}

// apiProxy is a plain-HTTP proxy on 127.0.0.1 to the API server, which it
// reaches as the admin. It records each request with the status of its
// answer, and the User-Agents it saw. It is safe for concurrent use.
type apiProxy struct {
	url string

	mu     sync.Mutex // guards what follows
	log    []string   // "METHOD path status"
	agents []string   // distinct, in the order seen
}

// startAPIProxy starts a proxy that calls hook with each answer before
// passing it on; an error from hook makes the proxy answer 502 instead.
// It is closed when the test ends.
func startAPIProxy(t *testing.T, c *cluster, hook func(*http.Response) error) *apiProxy {
	t.Helper()
	target, err := url.Parse(c.apiURL)
	if err != nil {
		t.Fatal(err)
	}
	transport, err := rest.TransportFor(c.config)
	if err != nil {
		t.Fatal(err)
	}
	p := &apiProxy{}
	srv := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: transport,
		ModifyResponse: func(resp *http.Response) error {
			p.record(resp)
			return hook(resp)
		},
	})
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *apiProxy) record(resp *http.Response) {
	p.mu.Lock()
	defer p.mu.Unlock()
	req := resp.Request
	p.log = append(p.log, fmt.Sprintf("%s %s %d", req.Method, req.URL.Path, resp.StatusCode))
	if ua := req.Header.Get("User-Agent"); !slices.Contains(p.agents, ua) {
		p.agents = append(p.agents, ua)
	}
}

// requests are the requests recorded since the start or the last reset.
func (p *apiProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log)
}

// userAgents are the User-Agents seen since the start or the last reset.
func (p *apiProxy) userAgents() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.agents)
}

// reset forgets what was recorded.
func (p *apiProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log, p.agents = nil, nil
}

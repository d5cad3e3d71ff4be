package inject

import (
	"context"
	"fmt"
	"net/http"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// Client is the injector's client of the Kubernetes API: it makes the
// requests of Provision and Provisioned.Run, on Secrets (core v1) and
// MutatingWebhookConfigurations (admissionregistration.k8s.io/v1), and
// knows no other kinds, so that the eventsidecar binary does not carry
// client-go's clientset of every API group. The API server's refusals
// are *apierrors.StatusError, as the clientset's are. It is safe for
// concurrent use.
type Client struct {
	core      *rest.RESTClient // /api/v1
	admission *rest.RESTClient // /apis/admissionregistration.k8s.io/v1
}

// NewClient returns a Client of the API server cfg names, with cfg's
// credentials, TLS settings, user agent (default client-go's) and timeout;
// the two API groups share one HTTP client. cfg is not modified.
func NewClient(cfg *rest.Config) (*Client, error) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("inject: client scheme: %w", err)
	}
	if err := admissionregistrationv1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("inject: client scheme: %w", err)
	}
	base := rest.CopyConfig(cfg)
	if base.UserAgent == "" {
		base.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	base.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	httpClient, err := rest.HTTPClientFor(base)
	if err != nil {
		return nil, fmt.Errorf("inject: client: %w", err)
	}
	core, err := restClientFor(base, httpClient, "/api", corev1.SchemeGroupVersion)
	if err != nil {
		return nil, err
	}
	admission, err := restClientFor(base, httpClient, "/apis", admissionregistrationv1.SchemeGroupVersion)
	if err != nil {
		return nil, err
	}
	return &Client{core: core, admission: admission}, nil
}

// restClientFor is a REST client of the group version gv under apiPath,
// configured as base and sending its requests through httpClient.
func restClientFor(base *rest.Config, httpClient *http.Client, apiPath string, gv schema.GroupVersion) (*rest.RESTClient, error) {
	cfg := rest.CopyConfig(base)
	cfg.APIPath, cfg.GroupVersion = apiPath, &gv
	rc, err := rest.RESTClientForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, fmt.Errorf("inject: client of %s: %w", gv, err)
	}
	return rc, nil
}

// getSecret gets the Secret name of namespace.
func (c *Client) getSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	if err := c.core.Get().Namespace(namespace).Resource("secrets").Name(name).Do(ctx).Into(s); err != nil {
		return nil, err
	}
	return s, nil
}

// createSecret creates s in its namespace and returns it as created.
func (c *Client) createSecret(ctx context.Context, s *corev1.Secret) (*corev1.Secret, error) {
	created := &corev1.Secret{}
	err := c.core.Post().Namespace(s.Namespace).Resource("secrets").
		Param("fieldManager", fieldManager).Body(s).Do(ctx).Into(created)
	if err != nil {
		return nil, err
	}
	return created, nil
}

// getWebhookConfig gets the MutatingWebhookConfiguration name.
func (c *Client) getWebhookConfig(ctx context.Context, name string) (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := c.admission.Get().Resource("mutatingwebhookconfigurations").Name(name).Do(ctx).Into(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// updateWebhookConfig replaces the MutatingWebhookConfiguration cfg.Name
// with cfg; it is a conflict when cfg's resourceVersion is not the stored
// one.
func (c *Client) updateWebhookConfig(ctx context.Context, cfg *admissionregistrationv1.MutatingWebhookConfiguration) error {
	return c.admission.Put().Resource("mutatingwebhookconfigurations").Name(cfg.Name).
		Param("fieldManager", fieldManager).Body(cfg).Do(ctx).Error()
}

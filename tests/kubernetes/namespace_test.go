package kubernetes_test

import (
	"context"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Deadlines of the tests' waits: generous, for a slow and busy machine.
const (
	serviceAccountTimeout = 2 * time.Minute
	webhookActiveTimeout  = 2 * time.Minute
	controllerPodTimeout  = 5 * time.Minute
)

// testNamespaceLabel selects the namespaces of TestInjectWithCertFiles for
// its webhooks.
const testNamespaceLabel = "e2e.eventsidecar.io/inject-test"

// createNamespace creates a namespace named prefix plus a random suffix
// with labels, enforcing Pod Security "restricted", and waits until the
// controller manager has made its default ServiceAccount (without it the
// ServiceAccount admission plugin refuses pods). It is deleted when the test
// ends.
func createNamespace(t *testing.T, c *cluster, prefix string, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: prefix,
		Labels:       map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}
	for k, v := range labels {
		ns.Labels[k] = v
	}
	ns, err := c.client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := c.client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
		}
	})
	waitServiceAccount(t, c, ns.Name)
	return ns.Name
}

// waitServiceAccount waits for the default ServiceAccount of namespace ns.
func waitServiceAccount(t *testing.T, c *cluster, ns string) {
	t.Helper()
	eventually(t, serviceAccountTimeout, "ServiceAccount "+ns+"/default", func() error {
		_, err := c.client.CoreV1().ServiceAccounts(ns).Get(context.Background(), "default", metav1.GetOptions{})
		return err
	})
}

// podWebhook is a webhook for pod CREATE in the namespaces labelled
// testNamespaceLabel, configured as contract §8 asks of the injector's.
func podWebhook(name, url string, caPEM []byte) admissionregistrationv1.MutatingWebhook {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	ifNeeded := admissionregistrationv1.IfNeededReinvocationPolicy
	scope := admissionregistrationv1.NamespacedScope
	return admissionregistrationv1.MutatingWebhook{
		Name:         name,
		ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM},
		Rules: []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}, Scope: &scope,
			},
		}},
		NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{testNamespaceLabel: "true"}},
		FailurePolicy:           &fail,
		SideEffects:             &none,
		ReinvocationPolicy:      &ifNeeded,
		AdmissionReviewVersions: []string{"v1"},
		TimeoutSeconds:          ptrTo[int32](10),
	}
}

// registerWebhooks creates the MutatingWebhookConfiguration name with
// webhooks, deleted when the test ends.
func registerWebhooks(t *testing.T, c *cluster, name string, webhooks ...admissionregistrationv1.MutatingWebhook) {
	t.Helper()
	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks:   webhooks,
	}
	api := c.client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if _, err := api.Create(context.Background(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create MutatingWebhookConfiguration: %v", err)
	}
	t.Cleanup(func() {
		if err := api.Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete MutatingWebhookConfiguration %s: %v", name, err)
		}
	})
}

// waitInjecting waits until the API server calls the injector for pods of
// namespace ns: it loads webhook configurations in the background, so a
// server-side dry run of an annotated pod is repeated until it comes back
// with the sidecar.
func waitInjecting(t *testing.T, c *cluster, ns string) {
	t.Helper()
	pod := testPod("probe-", "probe", injectAnnotation, "app")
	eventually(t, webhookActiveTimeout, "the API server calling the injector", func() error {
		got, err := c.client.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return err
		}
		if countSidecars(got) != 1 {
			return errNotInjected
		}
		return nil
	})
}

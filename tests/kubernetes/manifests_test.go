package kubernetes_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What the manifests under deploy/kubernetes are expected to name: the
// injector's defaults (contract §8) and the example app.
const (
	manifestsDir      = "../../deploy/kubernetes"
	injectorNamespace = "eventsidecar-system"
	injectorName      = "eventsidecar-injector" // ServiceAccount, Deployment, webhook configuration
	injectorSecret    = "eventsidecar-injector-tls"
	injectorContainer = "injector"
	exampleNamespace  = "eventsidecar-example"
	exampleSelector   = "app.kubernetes.io/name=orders"
	exampleConfigMap  = "orders-sidecar"
	exampleAppPort    = "8080"
	kubectlTimeout    = 3 * time.Minute
	provisionTimeout  = 2 * time.Minute
)

// TestManifests applies deploy/kubernetes, then runs the injector the way
// its Deployment does, as its ServiceAccount, so the manifests' RBAC is all
// it has. The API server cannot reach a Service's ClusterIP here, so the
// webhook is pointed at the injector's URL on 127.0.0.1 instead.
func TestManifests(t *testing.T) {
	c := sharedCluster(t)
	dir, err := filepath.Abs(manifestsDir)
	if err != nil {
		t.Fatal(err)
	}
	// A server-side dry run of an object in a namespace that does not exist
	// yet fails, so the kustomization's namespaces are applied first.
	applyNamespaces(t, c, dir)
	kubectl(t, c, "apply", "-k", dir, "--dry-run=server", "--validate=strict")
	kubectl(t, c, "apply", "-k", dir, "--validate=strict")
	t.Cleanup(func() { removeInjectorState(t, c) })

	addr := freeAddr(t)
	repointWebhooks(t, c, injectorURL(addr))
	args := injectorArgs(t, c, serviceAccountKubeconfig(t, c))
	first := startInjector(t, "injector-1", addr, args...)
	caBundle := waitProvisioned(t, c)
	leaf := first.waitReady(t, caBundle)
	secret := getSecret(t, c)

	t.Run("example app injected", func(t *testing.T) {
		pod := waitInjectedPod(t, c, exampleNamespace, exampleSelector)
		sc := checkSidecar(t, pod, sidecarImage(t, c))
		checkAppEnv(t, pod, nil)
		if !mountsConfigMap(pod, sc, exampleConfigMap) {
			t.Errorf("sidecar does not mount ConfigMap %s read-only", exampleConfigMap)
		}
		if v := envValues(sc.Env, appPortEnv); len(v) != 1 || v[0] != exampleAppPort {
			t.Errorf("sidecar %s = %q, want [%s]", appPortEnv, v, exampleAppPort)
		}
	})
	t.Run("second replica shares the certificate", func(t *testing.T) {
		secondAddr := freeAddr(t)
		second := startInjector(t, "injector-2", secondAddr, args...)
		checkSameCertificate(t, leaf, second.waitReady(t, caBundle))
		if got := caBundles(t, c); !allEqual(got, caBundle) {
			t.Errorf("caBundle changed when the second injector started")
		}
		if got := getSecret(t, c); got.ResourceVersion != secret.ResourceVersion || !maps.EqualFunc(got.Data, secret.Data, bytes.Equal) {
			t.Errorf("Secret %s changed when the second injector started", injectorSecret)
		}
		repointWebhooks(t, c, injectorURL(secondAddr))
		first.proc.kill()
		waitInjecting(t, c, exampleNamespace)
	})
}

// kubectl runs the kubectl built for the tests as the admin and returns its
// output; it fails the test when kubectl fails.
func kubectl(t *testing.T, c *cluster, args ...string) []byte {
	t.Helper()
	return kubectlWithInput(t, c, nil, args...)
}

// kubectlWithInput is kubectl with stdin read from input.
func kubectlWithInput(t *testing.T, c *cluster, input []byte, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, controlPlane.kubectl, append([]string{"--kubeconfig", c.adminKubeconfig}, args...)...)
	cmd.Env = isolatedEnv()
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// applyNamespaces applies the Namespace objects of the kustomization dir.
func applyNamespaces(t *testing.T, c *cluster, dir string) {
	t.Helper()
	objects := json.NewDecoder(bytes.NewReader(kubectl(t, c, "create", "-k", dir, "--dry-run=client", "-o", "json")))
	namespaces := struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}{APIVersion: "v1", Kind: "List"}
	for objects.More() {
		var item json.RawMessage
		if err := objects.Decode(&item); err != nil {
			t.Fatalf("the kustomization's objects: %v", err)
		}
		var meta metav1.TypeMeta
		if err := json.Unmarshal(item, &meta); err != nil {
			t.Fatalf("an object of the kustomization: %v", err)
		}
		if meta.APIVersion == "v1" && meta.Kind == "Namespace" {
			namespaces.Items = append(namespaces.Items, item)
		}
	}
	list, err := json.Marshal(namespaces)
	if err != nil {
		t.Fatal(err)
	}
	kubectlWithInput(t, c, list, "apply", "-f", "-", "--validate=strict")
}

// repointWebhooks points every webhook of the injector's configuration at
// url instead of the Service, keeping everything else.
func repointWebhooks(t *testing.T, c *cluster, url string) {
	t.Helper()
	api := c.client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	cfg, err := api.Get(context.Background(), injectorName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get the webhook configuration: %v", err)
	}
	for i := range cfg.Webhooks {
		cfg.Webhooks[i].ClientConfig.Service = nil
		cfg.Webhooks[i].ClientConfig.URL = &url
	}
	if _, err := api.Update(context.Background(), cfg, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("point the webhook configuration at %s: %v", url, err)
	}
}

// serviceAccountKubeconfig writes a kubeconfig with a token of the
// injector's ServiceAccount, from the TokenRequest API.
func serviceAccountKubeconfig(t *testing.T, c *cluster) string {
	t.Helper()
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo[int64](3600)}}
	tok, err := c.client.CoreV1().ServiceAccounts(injectorNamespace).CreateToken(context.Background(), injectorName, req, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for ServiceAccount %s/%s: %v", injectorNamespace, injectorName, err)
	}
	path := filepath.Join(t.TempDir(), "injector.kubeconfig")
	if err := writeKubeconfig(path, c.apiURL, c.ca.certPEM, tok.Status.Token); err != nil {
		t.Fatal(err)
	}
	return path
}

// injectorContainerSpec is the injector's container as applied.
func injectorContainerSpec(t *testing.T, c *cluster) corev1.Container {
	t.Helper()
	d, err := c.client.AppsV1().Deployments(injectorNamespace).Get(context.Background(), injectorName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get the injector's Deployment: %v", err)
	}
	for _, ctr := range d.Spec.Template.Spec.Containers {
		if ctr.Name == injectorContainer {
			return ctr
		}
	}
	t.Fatalf("the injector's Deployment has no container %q", injectorContainer)
	return corev1.Container{}
}

// injectorArgs are the arguments of the injector's container as applied,
// with $(VAR) expanded from its env, without --listen (the test's own
// address replaces it), plus the kubeconfig and the namespace a pod would
// have from its ServiceAccount, and --cert-host 127.0.0.1 for the URL.
func injectorArgs(t *testing.T, c *cluster, kubeconfig string) []string {
	t.Helper()
	ctr := injectorContainerSpec(t, c)
	if len(ctr.Command) != 0 || len(ctr.Args) == 0 || ctr.Args[0] != "inject" {
		t.Fatalf("the injector's container runs command %q args %q, want args starting with inject", ctr.Command, ctr.Args)
	}
	vars := map[string]string{}
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			vars[e.Name] = e.Value
		}
	}
	var args []string
	for i := 1; i < len(ctr.Args); i++ {
		a := ctr.Args[i]
		switch {
		case a == "--listen":
			i++
		case strings.HasPrefix(a, "--listen="):
		default:
			args = append(args, expand(a, vars))
		}
	}
	return append(args, "--kubeconfig", kubeconfig, "--namespace", injectorNamespace, "--cert-host", "127.0.0.1")
}

// expand replaces $(NAME) by vars[NAME], as the kubelet does in args.
func expand(s string, vars map[string]string) string {
	for name, value := range vars {
		s = strings.ReplaceAll(s, "$("+name+")", value)
	}
	return s
}

// sidecarImage is the --sidecar-image the injector's container is given.
func sidecarImage(t *testing.T, c *cluster) string {
	t.Helper()
	args := injectorArgs(t, c, "")
	for i, a := range args {
		if a == "--sidecar-image" && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--sidecar-image="); ok {
			return v
		}
	}
	t.Fatalf("the injector's container has no --sidecar-image: %q", args)
	return ""
}

// waitProvisioned waits until the injector has created its Secret and
// written a CA into every webhook's caBundle, and returns that bundle.
func waitProvisioned(t *testing.T, c *cluster) []byte {
	t.Helper()
	var bundle []byte
	eventually(t, provisionTimeout, "Secret "+injectorSecret+" and the caBundle", func() error {
		if _, err := c.client.CoreV1().Secrets(injectorNamespace).Get(context.Background(), injectorSecret, metav1.GetOptions{}); err != nil {
			return err
		}
		bundles, err := webhookCABundles(c)
		if err != nil {
			return err
		}
		if len(bundles) == 0 || len(bundles[0]) == 0 || !allEqual(bundles, bundles[0]) {
			return fmt.Errorf("caBundles %q", bundles)
		}
		bundle = bundles[0]
		return nil
	})
	return bundle
}

// caBundles are the caBundles of the injector's webhooks.
func caBundles(t *testing.T, c *cluster) [][]byte {
	t.Helper()
	bundles, err := webhookCABundles(c)
	if err != nil {
		t.Fatal(err)
	}
	return bundles
}

func webhookCABundles(c *cluster) ([][]byte, error) {
	cfg, err := c.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), injectorName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	var bundles [][]byte
	for _, w := range cfg.Webhooks {
		bundles = append(bundles, w.ClientConfig.CABundle)
	}
	return bundles, nil
}

func allEqual(bundles [][]byte, want []byte) bool {
	for _, b := range bundles {
		if !bytes.Equal(b, want) {
			return false
		}
	}
	return len(bundles) > 0
}

// getSecret is the injector's Secret.
func getSecret(t *testing.T, c *cluster) *corev1.Secret {
	t.Helper()
	s, err := c.client.CoreV1().Secrets(injectorNamespace).Get(context.Background(), injectorSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get Secret %s: %v", injectorSecret, err)
	}
	return s
}

// waitInjectedPod waits until a pod of ns matching selector, created by a
// controller that retries after the refusals from before the injector
// was up, exists with its sidecar, and returns it as persisted.
func waitInjectedPod(t *testing.T, c *cluster, ns, selector string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	eventually(t, controllerPodTimeout, "an injected pod "+selector+" in "+ns, func() error {
		var err error
		if pod, err = firstPod(c, ns, selector); err != nil {
			return err
		}
		if countSidecars(pod) != 1 {
			return fmt.Errorf("pod %s: %w", pod.Name, errNotInjected)
		}
		return nil
	})
	return pod
}

// checkSameCertificate checks that two injectors serve one certificate.
func checkSameCertificate(t *testing.T, first, second *x509.Certificate) {
	t.Helper()
	if !bytes.Equal(first.Raw, second.Raw) {
		t.Errorf("the second injector serves another certificate (serial %s, want %s)", second.SerialNumber, first.SerialNumber)
	}
}

// removeInjectorState deletes what TestManifests leaves that would change
// other tests or a second run in the same cluster: the manifests'
// webhook configuration, which matches every namespace but two and points
// at an injector that is gone, and the Secret the injector provisioned.
func removeInjectorState(t *testing.T, c *cluster) {
	t.Helper()
	ctx := context.Background()
	if err := c.client.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, injectorName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete MutatingWebhookConfiguration %s: %v", injectorName, err)
	}
	if err := c.client.CoreV1().Secrets(injectorNamespace).Delete(ctx, injectorSecret, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete Secret %s: %v", injectorSecret, err)
	}
}

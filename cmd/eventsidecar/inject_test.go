package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/eventsidecar/eventsidecar/internal/syncbuf"
)

// writeTestCert writes a serving certificate for 127.0.0.1, signed by a
// fresh CA, and its key into dir, and returns the files and the CA.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for name, b := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(name, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	roots = x509.NewCertPool()
	roots.AddCert(ca)
	return certFile, keyFile, roots
}

// listeningAddr polls the JSON log for the "listening" line and returns
// its addr; it fails if the command ends first.
func listeningAddr(t *testing.T, log *syncbuf.Buffer, exited <-chan int) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, line := range strings.Split(log.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				return rec.Addr
			}
		}
		select {
		case code := <-exited:
			t.Fatalf("inject exited with %d before listening:\n%s", code, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line within 20s:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// podReviewBody is an AdmissionReview of the CREATE of an annotated pod.
func podReviewBody(t *testing.T) []byte {
	t.Helper()
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Namespace: "shop", Annotations: map[string]string{"eventsidecar.io/inject": "true"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "review-1", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: "shop", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInjectServes runs the command with certificate files, sends it an
// AdmissionReview over TLS and stops it with SIGTERM.
func TestInjectServes(t *testing.T) {
	certFile, keyFile, roots := writeTestCert(t, t.TempDir())
	var stdout, stderr syncbuf.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run([]string{"inject", "--listen", "127.0.0.1:0", "--tls-cert-file", certFile, "--tls-key-file", keyFile,
			"--sidecar-image", "registry.example/eventsidecar:3"}, strings.NewReader(""), &stdout, &stderr)
	}()
	addr := listeningAddr(t, &stderr, exited)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	get := func(path string) (int, string) {
		resp, err := client.Get("https://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := get(path); code != 200 || body != "ok\n" {
			t.Errorf("GET %s: %d %q, want 200 ok", path, code, body)
		}
	}
	resp, err := client.Post("https://"+addr+"/mutate", "application/json", bytes.NewReader(podReviewBody(t)))
	if err != nil {
		t.Fatal(err)
	}
	var review admissionv1.AdmissionReview
	err = json.NewDecoder(resp.Body).Decode(&review)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := review.Response
	if r == nil || r.UID != "review-1" || !r.Allowed || r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("response = %+v, want review-1 allowed with a JSON patch", r)
	}
	for _, want := range []string{`"image":"registry.example/eventsidecar:3"`, `"restartPolicy":"Always"`, `"/spec/initContainers"`} {
		if !bytes.Contains(r.Patch, []byte(want)) {
			t.Errorf("patch lacks %s: %s", want, r.Patch)
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("exit = %d after SIGTERM, want 0:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("inject did not stop within 20s of SIGTERM")
	}
	for _, want := range []string{`"msg":"shutting down","cause":"terminated signal received"`, `"msg":"stopped"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, stderr.String())
		}
	}
}

func TestInjectUsage(t *testing.T) {
	certFile, keyFile, _ := writeTestCert(t, t.TempDir())
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--tls-cert-file", certFile}, "--tls-key-file is missing"},
		{"key without cert", []string{"--tls-key-file", keyFile}, "--tls-cert-file is missing"},
		{"unknown flag", []string{"--bogus"}, "flag provided but not defined: -bogus"},
		{"listen without port", []string{"--listen", "127.0.0.1"}, `--listen "127.0.0.1": address 127.0.0.1: missing port`},
		{"listen port too big", []string{"--listen", ":65536"}, `--listen ":65536": port "65536" is not a number`},
		{"listen port name", []string{"--listen", ":https"}, `port "https" is not a number`},
		{"argument", []string{"--tls-cert-file", certFile, "--tls-key-file", keyFile, "extra"}, `unexpected argument "extra"`},
		{"log level", []string{"--log-level", "loud"}, `--log-level "loud"`},
		{"empty cert host", []string{"--cert-host", ""}, "-cert-host: empty host"},
		{"empty image", []string{"--sidecar-image", ""}, "--sidecar-image is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(append([]string{"inject"}, tt.args...), strings.NewReader(""), &stdout, &stderr); got != 2 {
				t.Errorf("exit = %d, want 2", got)
			}
			if !strings.Contains(stderr.String(), tt.want) || !strings.Contains(stderr.String(), "eventsidecar inject [--listen") {
				t.Errorf("stderr lacks %q or the usage:\n%s", tt.want, stderr.String())
			}
		})
	}
}

func TestInjectHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if got := run([]string{"inject", "--help"}, strings.NewReader(""), &stdout, &stderr); got != 0 {
		t.Errorf("exit = %d, want 0", got)
	}
	for _, flag := range []string{"-listen", "-tls-cert-file", "-tls-key-file", "-sidecar-image", "-kubeconfig", "-namespace",
		"-service", "-webhook-config", "-tls-secret", "-cert-host", "-log-level", `(default "eventsidecar:` + version + `")`} {
		if !strings.Contains(stderr.String(), flag) {
			t.Errorf("help lacks %s:\n%s", flag, stderr.String())
		}
	}
	stdout.Reset()
	run([]string{"help"}, strings.NewReader(""), &stdout, &stderr)
	if !strings.Contains(stdout.String(), "eventsidecar inject [--listen :8443]") {
		t.Errorf("the command's usage lacks inject:\n%s", stdout.String())
	}
}

// TestInjectFails covers what fails once the command line is right: exit 1
// with the reason.
func TestInjectFails(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeTestCert(t, dir)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	t.Setenv("POD_NAMESPACE", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	saved := serviceAccountNamespaceFile
	serviceAccountNamespaceFile = filepath.Join(dir, "no-namespace")
	t.Cleanup(func() { serviceAccountNamespaceFile = saved })
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	kubeconfig := filepath.Join(dir, "kubeconfig.yaml")
	writeKubeconfig(t, kubeconfig, "https://"+closed.Addr().String())
	local := []string{"--listen", "127.0.0.1:0"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing cert file", append(local, "--tls-cert-file", filepath.Join(dir, "none.crt"), "--tls-key-file", keyFile), "none.crt: no such file"},
		{"key of nothing", append(local, "--tls-cert-file", certFile, "--tls-key-file", certFile), "load serving certificate"},
		{"busy port", []string{"--listen", busy.Addr().String(), "--tls-cert-file", certFile, "--tls-key-file", keyFile}, "listen " + busy.Addr().String()},
		{"no namespace", local, "namespace unknown: give --namespace"},
		{"not in a cluster", append(local, "--namespace", "ns"), "in-cluster config"},
		{"missing kubeconfig", append(local, "--namespace", "ns", "--kubeconfig", filepath.Join(dir, "none.yaml")), "--kubeconfig " + dir},
		{"API server unreachable", append(local, "--namespace", "ns", "--kubeconfig", kubeconfig), "get secret ns/eventsidecar-injector-tls: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(append([]string{"inject"}, tt.args...), strings.NewReader(""), &stdout, &stderr); got != 1 {
				t.Errorf("exit = %d, want 1", got)
			}
			if !strings.Contains(stderr.String(), "eventsidecar inject: ") || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, stderr.String())
			}
		})
	}
}

// writeKubeconfig writes a kubeconfig for the API server at url.
func writeKubeconfig(t *testing.T, name, url string) {
	t.Helper()
	cfg := `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ` + url + `
    insecure-skip-tls-verify: true
users:
- name: test
  user:
    token: not-a-secret
contexts:
- name: test
  context:
    cluster: test
    user: test
current-context: test
`
	if err := os.WriteFile(name, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestPodNamespace(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "namespace")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	saved := serviceAccountNamespaceFile
	t.Cleanup(func() { serviceAccountNamespaceFile = saved })
	tests := []struct {
		name, flag, env, file, want string
	}{
		{"flag", "from-flag", "from-env", file, "from-flag"},
		{"env", "", "from-env", file, "from-env"},
		{"file", "", "", file, "from-file"},
		{"none", "", "", filepath.Join(dir, "none"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("POD_NAMESPACE", tt.env)
			serviceAccountNamespaceFile = tt.file
			got, err := podNamespace(tt.flag)
			if got != tt.want || (err != nil) != (tt.want == "") {
				t.Errorf("podNamespace = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

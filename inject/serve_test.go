package inject

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// running is a Server serving on loopback.
type running struct {
	addr   string
	client *http.Client
	cancel context.CancelFunc
	done   chan error // Serve's result
}

// startServer serves s on 127.0.0.1 with a certificate from a fresh CA and
// returns it with a client that trusts only that CA.
func startServer(t *testing.T, s *Server) *running {
	t.Helper()
	p := newTestPair(t)
	pair, err := tls.X509KeyPair(p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	if s.GetCertificate == nil {
		s.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Serve(ctx, ln) }()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(p.ca)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	r.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		cancel()
		tr.CloseIdleConnections()
		<-r.done
	})
	return r
}

// stop ends r's context and returns what Serve returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after its context ended")
		return nil
	}
}

func (r *running) do(t *testing.T, method, path string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+r.addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// annotatedPodReview is an AdmissionReview of the CREATE of a pod that
// asks for the sidecar.
func annotatedPodReview(t *testing.T) []byte {
	t.Helper()
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Namespace: "default", Annotations: map[string]string{"eventsidecar.io/inject": "true"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "uid-1",
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: "default",
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
	b, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServerRoutes(t *testing.T) {
	r := startServer(t, &Server{Handler: NewHandler(Options{SidecarImage: "registry.example/es:2"})})
	tests := []struct {
		method, path string
		body         []byte
		want         int
		wantBody     string
	}{
		{http.MethodPost, "/mutate", annotatedPodReview(t), 200, `"uid":"uid-1","allowed":true`},
		{http.MethodGet, "/mutate", nil, 405, ""},
		{http.MethodGet, "/healthz", nil, 200, "ok\n"},
		{http.MethodHead, "/healthz", nil, 200, ""},
		{http.MethodPost, "/healthz", nil, 405, ""},
		{http.MethodGet, "/readyz", nil, 200, "ok\n"},
		{http.MethodGet, "/", nil, 404, ""},
		{http.MethodGet, "/mutate/x", nil, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			code, body := r.do(t, tt.method, tt.path, tt.body)
			if code != tt.want || !strings.Contains(body, tt.wantBody) {
				t.Errorf("%d %q; want %d and %q", code, body, tt.want, tt.wantBody)
			}
		})
	}
	var review admissionv1.AdmissionReview
	_, body := r.do(t, http.MethodPost, "/mutate", annotatedPodReview(t))
	if err := json.Unmarshal([]byte(body), &review); err != nil {
		t.Fatal(err)
	}
	if review.Response == nil || !bytes.Contains(review.Response.Patch, []byte("registry.example/es:2")) {
		t.Errorf("the answer patches in no sidecar of the image: %s", body)
	}
}

func TestServerReadiness(t *testing.T) {
	var notReady atomic.Pointer[error]
	reason := errors.New("caBundle not written yet")
	notReady.Store(&reason)
	r := startServer(t, &Server{Handler: http.NotFoundHandler(), Ready: func() error {
		if p := notReady.Load(); p != nil {
			return *p
		}
		return nil
	}})
	if code, body := r.do(t, http.MethodGet, "/readyz", nil); code != 503 || body != "not ready: caBundle not written yet\n" {
		t.Errorf("not ready: %d %q", code, body)
	}
	if code, _ := r.do(t, http.MethodGet, "/healthz", nil); code != 200 {
		t.Errorf("healthz while not ready: %d, want 200", code)
	}
	notReady.Store(nil)
	if code, body := r.do(t, http.MethodGet, "/readyz", nil); code != 200 {
		t.Errorf("ready: %d %q", code, body)
	}
}

func TestServerReadyNeedsCertificate(t *testing.T) {
	tests := []struct {
		name string
		get  func(*tls.ClientHelloInfo) (*tls.Certificate, error)
		want string
	}{
		{"error", func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, errors.New("none yet") }, "no serving certificate: none yet"},
		{"nil", func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }, "no serving certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{GetCertificate: tt.get, Ready: func() error { return nil }}
			if err := s.ready(); err == nil || err.Error() != tt.want {
				t.Errorf("ready = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestServerTLS(t *testing.T) {
	r := startServer(t, &Server{Handler: http.NotFoundHandler()})
	tr := r.client.Transport.(*http.Transport)
	tests := []struct {
		name    string
		cfg     *tls.Config
		wantErr string
	}{
		{"TLS 1.2", &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, MaxVersion: tls.VersionTLS12}, ""},
		{"h2", &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, NextProtos: []string{"h2", "http/1.1"}}, ""},
		{"TLS 1.1", &tls.Config{RootCAs: tr.TLSClientConfig.RootCAs, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, "protocol version"},
		{"other CA", &tls.Config{RootCAs: x509.NewCertPool()}, "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tls.Dial("tcp", r.addr, tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("handshake: %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if len(tt.cfg.NextProtos) > 0 && c.ConnectionState().NegotiatedProtocol != "h2" {
				t.Errorf("negotiated %q, want h2", c.ConnectionState().NegotiatedProtocol)
			}
		})
	}
}

func TestServerBounds(t *testing.T) {
	srv := (&Server{Handler: http.NotFoundHandler()}).httpServer()
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 ||
		srv.MaxHeaderBytes <= 0 || srv.TLSConfig.MinVersion != tls.VersionTLS12 {
		t.Errorf("unbounded server: %+v", srv)
	}
	r := startServer(t, &Server{Handler: http.NotFoundHandler()})
	req, err := http.NewRequest(http.MethodGet, "https://"+r.addr+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Big", strings.Repeat("x", 2*maxHeaderBytes))
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a %d-byte header: status %d, want 431", 2*maxHeaderBytes, resp.StatusCode)
	}
}

// blocking is a handler that holds every request until release closes.
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func newBlocking() *blocking {
	return &blocking{entered: make(chan struct{}, 10), release: make(chan struct{})}
}

func (b *blocking) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	b.entered <- struct{}{}
	<-b.release
	w.WriteHeader(http.StatusNoContent)
}

// waitClosed polls until addr refuses connections.
func waitClosed(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener is still open 10s after the context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServerShutsDownGracefully(t *testing.T) {
	h := newBlocking()
	r := startServer(t, &Server{Handler: h})
	got := make(chan int, 1)
	go func() {
		resp, err := r.client.Post("https://"+r.addr+"/mutate", "application/json", nil)
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-h.entered
	r.cancel()
	waitClosed(t, r.addr)
	close(h.release)
	if code := <-got; code != http.StatusNoContent {
		t.Errorf("the in-flight request got %d, want 204", code)
	}
	if err := r.stop(t); err != nil {
		t.Errorf("Serve = %v, want nil after a graceful shutdown", err)
	}
}

func TestServerShutdownTimeout(t *testing.T) {
	h := newBlocking()
	t.Cleanup(func() { close(h.release) })
	r := startServer(t, &Server{Handler: h, ShutdownTimeout: 50 * time.Millisecond})
	go func() {
		if resp, err := r.client.Post("https://"+r.addr+"/mutate", "application/json", nil); err == nil {
			resp.Body.Close()
		}
	}()
	<-h.entered
	if err := r.stop(t); err == nil || !strings.Contains(err.Error(), "shut down: context deadline exceeded") {
		t.Errorf("Serve = %v, want the shutdown to time out", err)
	}
}

func TestServerServeErrors(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	cert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }
	tests := []struct {
		name string
		s    *Server
		want string
	}{
		{"no handler", &Server{GetCertificate: cert}, "needs a Handler"},
		{"no certificate", &Server{Handler: http.NotFoundHandler()}, "needs a Handler and GetCertificate"},
		{"closed listener", &Server{Handler: http.NotFoundHandler(), GetCertificate: cert}, "use of closed network connection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.s.Serve(context.Background(), closed); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Serve = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

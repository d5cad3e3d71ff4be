package inject

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/eventsidecar/eventsidecar/internal/syncbuf"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// webhookServer is a real HTTP server running NewHandler, and its log.
func webhookServer(t *testing.T, opts Options) (*httptest.Server, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	opts.Log = slog.New(slog.NewJSONHandler(logs, nil))
	srv := httptest.NewServer(NewHandler(opts))
	t.Cleanup(srv.Close)
	return srv, logs
}

// podReview is an AdmissionReview of a pod CREATE in namespace ns.
func podReview(t testing.TB, uid, ns string, pod *corev1.Pod) admissionv1.AdmissionReview {
	t.Helper()
	return admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID(uid),
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: ns,
			Operation: admissionv1.Create,
			Object:    runtime.RawExtension{Raw: mustJSON(t, pod)},
		},
	}
}

// post sends body to the server's /mutate and returns the response and its body.
func post(t *testing.T, srv *httptest.Server, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	res, err := srv.Client().Post(srv.URL+"/mutate", contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return res, b
}

// review posts in and decodes the AdmissionReview answer, which must have
// the request's apiVersion, kind and uid.
func review(t *testing.T, srv *httptest.Server, in admissionv1.AdmissionReview) *admissionv1.AdmissionResponse {
	t.Helper()
	res, body := post(t, srv, "application/json", mustJSON(t, in))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var out admissionv1.AdmissionReview
	if err := utiljson.Unmarshal(body, &out); err != nil {
		t.Fatalf("decode response %s: %v", body, err)
	}
	if out.APIVersion != in.APIVersion || out.Kind != in.Kind {
		t.Errorf("response is %s %s, want %s %s", out.APIVersion, out.Kind, in.APIVersion, in.Kind)
	}
	if out.Response == nil {
		t.Fatalf("response has no response: %s", body)
	}
	if out.Response.UID != in.Request.UID {
		t.Errorf("response uid = %q, want %q", out.Response.UID, in.Request.UID)
	}
	return out.Response
}

func TestHandlerInjects(t *testing.T) {
	srv, logs := webhookServer(t, testOpts)
	pod := barePod(map[string]string{AnnotationAppPort: "8080"})
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "API_TOKEN", Value: "s3cr3t-value"}}
	resp := review(t, srv, podReview(t, "uid-1", "shop", pod))

	if !resp.Allowed || resp.Result != nil {
		t.Fatalf("allowed = %v, result = %+v; want allowed", resp.Allowed, resp.Result)
	}
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patchType = %v, want JSONPatch", resp.PatchType)
	}
	got := patchedPod(t, pod, resp.Patch)
	if n := containerNames(got.Spec.InitContainers); len(n) != 1 || n[0] != ContainerName {
		t.Errorf("init containers = %v", n)
	}
	assertAppEnv(t, got.Spec.Containers[0], "http://127.0.0.1:3600", "127.0.0.1:3601")

	line := logs.String()
	for _, want := range []string{`"decision":"injected"`, `"namespace":"shop"`, `"generateName":"web-"`, `"uid":"uid-1"`} {
		if !strings.Contains(line, want) {
			t.Errorf("log %s lacks %s", line, want)
		}
	}
	if strings.Contains(line, "s3cr3t") || strings.Count(line, "\n") != 1 {
		t.Errorf("log must be one line without the pod's content: %s", line)
	}
}

func TestHandlerDecisions(t *testing.T) {
	injectedPod := injected(t, barePod(nil), testOpts)
	for _, tc := range []struct {
		name     string
		pod      *corev1.Pod
		patch    bool
		decision string
	}{
		{"not opted in", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}, false, "skipped"},
		{"already injected", injectedPod, false, "unchanged"},
		{"named pod", func() *corev1.Pod { p := barePod(nil); p.Name, p.GenerateName = "named", ""; return p }(), true, "injected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, logs := webhookServer(t, testOpts)
			resp := review(t, srv, podReview(t, "u", "ns", tc.pod))
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			if gotPatch := len(resp.Patch) > 0; gotPatch != tc.patch || gotPatch != (resp.PatchType != nil) {
				t.Errorf("patch = %s, patchType = %v; want patch %v", resp.Patch, resp.PatchType, tc.patch)
			}
			if !strings.Contains(logs.String(), `"decision":"`+tc.decision+`"`) {
				t.Errorf("log %s lacks decision %s", logs, tc.decision)
			}
		})
	}
}

func TestHandlerDenies(t *testing.T) {
	srv, logs := webhookServer(t, testOpts)
	pod := barePod(map[string]string{AnnotationAppPort: "http"})
	pod.Name = "web-1"
	resp := review(t, srv, podReview(t, "uid-2", "shop", pod))

	if resp.Allowed || len(resp.Patch) > 0 || resp.PatchType != nil {
		t.Fatalf("allowed = %v, patch = %s; want denied without a patch", resp.Allowed, resp.Patch)
	}
	want := `eventsidecar.io/app-port: "http" is not a port number (1-65535)`
	if r := resp.Result; r == nil || r.Code != http.StatusBadRequest || r.Reason != metav1.StatusReasonBadRequest ||
		r.Message != want || r.Status != metav1.StatusFailure {
		t.Errorf("result = %+v, want code 400 BadRequest %q", resp.Result, want)
	}
	if l := logs.String(); !strings.Contains(l, `"decision":"denied"`) || !strings.Contains(l, `"pod":"web-1"`) || !strings.Contains(l, "app-port") {
		t.Errorf("log = %s", l)
	}
}

func TestHandlerBadObject(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string
		want string
	}{
		{"no object", "", "the request has no pod object"},
		{"not a pod", `{"spec":{"containers":"many"}}`, "the request's object is not a pod: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := webhookServer(t, testOpts)
			in := podReview(t, "u", "ns", barePod(nil))
			in.Request.Object.Raw = nil // marshalled as "object":null
			if tc.raw != "" {
				in.Request.Object.Raw = []byte(tc.raw)
			}
			resp := review(t, srv, in)
			if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusBadRequest || !strings.HasPrefix(resp.Result.Message, tc.want) {
				t.Errorf("response = %+v, want denied with 400 %q", resp, tc.want)
			}
		})
	}
}

func TestHandlerAllowsOtherRequests(t *testing.T) {
	pod := barePod(nil)
	for _, tc := range []struct {
		name   string
		modify func(*admissionv1.AdmissionRequest)
	}{
		{"deployment", func(r *admissionv1.AdmissionRequest) {
			r.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
			r.Object.Raw = []byte(`{"kind":"Deployment","spec":{}}`)
		}},
		{"pod update", func(r *admissionv1.AdmissionRequest) { r.Operation = admissionv1.Update }},
		{"pod delete", func(r *admissionv1.AdmissionRequest) { r.Operation = admissionv1.Delete; r.Object.Raw = nil }},
		{"pod subresource", func(r *admissionv1.AdmissionRequest) { r.SubResource = "ephemeralcontainers" }},
		{"pod connect", func(r *admissionv1.AdmissionRequest) { r.Operation = admissionv1.Connect }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, logs := webhookServer(t, testOpts)
			in := podReview(t, "u-"+tc.name, "ns", pod)
			tc.modify(in.Request)
			resp := review(t, srv, in)
			if !resp.Allowed || len(resp.Patch) > 0 || resp.PatchType != nil || resp.Result != nil {
				t.Errorf("response = %+v, want allowed untouched", resp)
			}
			if !strings.Contains(logs.String(), `"decision":"skipped"`) {
				t.Errorf("log = %s", logs)
			}
		})
	}
}

func TestHandlerDryRunInjects(t *testing.T) {
	srv, _ := webhookServer(t, testOpts)
	in := podReview(t, "u", "ns", barePod(nil))
	in.Request.DryRun = new(true)
	if resp := review(t, srv, in); !resp.Allowed || len(resp.Patch) == 0 {
		t.Errorf("dry-run response = %+v, want the same patch as without dry run", resp)
	}
}

func TestHandlerHTTPErrors(t *testing.T) {
	valid := func(t *testing.T) []byte { return mustJSON(t, podReview(t, "u", "ns", barePod(nil))) }
	for _, tc := range []struct {
		name        string
		method      string
		contentType string
		body        func(*testing.T) []byte
		status      int
		want        string
	}{
		{"GET", http.MethodGet, "", func(*testing.T) []byte { return nil }, http.StatusMethodNotAllowed, "method not allowed"},
		{"PUT", http.MethodPut, "application/json", valid, http.StatusMethodNotAllowed, "method not allowed"},
		{"text/plain", http.MethodPost, "text/plain", valid, http.StatusUnsupportedMediaType, "want application/json"},
		{"no content type", http.MethodPost, "", valid, http.StatusUnsupportedMediaType, "want application/json"},
		{"bad content type", http.MethodPost, "application/json; =", valid, http.StatusUnsupportedMediaType, "want application/json"},
		{"too large", http.MethodPost, "application/json", func(*testing.T) []byte { return bytes.Repeat([]byte(" "), maxReviewBytes+1) },
			http.StatusRequestEntityTooLarge, "larger than"},
		{"malformed", http.MethodPost, "application/json", func(*testing.T) []byte { return []byte(`{"apiVersion":`) }, http.StatusBadRequest, "malformed AdmissionReview"},
		{"no request", http.MethodPost, "application/json",
			func(*testing.T) []byte {
				return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`)
			}, http.StatusBadRequest, "has no request"},
		{"v1beta1", http.MethodPost, "application/json",
			func(*testing.T) []byte {
				return []byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u"}}`)
			},
			http.StatusBadRequest, "unsupported apiVersion"},
		{"wrong kind", http.MethodPost, "application/json",
			func(*testing.T) []byte {
				return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"u"}}`)
			},
			http.StatusBadRequest, "unsupported apiVersion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := webhookServer(t, testOpts)
			req, err := http.NewRequest(tc.method, srv.URL+"/mutate", bytes.NewReader(tc.body(t)))
			if err != nil {
				t.Fatal(err)
			}
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
				t.Errorf("status %d %q, want %d containing %q", res.StatusCode, body, tc.status, tc.want)
			}
			if tc.status == http.StatusMethodNotAllowed && res.Header.Get("Allow") != http.MethodPost {
				t.Errorf("Allow = %q, want POST", res.Header.Get("Allow"))
			}
		})
	}
}

func TestHandlerAcceptsCharset(t *testing.T) {
	srv, _ := webhookServer(t, testOpts)
	res, body := post(t, srv, "application/json; charset=utf-8", mustJSON(t, podReview(t, "u", "ns", barePod(nil))))
	if res.StatusCode != http.StatusOK {
		t.Errorf("status %d: %s", res.StatusCode, body)
	}
}

func TestNewHandlerDefaultLog(t *testing.T) {
	h := NewHandler(testOpts)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(mustJSON(t, podReview(t, "u", "ns", barePod(nil)))))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("status %d: %s", rec.Code, rec.Body)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
}

// FuzzHandler feeds the handler arbitrary bodies: it must not panic, must
// answer 200 or a 4xx, and any patch it returns must apply to the pod as
// the API server would send it.
func FuzzHandler(f *testing.F) {
	seed := func(pod *corev1.Pod) []byte {
		b, err := json.Marshal(podReview(f, "uid", "ns", pod))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(seed(barePod(nil)))
	f.Add(seed(barePod(map[string]string{AnnotationConfig: "c", AnnotationAppPort: "80", AnnotationLogLevel: "warn"})))
	f.Add(seed(barePod(map[string]string{AnnotationAppPort: "http"})))
	f.Add(seed(&corev1.Pod{}))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE","object":{"metadata":{"annotations":{"eventsidecar.io/inject":"true"}},"spec":{"initContainers":[{"name":"x"}],"containers":[{"name":"a","env":[{"name":"B"}]}]}}}}`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`))
	f.Add([]byte(`{`))
	h := NewHandler(Options{SidecarImage: testImage, Log: slog.New(slog.DiscardHandler)})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			if rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			return
		}
		var in, out admissionv1.AdmissionReview
		if err := utiljson.Unmarshal(body, &in); err != nil {
			t.Fatalf("200 for a body that does not decode: %v", err)
		}
		if err := utiljson.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil || out.Response.UID != in.Request.UID {
			t.Fatalf("response %s (%v) does not answer request %s", rec.Body, err, in.Request.UID)
		}
		resp := out.Response
		if !resp.Allowed {
			if len(resp.Patch) > 0 || resp.Result == nil || resp.Result.Message == "" {
				t.Fatalf("denial %s has a patch or no message", rec.Body)
			}
			return
		}
		if len(resp.Patch) == 0 {
			return
		}
		var pod corev1.Pod
		if err := utiljson.Unmarshal(in.Request.Object.Raw, &pod); err != nil {
			t.Fatalf("patch for an object that does not decode: %v", err)
		}
		assertInjection(t, &pod, resp.Patch, testOpts)
	})
}

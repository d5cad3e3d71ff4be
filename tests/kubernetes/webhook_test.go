package kubernetes_test

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// lateContainer is the container the test's own webhook adds, after the
// injector has run, to pods labelled lateLabel.
const (
	lateContainer = "late"
	lateLabel     = "e2e.eventsidecar.io/late"
)

// maxReviewBytes bounds an AdmissionReview the test's webhook reads.
const maxReviewBytes = 4 << 20

// startLateWebhook serves a second mutating webhook over HTTPS on
// 127.0.0.1 with a certificate from ca. It adds the container "late" to a
// pod that does not have it yet. It returns its URL; it is closed when the
// test ends.
func startLateWebhook(t *testing.T, ca *testCA) string {
	t.Helper()
	pair, err := ca.issue([]net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pair.tlsCertificate()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(serveLate))
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL + "/mutate"
}

// serveLate answers an AdmissionReview v1 for a pod.
func serveLate(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxReviewBytes)).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	review.Response, review.Request = lateResponse(review.Request), nil
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(&review)
}

// lateResponse allows the pod of req, adding the late container when it
// does not have it yet.
func lateResponse(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return deny(resp, "late webhook: not a pod: "+err.Error())
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == lateContainer {
			return resp
		}
	}
	patch, err := json.Marshal([]map[string]any{{
		"op": "add", "path": "/spec/containers/-", "value": appContainer(lateContainer),
	}})
	if err != nil {
		return deny(resp, "late webhook: "+err.Error())
	}
	jsonPatch := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &jsonPatch
	return resp
}

func deny(resp *admissionv1.AdmissionResponse, msg string) *admissionv1.AdmissionResponse {
	resp.Allowed = false
	resp.Result = &metav1.Status{Message: msg}
	return resp
}

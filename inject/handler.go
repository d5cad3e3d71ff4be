package inject

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// maxReviewBytes bounds an AdmissionReview body. The API server stores
// objects of at most about 1.5 MiB and accepts requests of 3 MiB.
const maxReviewBytes = 4 << 20

var podKind = metav1.GroupVersionKind{Group: "", Version: "v1", Kind: "Pod"}

// handler is the http.Handler NewHandler returns.
type handler struct {
	opts Options
	log  *slog.Logger
}

// NewHandler returns the http.Handler for POST /mutate: AdmissionReview v1
// in, AdmissionReview v1 out. It answers CREATE requests for core/v1 Pods
// with the decision of PodPatch and allows every other request unchanged.
// Requests that are not a POST of a JSON AdmissionReview v1 of at most
// 4 MiB get a plain-text 4xx. The handler has no side effects, so dry-run
// requests are answered like any other. It is safe for concurrent use.
func NewHandler(opts Options) http.Handler {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	return &handler{opts: opts, log: log}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed: use POST", http.StatusMethodNotAllowed)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		http.Error(w, "unsupported media type: want application/json", http.StatusUnsupportedMediaType)
		return
	}
	review, status, err := readReview(w, r)
	if err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "admission request rejected",
			slog.Int("status", status), slog.String("error", err.Error()))
		http.Error(w, err.Error(), status)
		return
	}
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: h.admit(r, review.Request)}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(w, "inject: marshal AdmissionReview: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// readReview reads and checks the AdmissionReview in r's body, or returns
// the HTTP status and the reason to refuse it.
func readReview(w http.ResponseWriter, r *http.Request) (*admissionv1.AdmissionReview, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReviewBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", maxReviewBytes)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("read request body: %w", err)
	}
	var review admissionv1.AdmissionReview
	if err := utiljson.Unmarshal(body, &review); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("malformed AdmissionReview: %w", err)
	}
	want := admissionv1.SchemeGroupVersion.WithKind("AdmissionReview")
	if review.GroupVersionKind() != want {
		return nil, http.StatusBadRequest, fmt.Errorf("unsupported apiVersion %q and kind %q: want %s AdmissionReview", review.APIVersion, review.Kind, admissionv1.SchemeGroupVersion)
	}
	if review.Request == nil {
		return nil, http.StatusBadRequest, errors.New("AdmissionReview has no request")
	}
	return &review, 0, nil
}

// admit answers one admission request and logs the decision.
func (h *handler) admit(r *http.Request, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	attrs := []slog.Attr{slog.String("uid", string(req.UID)), slog.String("namespace", req.Namespace)}
	if req.Kind != podKind || req.SubResource != "" || req.Operation != admissionv1.Create {
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "admission", append(attrs,
			slog.String("decision", actionSkipped), slog.String("reason", "not a pod CREATE"),
			slog.String("kind", req.Kind.String()), slog.String("operation", string(req.Operation)))...)
		return resp
	}
	d, err := decodeAndDecide(req.Object.Raw, h.opts)
	attrs = append(attrs, podAttr(d.pod))
	if err != nil {
		code, reason := int32(http.StatusInternalServerError), metav1.StatusReasonInternalError
		if _, ok := errors.AsType[*invalidPodError](err); ok {
			code, reason = http.StatusBadRequest, metav1.StatusReasonBadRequest
		}
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: err.Error()}
		h.log.LogAttrs(r.Context(), slog.LevelInfo, "admission", append(attrs,
			slog.String("decision", actionDenied), slog.String("reason", err.Error()))...)
		return resp
	}
	if len(d.patch) > 0 {
		resp.Patch = d.patch
		resp.PatchType = new(admissionv1.PatchTypeJSONPatch)
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "admission", append(attrs,
		slog.String("decision", d.action), slog.String("reason", d.reason))...)
	return resp
}

// podDecision is the decision for one pod as the handler needs it.
type podDecision struct {
	pod    *corev1.Pod // nil when the object did not decode
	patch  []byte
	action string
	reason string
}

// decodeAndDecide decodes the pod in raw and decides what to do with it.
func decodeAndDecide(raw []byte, opts Options) (podDecision, error) {
	if len(raw) == 0 {
		return podDecision{}, &invalidPodError{problems: []string{"the request has no pod object"}}
	}
	var pod corev1.Pod
	if err := utiljson.Unmarshal(raw, &pod); err != nil {
		return podDecision{}, &invalidPodError{problems: []string{"the request's object is not a pod: " + err.Error()}}
	}
	d, err := decide(&pod, opts)
	if err != nil {
		return podDecision{pod: &pod}, err
	}
	patch, err := marshalPatch(d.ops)
	if err != nil {
		return podDecision{pod: &pod}, err
	}
	return podDecision{pod: &pod, patch: patch, action: d.action, reason: d.reason}, nil
}

// podAttr names pod in a log line: by name, or by generateName before the
// API server has given it one.
func podAttr(pod *corev1.Pod) slog.Attr {
	switch {
	case pod == nil:
		return slog.String("pod", "")
	case pod.Name == "" && pod.GenerateName != "":
		return slog.String("generateName", pod.GenerateName)
	}
	return slog.String("pod", pod.Name)
}

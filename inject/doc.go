// Package inject is the Kubernetes side of eventsidecar: the mutating
// admission webhook that adds the sidecar to pods annotated
// eventsidecar.io/inject: "true" (contract §8), and the server that serves it
// over TLS with a reloaded or self-provisioned certificate.
//
// NewHandler is the webhook: AdmissionReview v1 in, AdmissionReview v1 out.
// PodPatch is its decision for one pod as an RFC 6902 JSON patch made only of
// "add" operations, so fields of the pod this package's API types do not know
// survive the patch. The sidecar becomes the pod's first init container with
// restartPolicy Always (a native sidecar), hardened to pass Pod Security
// "restricted"; every app container gets the sidecar's addresses in its
// environment. Injection is idempotent and has no side effects.
package inject

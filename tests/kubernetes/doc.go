// Package kubernetes holds the end-to-end tests of the Kubernetes side of
// eventsidecar (contract §8): the real `eventsidecar inject` binary serving
// the mutating admission webhook to a real kube-apiserver, backed by a real
// etcd, with a real kube-controller-manager, so Deployments and Jobs create
// their pods (with generateName) the way they do in a cluster. No node, no
// scheduler and no kubelet run: pods stay Pending, and the tests check what
// the API server persists.
//
// The control plane is built from the Go module proxy by the nested module
// controlplane (k8s.io/kubernetes and go.etcd.io/etcd/server/v3, pinned in
// its go.mod), into a cache outside the tree:
// $EVENTSIDECAR_CONTROLPLANE_CACHE when set, else
// <os.UserCacheDir>/eventsidecar/controlplane-<hash of the module files>.
// The first build takes about ten minutes on two cores and happens in
// TestMain, outside the test timeout; the go command still kills a test
// binary that runs longer than -timeout plus a minute, so give the first run
// a larger timeout:
//
//	go test -race -timeout 40m -run . ./tests/kubernetes/ -v
//
// Every process the tests start (etcd, kube-apiserver,
// kube-controller-manager, the injectors) listens on 127.0.0.1 only, logs to
// a file whose tail is printed when a test fails, and is killed when the
// tests end, also when they fail.
package kubernetes

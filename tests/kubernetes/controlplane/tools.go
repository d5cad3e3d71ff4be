//go:build tools

// Package controlplane pins the Kubernetes control plane (etcd,
// kube-apiserver, kube-controller-manager and kubectl) that the tests in
// tests/kubernetes build and run. It is a module of its own, so the
// eventsidecar module does not depend on k8s.io/kubernetes.
package controlplane

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)

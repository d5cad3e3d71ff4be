// Package daprapi is the Dapr API of the sidecar (contract §9), a dialect
// of its publish side: Dapr's HTTP publish, bulk publish, health and
// metadata endpoints and the gRPC dapr.proto.runtime.v1.Dapr publish
// methods, with Dapr's error JSON and status codes. It turns each publish
// into events by package dapr's rules and stores them through the
// sidecar's own publish path (a Storer, which ingress.Server is), so that
// validation, scopes, limits and idempotency are those of every publish.
// The server of package server mounts it; it imports neither that
// package nor egress.
package daprapi

// Package server is the sidecar's listeners' servers: the HTTP router with
// /healthz, /readyz and /metrics, the 431 answer to oversized headers, the
// API token on /v1, on the Dapr API and on gRPC, and the 404 and 405
// problem answers; the gRPC server with its health service, reflection,
// limits and the services registered next to EventSidecar; the
// health-only listener; and the graceful shutdown every listener shares.
// It mounts what the publish side (ingress and its Dapr dialect, daprapi)
// and the delivery side (egress) serve through small interfaces of its
// own, so that none of them knows the others or the server. Errors answer through package problem.
package server

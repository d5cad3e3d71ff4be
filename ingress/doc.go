// Package ingress is the sidecar's publish path, over HTTP and gRPC: it
// decodes and validates CloudEvents in every mode of the CloudEvents HTTP
// binding (binary, structured, batch), raw bodies and the CloudEvents
// protobuf format, applies scopes, limits and idempotency, hands the
// events to a Publisher, and answers only once the broker has stored
// them. It serves the publish route and EventSidecar's Publish and
// PublishBatch; package server mounts them beside health, metrics, the
// API token and the delivery side's handlers, so ingress knows neither
// the server nor egress. Errors answer through package problem.
package ingress

// Package ingress is the sidecar's publish path, over HTTP and gRPC: it
// reads request bodies within their limits, has package wire decode and
// validate the CloudEvents in them (every mode of the CloudEvents HTTP
// binding, raw bodies and the CloudEvents protobuf format), applies
// scopes and idempotency, hands the events to a Publisher, and answers
// only once the broker has stored them. It serves the publish route and EventSidecar's Publish and
// PublishBatch; package server mounts them beside health, metrics, the
// API token and the delivery side's handlers, so ingress knows neither
// the server nor egress. Errors answer through package problem.
package ingress

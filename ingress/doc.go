// Package ingress is the sidecar's publish path, over HTTP and gRPC: it
// decodes and validates CloudEvents in every mode of the CloudEvents HTTP
// binding (binary, structured, batch), raw bodies and the CloudEvents
// protobuf format, applies tokens, scopes, limits and idempotency, hands
// the events to a Publisher, and answers only once the broker has stored
// them. Its server also serves health, readiness and metrics, and mounts
// what the delivery side serves through the API (the admin routes, the
// gRPC Subscribe stream) through one-method interfaces of its own, so it
// does not depend on egress. Errors answer through package problem.
package ingress

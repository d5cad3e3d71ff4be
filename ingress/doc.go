// Package ingress is the sidecar's HTTP API: it decodes and validates
// CloudEvents in every mode of the CloudEvents HTTP binding (binary,
// structured, batch) and raw bodies, applies tokens, scopes, limits and
// idempotency, hands the events to a Publisher, and answers only once the
// broker has stored them. It also serves health, readiness and metrics.
package ingress

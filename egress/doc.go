// Package egress delivers subscribed events to the app: one durable
// JetStream pull consumer per subscription, webhook attempts whose answers
// decide (delivered, retry after a delay, dead-letter), retries as the
// broker's redeliveries, dead letters that can be listed and replayed,
// duplicate suppression, and optional per-key ordering.
package egress

// Package egress delivers subscribed events to the app: one durable
// JetStream pull consumer per subscription, webhook attempts whose answers
// decide (delivered, retry after a delay, dead-letter), the Dapr delivery
// dialect (a Dapr app's subscriptions, asked for and declared, routed by
// their rules and delivered in Dapr's envelope, its answers read by Dapr's
// contract), retries as the broker's redeliveries, dead letters that can be listed and replayed,
// duplicate suppression, and optional per-key ordering. It also serves
// what the app and operators ask of delivery: the admin API of
// subscriptions and dead letters (Admin) and the gRPC Subscribe stream
// (Subscriber), which the API server mounts; errors answer through
// package problem.
package egress

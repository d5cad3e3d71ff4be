// Package bench measures the sidecar's publish and delivery paths against
// what the parts underneath them can do, on the machine it runs on.
//
// The publish path:
//
//   - the baseline: nats.go JetStream async publishing, with a bounded window
//     of outstanding acknowledgements, of the very messages the sidecar
//     stores (broker.Encode of the same CloudEvent), to the same embedded
//     server that broker.Open starts;
//   - the sidecar's HTTP ingress, served in-process on a real 127.0.0.1 TCP
//     listener, with single binary-mode events and with batches;
//   - the sidecar's gRPC API, served the same way, with unary Publish calls
//     of single events and PublishBatch calls, all over one client
//     connection, each set against its HTTP counterpart;
//   - a trivial net/http handler driven by the same load generator with the
//     same requests, the ceiling for any HTTP sidecar.
//
// The delivery path, to an app that takes each delivery at once and checks
// that no event comes twice (a webhook on 127.0.0.1 that answers 200, or a
// gRPC Subscribe stream client that acks):
//
//   - delivery throughput at max_in_flight 1, 16 and 64: a backlog stored
//     through broker.Client.Publish, then delivered by an egress.Manager
//     and counted at the webhook;
//   - the same at max_in_flight 64 over a gRPC Subscribe stream instead of
//     a webhook, to an app that acks each delivery as it comes, set
//     against the webhook's;
//   - end-to-end latency: single events published over HTTP to the ingress
//     at a fixed rate by an open-loop generator, delivered at
//     max_in_flight 64, timed from the request's start to the webhook.
//
// The tracing comparison, when asked for: HTTP single events at
// concurrency 64, batches of 100, and delivery at max_in_flight 64, each
// with no tracing (OpenTelemetry's no-op defaults), with tracing off (an
// SDK provider that never samples) and with tracing on (every span sampled
// and exported through a batch span processor to an exporter that discards
// it), in interleaved rounds; it reports each mode's median events/s and
// its overhead against no tracing.
//
// Every scenario runs on fresh servers (those that store, on a new embedded
// broker in a temporary directory that is removed afterwards); every event
// has the same shape and size (a CloudEvent with 100 bytes of JSON data and
// a unique id). Load generator, sidecar, broker and webhook share the
// process and the machine, as a sidecar and its app share a pod. Runs are
// bounded in time (a warm-up that is not measured, then a measured
// duration, which a load generator that has measured nothing by its end,
// or a delivery scenario that has counted no delivery, runs past until it
// has) and only ever target 127.0.0.1. Run executes the suite (or one
// path's part of it); Report prints it as Markdown and as a short JSON
// summary.
//
// Its parts that do not depend on sharing the process are exported for
// the separate-process mode, internal/bench/apart: the load generators
// (Load, closed loop; OpenLoop, open loop at a fixed rate; Async,
// nats.go's async publishing) and their Result, the requests and calls
// they make (BinaryRequest, BatchOf, PublishOf over HTTPOp and GRPCOp),
// storing a backlog (Store), the trivial handler, histogram snapshots
// and the median and percentile they are summarized with.
package bench

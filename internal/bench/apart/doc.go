// Package apart is the benchmark's separate-process mode: it measures the
// sidecar as users run it, every part its own OS process on this machine,
// and reports events/s, latency and the CPU time per event of each
// process, nats-server's included, so that a figure holds on a shared
// machine.
//
// The processes, all on 127.0.0.1 and fresh for each row:
//
//   - nats-server with JetStream on a random port, storing in a temporary
//     directory: this binary in a child role running nats-server's server
//     package, as the nats-server binary does;
//   - the sidecar: the eventsidecar binary (built at the start unless
//     given), run with `run --config` against that broker (for the idle
//     row, its embedded one), waited for on GET /readyz;
//   - the webhook: a child role that answers 200, counting the distinct
//     events delivered and, end to end, the latency from the time the load
//     generator stamped in the event's data;
//   - the load generator: a child role driving the sidecar over HTTP or
//     gRPC, or nats-server directly with nats.go, with internal/bench's
//     load generators, and answering with its bench.Result;
//   - in the baselines, the trivial HTTP handler and the direct nats.go
//     pull consumer, child roles in the sidecar's place.
//
// The rows, with 256-byte events: direct nats.go sync publishing at
// c=64 and async publishing with a window of 1024, both with
// Nats-Msg-Id, and both again sending the message the sidecar stores for
// the event (its ce- headers and fingerprint; the references set the
// sidecar's publishes against these); the trivial handler at c=64 (the HTTP ceiling); HTTP
// binary-mode publish at c=64, set against it; HTTP batches of 100 at
// c=4, against direct async publishing; gRPC Publish at c=64, against
// HTTP; the direct consumer delivering a stored backlog to the webhook
// with 64 workers (the delivery ceiling) and with 1; the sidecar
// delivering such a backlog at max_in_flight 64 and 1, against them; end to end at a fixed
// rate, open loop, at max_in_flight 64; the idle sidecar's RSS with its
// embedded broker; and its RSS at the start and the end of a full-rate
// HTTP publish run.
//
// Each row runs a warm-up, then the measured time, in Options.Rounds
// interleaved rounds whose medians are reported (the two RSS rows run
// once, after them). The parent reads each process's CPU time from
// /proc/PID/stat and the sidecar's VmRSS from /proc/PID/status at the
// start and at the end of the measured time. Every process is stopped at
// the end of its row, also on an error or when ctx ends, and killed if it
// does not exit in time; children die with the parent (Linux only, as is
// the mode).
//
// The child roles run from the same binary: its main (or TestMain) must
// call RunChild when IsChild, before anything else.
package apart

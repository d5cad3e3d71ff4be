// Package bench measures the sidecar's publish path against what the parts
// underneath it can do, on the machine it runs on:
//
//   - the baseline: nats.go JetStream async publishing, with a bounded window
//     of outstanding acknowledgements, of the very messages the sidecar
//     stores (broker.Encode of the same CloudEvent), to the same embedded
//     server that broker.Open starts;
//   - the sidecar's HTTP ingress, served in-process on a real 127.0.0.1 TCP
//     listener, with single binary-mode events and with batches;
//   - a trivial net/http handler driven by the same load generator with the
//     same requests, the ceiling for any HTTP sidecar.
//
// Every scenario runs on fresh servers (those that store, on a new embedded
// broker in a temporary directory that is removed afterwards); every event
// has the same shape and size (a CloudEvent with 100 bytes of JSON data and
// a unique id). Load generator, sidecar and broker share the process and
// the machine, as a sidecar and its app share a pod. Runs are bounded in
// time (a warm-up that is not measured, then a measured duration) and only
// ever target 127.0.0.1. Run executes the whole suite; Report prints it as
// Markdown and as a short JSON summary.
package bench

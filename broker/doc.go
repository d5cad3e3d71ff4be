// Package broker connects the sidecar to NATS JetStream: it starts the
// embedded server or dials an external one, keeps the events stream in
// place, publishes events pipelined with a bound on the acknowledgements
// outstanding, and builds the NATS message of a Message (Encode): the
// event as package wire writes it in the CloudEvents NATS binding, with
// the idempotency key, fingerprint and trace context headers.
//
// A Client is the one handle to all of it; Open it once per process, share
// it between goroutines and Close it last.
package broker

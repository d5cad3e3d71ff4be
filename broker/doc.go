// Package broker connects the sidecar to NATS JetStream: it starts the
// embedded server or dials an external one, keeps the events stream in
// place, publishes events pipelined with a bound on the acknowledgements
// outstanding, and maps CloudEvents to and from NATS messages in the
// CloudEvents NATS protocol binding, binary content mode (Encode, Decode).
//
// A Client is the one handle to all of it; Open it once per process, share
// it between goroutines and Close it last.
package broker

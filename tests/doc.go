// Package tests holds the end-to-end tests: they build the real eventsidecar
// binary, run it as a process against real NATS JetStream servers, and talk
// to it over HTTP the way an app would.
package tests

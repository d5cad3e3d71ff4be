//go:build race

package kubernetes_test

// raceEnabled builds the eventsidecar binary with -race when the tests run with it.
const raceEnabled = true

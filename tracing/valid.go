package tracing

// Valid reports whether traceparent is a W3C traceparent this package
// can continue: a known layout, hex ids, neither id all zeros.
func Valid(traceparent string) bool {
	_, ok := parse(traceparent)
	return ok
}

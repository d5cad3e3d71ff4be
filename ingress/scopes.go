package ingress

import "github.com/eventsidecar/eventsidecar/config"

// allowed reports whether topic matches one of patterns (NATS wildcards:
// "*" matches one token, ">" one or more trailing tokens). No patterns
// allow every topic.
func allowed(patterns []string, topic string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if config.MatchPattern(p, topic) {
			return true
		}
	}
	return false
}

package config

import (
	"errors"
	"fmt"
	"strings"
)

// maxTopicBytes bounds a topic (contract §3).
const maxTopicBytes = 255

// ValidTopic returns nil when topic is a concrete topic (contract §3): one or
// more dot-separated tokens of A-Z, a-z, 0-9, "_" and "-", 1 to 255 bytes, no
// wildcard. Otherwise the error's text is a reason meant to follow the topic,
// as in `invalid topic "a..b": token 2 is empty`. Topics starting with "_",
// which are the sidecar's own, are valid here. Safe for concurrent use.
func ValidTopic(topic string) error {
	if i := strings.IndexAny(topic, "*>"); i >= 0 {
		return fmt.Errorf("contains %q: wildcards cannot be published to", topic[i:i+1])
	}
	return checkTokens(topic, false)
}

// ValidPattern returns nil when pattern is a valid subscription or scope
// pattern: a topic whose tokens may also be the NATS wildcards "*" (one
// token) and ">" (one or more tokens, last token only). Errors are reasons as
// for ValidTopic. Safe for concurrent use.
func ValidPattern(pattern string) error {
	return checkTokens(pattern, true)
}

// MatchPattern reports whether the topic matches pattern with NATS wildcard
// semantics; both are assumed valid (see ValidTopic and ValidPattern). Safe
// for concurrent use.
func MatchPattern(pattern, topic string) bool {
	pt, tt := strings.Split(pattern, "."), strings.Split(topic, ".")
	for i, p := range pt {
		if p == ">" {
			return len(tt) > i
		}
		if i >= len(tt) || (p != "*" && p != tt[i]) {
			return false
		}
	}
	return len(pt) == len(tt)
}

func checkTokens(s string, wildcards bool) error {
	if s == "" {
		return errors.New("is empty")
	}
	if len(s) > maxTopicBytes {
		return fmt.Errorf("is %d bytes long, more than %d", len(s), maxTopicBytes)
	}
	tokens := strings.Split(s, ".")
	for i, tok := range tokens {
		switch {
		case tok == "":
			return fmt.Errorf("token %d is empty", i+1)
		case wildcards && tok == ">" && i < len(tokens)-1:
			return fmt.Errorf(`token %d is ">", which is allowed only as the last token`, i+1)
		case wildcards && (tok == "*" || tok == ">"):
			continue
		}
		for _, r := range tok {
			if !isTokenRune(r) {
				return fmt.Errorf(`token %d (%q) contains %q; allowed are A-Z, a-z, 0-9, "_" and "-"%s`, i+1, tok, string(r), wildcardHint(r, wildcards))
			}
		}
	}
	return nil
}

func isTokenRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}

func wildcardHint(r rune, wildcards bool) string {
	if wildcards && (r == '*' || r == '>') {
		return `, and "*" or ">" only as a whole token`
	}
	return ""
}

// DeadLetter returns the topic receiving the subscription's dead letters:
// DeadLetterTopic, or "deadletter.<name>" when it is empty. Safe for
// concurrent use.
func (s Subscription) DeadLetter() string {
	if s.DeadLetterTopic != "" {
		return s.DeadLetterTopic
	}
	return "deadletter." + s.Name
}

// DefaultSource returns the source of events the app publishes without one:
// "/eventsidecar/<app_id>". Safe for concurrent use.
func (c Config) DefaultSource() string {
	return "/eventsidecar/" + c.AppID
}

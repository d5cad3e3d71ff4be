package egress

import (
	"strings"
	"time"
	"unicode"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/internal/clip"
)

// dlqPrefix starts the name of every dead-letter extension; Original
// removes them all.
const dlqPrefix = "dlq"

// The extensions of a dead letter (contract §5).
const (
	// ExtDLQReason ("dlqreason") says why the event was dead-lettered, in
	// words.
	ExtDLQReason = dlqPrefix + "reason"
	// ExtDLQStatus ("dlqstatus") is the app's last HTTP status, an Integer
	// (0 if none).
	ExtDLQStatus = dlqPrefix + "status"
	// ExtDLQBody ("dlqbody") is the start of the app's last answer, at most
	// 1 KiB.
	ExtDLQBody = dlqPrefix + "body"
	// ExtDLQAttempts ("dlqattempts") is the number of attempts made, an
	// Integer.
	ExtDLQAttempts = dlqPrefix + "attempts"
	// ExtDLQSubscription ("dlqsubscription") names the subscription that
	// dead-lettered it.
	ExtDLQSubscription = dlqPrefix + "subscription"
	// ExtDLQTime ("dlqtime") is when it was dead-lettered, RFC 3339 in UTC.
	ExtDLQTime = dlqPrefix + "time"
)

// DeadLetterEvent returns the dead letter of ev after its last attempt's
// Outcome o: a copy of ev (same id, source, type, data and every other
// attribute) with the extensions dlqreason (o.Reason), dlqstatus (o.Status,
// an Integer, 0 when there was no answer), dlqbody (o.Body, at most 1 KiB),
// dlqattempts (attempts, an Integer), dlqsubscription (subscription) and
// dlqtime (now in UTC, an RFC 3339 string). Control characters in these
// strings, which CloudEvents String values must not hold, become spaces. Earlier dlq* extensions (an event dead-lettered again after a
// replay) are replaced. ev is not modified. Safe for concurrent use.
func DeadLetterEvent(ev *event.Event, o Outcome, attempts int, subscription string, now time.Time) *event.Event {
	dl := ev.Clone()
	set := func(name string, value any) {
		// The names are valid and the values CloudEvents types, so
		// SetExtension cannot fail.
		_ = dl.Context.SetExtension(name, value)
	}
	set(ExtDLQReason, ceString(o.Reason))
	set(ExtDLQStatus, clampInt32(o.Status))
	set(ExtDLQBody, clip.UTF8(ceString(o.Body), answerBodyMax))
	set(ExtDLQAttempts, clampInt32(attempts))
	set(ExtDLQSubscription, ceString(subscription))
	set(ExtDLQTime, now.UTC().Format(time.RFC3339Nano))
	return &dl
}

// ceString makes s a valid CloudEvents String: control characters become
// spaces (invalid UTF-8 becomes U+FFFD).
func ceString(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// clampInt32 keeps n within a CloudEvents Integer.
func clampInt32(n int) int32 {
	return int32(min(max(n, -1<<31), 1<<31-1))
}

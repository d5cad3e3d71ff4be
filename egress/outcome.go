package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/eventsidecar/eventsidecar/config"
)

// reasonCancelled is the Reason of an attempt whose context ended.
const reasonCancelled = "cancelled"

// Decide maps the answer to delivery attempt number attempt (1 for the
// first) to its Outcome, following the table of contract §5:
//
//   - 2xx: Delivered (CauseAnswer).
//   - 408, 429, 503: Retry after the Retry-After header (seconds or
//     HTTP-date, read against the current time) capped at r.MaxBackoff, or
//     after Backoff when there is none (429 and 503: CauseUnavailable; 408:
//     CauseFailure).
//   - 3xx (redirects are never followed) and other 5xx: Retry after
//     Backoff (CauseFailure).
//   - an error: Retry after Backoff; CauseFailure for a timeout or a
//     request that could not be made, CauseUnreachable when the connection
//     failed (refused, reset, DNS, closed without an answer).
//   - other 4xx: Dead at once (CauseAnswer).
//
// The table's last row, attempts reaching max_attempts, is not applied
// here but by the attempt limit (limitStep), to the attempts that count:
// those made while the app is down do not (see circuit).
//
// err, when not nil, is why no answer came; status and header are then
// ignored. An err matching context.Canceled means the caller gave up
// (shutdown): a Retry with Delay 0, Reason "cancelled" and CauseCancelled,
// so the event goes back to the broker untouched. rnd returns numbers in
// [0, 1) for the jitter; nil uses math/rand/v2. The Outcome has no Body or
// Took: the caller fills them in. Safe for concurrent use when rnd is.
func Decide(status int, header http.Header, err error, attempt int, r config.Retry, rnd func() float64) Outcome {
	reason := statusReason(status)
	switch {
	case errors.Is(err, context.Canceled):
		return Outcome{Kind: Retry, Cause: CauseCancelled, Reason: reasonCancelled}
	case err != nil:
		return Outcome{Kind: Retry, Cause: noAnswerCause(err), Delay: Backoff(attempt, r, rnd), Reason: describeError(err)}
	case status >= 200 && status <= 299:
		return Outcome{Kind: Delivered, Status: status, Reason: reason}
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		delay, ok := RetryAfter(header.Get("Retry-After"), time.Now())
		if !ok {
			delay = Backoff(attempt, r, rnd)
		} else if r.MaxBackoff > 0 && delay > r.MaxBackoff {
			delay = r.MaxBackoff
		}
		cause := CauseUnavailable
		if status == http.StatusRequestTimeout {
			cause = CauseFailure
		}
		return Outcome{Kind: Retry, Cause: cause, Status: status, Delay: delay, Reason: reason}
	case status >= 300 && status <= 399:
		reason += " (redirects are not followed)"
	case status >= 400 && status <= 499:
		return Outcome{Kind: Dead, Status: status, Reason: reason}
	}
	return Outcome{Kind: Retry, Cause: CauseFailure, Status: status, Delay: Backoff(attempt, r, rnd), Reason: reason}
}

// statusReasons are the Reasons of the answers with a status from 100 to
// 599, made once.
var statusReasons = func() (r [500]string) {
	for i := range r {
		r[i] = "HTTP " + strconv.Itoa(100+i)
	}
	return r
}()

// statusReason is the Reason of an answer with status: "HTTP <status>".
func statusReason(status int) string {
	if status >= 100 && status < 600 {
		return statusReasons[status-100]
	}
	return "HTTP " + strconv.Itoa(status)
}

// Backoff is the delay before the attempt after attempt number attempt (1
// for the first), exponential with full jitter:
// rnd() * min(r.MaxBackoff, r.InitialBackoff * r.Multiplier^(attempt-1)).
// rnd must return numbers in [0, 1); nil uses math/rand/v2. An attempt
// below 1 counts as 1; a MaxBackoff of 0 or less means no cap. Safe for
// concurrent use when rnd is.
func Backoff(attempt int, r config.Retry, rnd func() float64) time.Duration {
	if rnd == nil {
		rnd = rand.Float64
	}
	return time.Duration(rnd() * float64(backoffCeiling(attempt, r)))
}

// backoffCeiling is min(r.MaxBackoff, r.InitialBackoff *
// r.Multiplier^(attempt-1)), at least 0; an attempt below 1 counts as 1
// and a MaxBackoff of 0 or less means no cap.
func backoffCeiling(attempt int, r config.Retry) time.Duration {
	limit := time.Duration(math.MaxInt64)
	if r.MaxBackoff > 0 {
		limit = r.MaxBackoff
	}
	ceiling := float64(r.InitialBackoff) * math.Pow(r.Multiplier, float64(max(attempt, 1)-1))
	switch {
	case !(ceiling < float64(limit)): // also catches +Inf and NaN
		return limit
	case ceiling <= 0:
		return 0
	}
	return time.Duration(ceiling)
}

// maxRetryAfterSeconds keeps a Retry-After in seconds within a Duration.
const maxRetryAfterSeconds = math.MaxInt64 / int64(time.Second)

// RetryAfter parses a Retry-After header value: a number of seconds or an
// HTTP-date (RFC 9110 §10.2.3), the latter relative to now. A negative
// number of seconds or a date in the past gives 0; a huge number is capped
// to the largest Duration. It reports false for an empty or unparsable
// value. Safe for concurrent use.
func RetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case n <= 0:
			return 0, true
		case n > maxRetryAfterSeconds:
			return math.MaxInt64, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// timeoutError is the error of an attempt that ran out of its timeout.
type timeoutError struct {
	after time.Duration
	err   error
}

func (e *timeoutError) Error() string { return fmt.Sprintf("timeout after %s", e.after) }
func (e *timeoutError) Unwrap() error { return e.err }

// noAnswerCause tells an attempt that failed without an answer because
// the connection failed (CauseUnreachable) from one that timed out or
// could not be made (CauseFailure).
func noAnswerCause(err error) Cause {
	var (
		te    *timeoutError
		ne    net.Error
		dns   *net.DNSError
		opErr *net.OpError
	)
	switch {
	case errors.As(err, &te), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return CauseFailure
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &dns), errors.As(err, &opErr):
		return CauseUnreachable
	}
	return CauseFailure
}

// describeError says in words why an attempt got no answer. It drops the
// *url.Error wrapper, whose text holds the whole endpoint URL (userinfo
// and query included).
func describeError(err error) string {
	var te *timeoutError
	if errors.As(err, &te) {
		return te.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var (
		ne    net.Error
		dns   *net.DNSError
		opErr *net.OpError
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed without an answer"
	case errors.As(err, &dns):
		return fmt.Sprintf("DNS lookup of %s failed: %s", dns.Name, dns.Err)
	case errors.As(err, &opErr) && opErr.Err != nil:
		return "connection error: " + opErr.Err.Error()
	}
	return "request failed: " + err.Error()
}

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
//   - 2xx: Delivered.
//   - 408, 429, 503: Retry after the Retry-After header (seconds or
//     HTTP-date, read against the current time) capped at r.MaxBackoff, or
//     after Backoff when there is none.
//   - 3xx (redirects are never followed), other 5xx, and an error
//     (connection error, timeout): Retry after Backoff.
//   - other 4xx: Dead at once.
//   - a Retry when attempt >= r.MaxAttempts becomes Dead with the reason
//     "gave up after N attempts: <reason>".
//
// err, when not nil, is why no answer came; status and header are then
// ignored. An err matching context.Canceled means the caller gave up
// (shutdown): a Retry with Delay 0 and Reason "cancelled", even at the
// last attempt, so the event goes back to the broker untouched. rnd
// returns numbers in [0, 1) for the jitter; nil uses math/rand/v2. The
// Outcome has no Body or Took: the caller fills them in. Safe for
// concurrent use when rnd is.
func Decide(status int, header http.Header, err error, attempt int, r config.Retry, rnd func() float64) Outcome {
	if errors.Is(err, context.Canceled) {
		return Outcome{Kind: Retry, Reason: reasonCancelled}
	}
	return limitAttempts(decideAnswer(status, header, err, attempt, r, rnd), attempt, r)
}

// limitAttempts turns a Retry at the last attempt into Dead with the reason
// "gave up after N attempts: <reason>".
func limitAttempts(o Outcome, attempt int, r config.Retry) Outcome {
	if o.Kind == Retry && attempt >= r.MaxAttempts {
		return Outcome{
			Kind:   Dead,
			Status: o.Status,
			Reason: fmt.Sprintf("gave up after %d attempts: %s", attempt, o.Reason),
		}
	}
	return o
}

// decideAnswer is Decide without the attempt limit.
func decideAnswer(status int, header http.Header, err error, attempt int, r config.Retry, rnd func() float64) Outcome {
	reason := fmt.Sprintf("HTTP %d", status)
	switch {
	case err != nil:
		return Outcome{Kind: Retry, Delay: Backoff(attempt, r, rnd), Reason: describeError(err)}
	case status >= 200 && status <= 299:
		return Outcome{Kind: Delivered, Status: status, Reason: reason}
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status == http.StatusServiceUnavailable:
		delay, ok := RetryAfter(header.Get("Retry-After"), time.Now())
		if !ok {
			delay = Backoff(attempt, r, rnd)
		} else if r.MaxBackoff > 0 && delay > r.MaxBackoff {
			delay = r.MaxBackoff
		}
		return Outcome{Kind: Retry, Status: status, Delay: delay, Reason: reason}
	case status >= 300 && status <= 399:
		reason += " (redirects are not followed)"
	case status >= 400 && status <= 499:
		return Outcome{Kind: Dead, Status: status, Reason: reason}
	}
	return Outcome{Kind: Retry, Status: status, Delay: Backoff(attempt, r, rnd), Reason: reason}
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
	attempt = max(attempt, 1)
	ceiling := float64(r.InitialBackoff) * math.Pow(r.Multiplier, float64(attempt-1))
	limit := float64(math.MaxInt64)
	if r.MaxBackoff > 0 {
		limit = float64(r.MaxBackoff)
	}
	if !(ceiling < limit) { // also catches +Inf and NaN
		ceiling = limit
	}
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rnd() * ceiling)
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

package egress

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/config"
)

// testRetry is the retry policy of the tests: backoff ceilings 100ms,
// 200ms, 400ms, ... capped at 2s.
var testRetry = config.Retry{
	MaxAttempts:    3,
	InitialBackoff: 100 * time.Millisecond,
	MaxBackoff:     2 * time.Second,
	Multiplier:     2,
}

func half() float64 { return 0.5 }

func TestDecide(t *testing.T) {
	refused := &url.Error{Op: "Post", URL: "http://user:hunter2@127.0.0.1:9/x?token=abc",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	inAMinute := time.Now().Add(61 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name       string
		status     int
		retryAfter string
		err        error
		attempt    int
		want       Outcome
	}{
		{name: "200", status: 200, attempt: 1, want: Outcome{Kind: Delivered, Status: 200, Reason: "HTTP 200"}},
		{name: "204", status: 204, attempt: 1, want: Outcome{Kind: Delivered, Status: 204, Reason: "HTTP 204"}},
		{name: "204 at the last attempt", status: 204, attempt: 3, want: Outcome{Kind: Delivered, Status: 204, Reason: "HTTP 204"}},
		{name: "301 not followed", status: 301, attempt: 1, want: Outcome{Kind: Retry, Cause: CauseFailure, Status: 301, Delay: 50 * time.Millisecond, Reason: "HTTP 301 (redirects are not followed)"}},
		{name: "400", status: 400, attempt: 1, want: Outcome{Kind: Dead, Status: 400, Reason: "HTTP 400"}},
		{name: "404", status: 404, attempt: 1, want: Outcome{Kind: Dead, Status: 404, Reason: "HTTP 404"}},
		{name: "410", status: 410, attempt: 2, want: Outcome{Kind: Dead, Status: 410, Reason: "HTTP 410"}},
		{name: "415", status: 415, attempt: 1, want: Outcome{Kind: Dead, Status: 415, Reason: "HTTP 415"}},
		{name: "404 at the last attempt", status: 404, attempt: 3, want: Outcome{Kind: Dead, Status: 404, Reason: "HTTP 404"}},
		{name: "408 without Retry-After", status: 408, attempt: 2, want: Outcome{Kind: Retry, Cause: CauseFailure, Status: 408, Delay: 100 * time.Millisecond, Reason: "HTTP 408"}},
		{name: "429 Retry-After seconds", status: 429, retryAfter: "1", attempt: 1, want: Outcome{Kind: Retry, Cause: CauseUnavailable, Status: 429, Delay: time.Second, Reason: "HTTP 429"}},
		{name: "429 Retry-After 0", status: 429, retryAfter: "0", attempt: 1, want: Outcome{Kind: Retry, Cause: CauseUnavailable, Status: 429, Reason: "HTTP 429"}},
		{name: "429 Retry-After garbage", status: 429, retryAfter: "soon", attempt: 1, want: Outcome{Kind: Retry, Cause: CauseUnavailable, Status: 429, Delay: 50 * time.Millisecond, Reason: "HTTP 429"}},
		{name: "503 Retry-After beyond max_backoff", status: 503, retryAfter: "3600", attempt: 1, want: Outcome{Kind: Retry, Cause: CauseUnavailable, Status: 503, Delay: 2 * time.Second, Reason: "HTTP 503"}},
		{name: "503 Retry-After HTTP-date beyond max_backoff", status: 503, retryAfter: inAMinute, attempt: 1, want: Outcome{Kind: Retry, Cause: CauseUnavailable, Status: 503, Delay: 2 * time.Second, Reason: "HTTP 503"}},
		{name: "500", status: 500, attempt: 1, want: Outcome{Kind: Retry, Cause: CauseFailure, Status: 500, Delay: 50 * time.Millisecond, Reason: "HTTP 500"}},
		{name: "502", status: 502, attempt: 2, want: Outcome{Kind: Retry, Cause: CauseFailure, Status: 502, Delay: 100 * time.Millisecond, Reason: "HTTP 502"}},
		{name: "500 at the last attempt: the dispatcher gives up", status: 500, attempt: 3, want: Outcome{Kind: Retry, Cause: CauseFailure, Status: 500, Delay: 200 * time.Millisecond, Reason: "HTTP 500"}},
		{name: "connection refused", err: refused, attempt: 1, want: Outcome{Kind: Retry, Cause: CauseUnreachable, Delay: 50 * time.Millisecond, Reason: "connection refused"}},
		{name: "timeout", err: &timeoutError{after: 10 * time.Second, err: context.DeadlineExceeded}, attempt: 1, want: Outcome{Kind: Retry, Cause: CauseFailure, Delay: 50 * time.Millisecond, Reason: "timeout after 10s"}},
		{name: "request not made", err: errors.New("encode: bad"), attempt: 1, want: Outcome{Kind: Retry, Cause: CauseFailure, Delay: 50 * time.Millisecond, Reason: "request failed: encode: bad"}},
		{name: "cancelled", err: context.Canceled, attempt: 1, want: Outcome{Kind: Retry, Cause: CauseCancelled, Reason: "cancelled"}},
		{name: "cancelled at the last attempt", err: context.Canceled, attempt: 3, want: Outcome{Kind: Retry, Cause: CauseCancelled, Reason: "cancelled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.retryAfter != "" {
				h.Set("Retry-After", tt.retryAfter)
			}
			got := Decide(tt.status, h, tt.err, tt.attempt, testRetry, half)
			if got != tt.want {
				t.Errorf("Decide(%d, Retry-After %q, %v, attempt %d) = %+v, want %+v", tt.status, tt.retryAfter, tt.err, tt.attempt, got, tt.want)
			}
		})
	}
}

func TestLimitAttempts(t *testing.T) {
	retry := Outcome{Kind: Retry, Cause: CauseFailure, Status: 500, Delay: time.Second, Reason: "HTTP 500", Body: "oops"}
	tests := []struct {
		name    string
		o       Outcome
		attempt int
		want    Outcome
	}{
		{"retry before the last attempt", retry, 2, retry},
		{"retry at the last attempt", retry, 3,
			Outcome{Kind: Dead, Cause: CauseFailure, Status: 500, Reason: "gave up after 3 attempts: HTTP 500", Body: "oops"}},
		{"retry past the last attempt", retry, 4,
			Outcome{Kind: Dead, Cause: CauseFailure, Status: 500, Reason: "gave up after 4 attempts: HTTP 500", Body: "oops"}},
		{"no answer at the last attempt", Outcome{Kind: Retry, Cause: CauseUnreachable, Reason: "connection refused"}, 3,
			Outcome{Kind: Dead, Cause: CauseUnreachable, Reason: "gave up after 3 attempts: connection refused"}},
		{"delivered at the last attempt", Outcome{Kind: Delivered, Status: 200}, 3, Outcome{Kind: Delivered, Status: 200}},
		{"dead before the last attempt", Outcome{Kind: Dead, Status: 404}, 1, Outcome{Kind: Dead, Status: 404}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := limitAttempts(tt.o, tt.attempt, testRetry); got != tt.want {
				t.Errorf("limitAttempts(%+v, %d) = %+v, want %+v", tt.o, tt.attempt, got, tt.want)
			}
		})
	}
}

func TestNoAnswerCause(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want Cause
	}{
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, CauseUnreachable},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, CauseUnreachable},
		{"closed", io.ErrUnexpectedEOF, CauseUnreachable},
		{"dns", &net.DNSError{Err: "no such host", Name: "app.invalid", IsNotFound: true}, CauseUnreachable},
		{"other op error", &net.OpError{Op: "dial", Err: errors.New("network is unreachable")}, CauseUnreachable},
		{"attempt timeout", &timeoutError{after: time.Second, err: context.DeadlineExceeded}, CauseFailure},
		{"deadline", context.DeadlineExceeded, CauseFailure},
		{"tls", errors.New("tls: handshake failure"), CauseFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := &url.Error{Op: "Post", URL: "http://127.0.0.1:9/", Err: tt.err}
			if got := noAnswerCause(err); got != tt.want {
				t.Errorf("noAnswerCause(%v) = %d, want %d", err, got, tt.want)
			}
		})
	}
}

func TestDecideRetryAfterDate(t *testing.T) {
	r := testRetry
	r.MaxBackoff = time.Minute
	h := http.Header{"Retry-After": {time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)}}
	got := Decide(503, h, nil, 1, r, half)
	// An HTTP-date has whole seconds: the wait is within (29s, 30s].
	if got.Kind != Retry || got.Delay <= 28*time.Second || got.Delay > 30*time.Second {
		t.Errorf("Decide(503, Retry-After in 30s) = %+v, want Retry after about 30s", got)
	}
}

func TestDescribeError(t *testing.T) {
	const secretURL = "http://user:hunter2@app.invalid:8080/events?token=abc"
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, "connection refused"},
		{"reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, "connection reset"},
		{"deadline", context.DeadlineExceeded, "timeout"},
		{"closed", io.ErrUnexpectedEOF, "connection closed without an answer"},
		{"dns", &net.DNSError{Err: "no such host", Name: "app.invalid", IsNotFound: true}, "DNS lookup of app.invalid failed: no such host"},
		{"other op error", &net.OpError{Op: "dial", Err: errors.New("network is unreachable")}, "connection error: network is unreachable"},
		{"url error", &url.Error{Op: "Post", URL: secretURL, Err: errors.New("tls: handshake failure")}, "request failed: tls: handshake failure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err
			if _, ok := err.(*url.Error); !ok {
				err = &url.Error{Op: "Post", URL: secretURL, Err: err}
			}
			if got := describeError(err); got != tt.want {
				t.Errorf("describeError(%v) = %q, want %q", err, got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name    string
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{"first, rnd 0", 1, 0, 0},
		{"first, rnd 0.5", 1, 0.5, 50 * time.Millisecond},
		{"first, rnd 0.999", 1, 0.999, 99900 * time.Microsecond},
		{"second, rnd 0.5", 2, 0.5, 100 * time.Millisecond},
		{"third, rnd 0.999", 3, 0.999, 399600 * time.Microsecond},
		{"fifth, rnd 0.999, ceiling 1.6s", 5, 0.999, 1598400 * time.Microsecond},
		{"sixth, capped at max_backoff", 6, 0.5, time.Second},
		{"capped, rnd 0.999", 30, 0.999, 1998 * time.Millisecond},
		{"capped, rnd 0", 30, 0, 0},
		{"huge attempt", 100000, 0.5, time.Second},
		{"attempt 0 counts as 1", 0, 0.5, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Backoff(tt.attempt, testRetry, func() float64 { return tt.rnd })
			if got != tt.want {
				t.Errorf("Backoff(%d) with rnd %v = %v, want %v", tt.attempt, tt.rnd, got, tt.want)
			}
		})
	}
}

func TestBackoffDefaults(t *testing.T) {
	r := config.DefaultSubscription().Retry
	for attempt := 1; attempt <= 12; attempt++ {
		ceiling := min(r.MaxBackoff, time.Duration(float64(r.InitialBackoff)*math.Pow(r.Multiplier, float64(attempt-1))))
		if got := Backoff(attempt, r, nil); got < 0 || got >= ceiling {
			t.Errorf("Backoff(%d) = %v, want within [0, %v)", attempt, got, ceiling)
		}
	}
	noCap := r
	noCap.MaxBackoff = 0
	if got := Backoff(2000, noCap, func() float64 { return 0.5 }); got <= 0 {
		t.Errorf("Backoff(2000) without a cap = %v, want a positive duration", got)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"seconds", "120", 2 * time.Minute, true},
		{"seconds with spaces", " 5 ", 5 * time.Second, true},
		{"zero", "0", 0, true},
		{"negative", "-3", 0, true},
		{"huge", "99999999999999999999", math.MaxInt64, true},
		{"IMF-fixdate", "Sat, 01 Mar 2025 12:01:30 GMT", 90 * time.Second, true},
		{"RFC 850 date", "Saturday, 01-Mar-25 12:00:10 GMT", 10 * time.Second, true},
		{"asctime date", "Sat Mar  1 12:00:07 2025", 7 * time.Second, true},
		{"past date", "Fri, 28 Feb 2025 12:00:00 GMT", 0, true},
		{"empty", "", 0, false},
		{"garbage", "soon", 0, false},
		{"fraction", "1.5", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := RetryAfter(tt.in, now)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestReasonHidesURL(t *testing.T) {
	err := &url.Error{Op: "Post", URL: "http://user:hunter2@127.0.0.1:9/x?token=abc", Err: errors.New("boom")}
	got := Decide(0, nil, err, 1, testRetry, half).Reason
	if got != "request failed: boom" {
		t.Errorf("reason = %q, want %q", got, "request failed: boom")
	}
	for _, secret := range []string{"hunter2", "token", "abc"} {
		if strings.Contains(got, secret) {
			t.Errorf("reason %q contains %q", got, secret)
		}
	}
}

// TestZeroKindIsNoOutcome: the zero Kind is no outcome, never "delivered",
// and a stream's answer without a kind retries (nothing acked, nothing
// dead-lettered).
func TestZeroKindIsNoOutcome(t *testing.T) {
	var o Outcome
	if o.Kind == Delivered || o.Kind == Retry || o.Kind == Dead {
		t.Fatalf("the zero Outcome's Kind is %v, want none of Delivered, Retry, Dead", o.Kind)
	}
	if got := o.Kind.String(); got != "none" {
		t.Errorf("Kind(0).String() = %q, want none", got)
	}
	st := &Session{s: &subscription{sub: config.DefaultSubscription()}}
	if got := st.outcome(1, Answer{}); got.Kind != Retry {
		t.Errorf("a stream answer without a kind gives %v, want retry", got.Kind)
	}
	if got := st.outcome(1, Answer{Kind: Dead, Reason: "bad"}); got.Kind != Dead || got.Reason != "rejected: bad" {
		t.Errorf("a reject gives %v %q, want dead_letter \"rejected: bad\"", got.Kind, got.Reason)
	}
}

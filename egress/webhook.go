package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/clip"
)

// Limits on reading the app's answer.
const (
	// answerBodyMax bounds Outcome.Body.
	answerBodyMax = 1 << 10
	// answerDrainMax bounds what is read and discarded after Outcome.Body
	// so that the connection can be reused; a longer answer closes it. A
	// Dapr app's answer is judged by its first answerDrainMax bytes, and
	// as many more are drained.
	answerDrainMax = 64 << 10
)

// Webhook makes delivery attempts to one subscription's endpoint (contract
// §5). Safe for concurrent use.
type Webhook struct {
	target     *target // the endpoint
	auth       string  // Authorization from the endpoint's user information, or ""
	structured bool
	timeout    time.Duration
	retry      config.Retry
	signer     *standardwebhooks.Webhook // nil: unsigned
	transport  *http.Transport
}

// NewWebhook checks sub's endpoint (an absolute http or https URL), content
// mode ("binary", "structured", or "" for binary) and signing secret, and
// returns its Webhook. Its attempts follow no redirects, are bounded by
// sub.Timeout (the answer's body included), send the endpoint's user
// information as basic authentication, keep up to sub.MaxInFlight idle
// connections to the endpoint and use no proxy from the environment (only
// the configured endpoint is contacted). Errors never contain the endpoint
// or the secret, which may hold credentials.
func NewWebhook(sub config.Subscription) (*Webhook, error) {
	tmpl, err := http.NewRequest(http.MethodPost, sub.Endpoint, nil)
	if err != nil || (tmpl.URL.Scheme != "http" && tmpl.URL.Scheme != "https") || tmpl.URL.Host == "" {
		return nil, fmt.Errorf("egress: subscription %q: endpoint must be an absolute http or https URL", sub.Name)
	}
	w := &Webhook{
		target: newTarget(tmpl), timeout: sub.Timeout, retry: sub.Retry, transport: baseTransport(sub.MaxInFlight),
	}
	if u := tmpl.URL.User; u != nil {
		password, _ := u.Password()
		tmpl.SetBasicAuth(u.Username(), password)
		w.auth = tmpl.Header.Get("Authorization")
	}
	switch sub.ContentMode {
	case "", "binary":
	case "structured":
		w.structured = true
	default:
		return nil, fmt.Errorf("egress: subscription %q: content_mode %q is not binary or structured", sub.Name, sub.ContentMode)
	}
	if sub.SigningSecret != "" {
		if w.signer, err = newSigner(sub.SigningSecret); err != nil {
			return nil, fmt.Errorf("egress: subscription %q: %w", sub.Name, err)
		}
	}
	return w, nil
}

// baseTransport is the connection pool of a webhook or a Dapr app: up to
// maxIdle idle connections to its endpoint, and no proxy from the environment (only the
// configured endpoint is contacted).
func baseTransport(maxIdle int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConnsPerHost = maxIdle
	return t
}

// CloseIdleConnections closes the connections to the endpoint that are not
// in use; call it when no more attempts will be made.
func (w *Webhook) CloseIdleConnections() { w.transport.CloseIdleConnections() }

// Attempt makes one delivery attempt of d and returns what the answer
// means (Decide: a Retry even at the last attempt, which the caller turns
// into Dead when the attempt counts), with the start of the answer's body
// and how long the attempt took. d.Event must not be nil; Attempt does not
// modify it. When ctx ends before an answer, the Outcome is a Retry with
// Delay 0, Reason "cancelled" and CauseCancelled. Safe for concurrent use.
func (w *Webhook) Attempt(ctx context.Context, d Delivery) Outcome {
	start := time.Now()
	o := w.attempt(ctx, d, start)
	o.Took = time.Since(start)
	return o
}

// attempt makes the attempt in its client span (startAttemptSpan), bounded
// by the timeout until the answer is read. It hands the request to the
// transport itself: an http.Client would copy its header for redirects,
// which are never followed.
func (w *Webhook) attempt(ctx context.Context, d Delivery, now time.Time) Outcome {
	spanCtx, span := startAttemptSpan(ctx, w.target, d.Attempt)
	defer span.End()
	reqCtx, cancel := bound(spanCtx, w.timeout)
	defer cancel()
	req, err := w.newRequest(reqCtx, d, now)
	if err != nil {
		failAttemptSpan(span, err)
		return Decide(0, nil, err, d.Attempt, w.retry, nil)
	}
	resp, err := w.transport.RoundTrip(req)
	if err != nil {
		failAttemptSpan(span, err)
		return Decide(0, nil, noAnswer(ctx, err, w.timeout), d.Attempt, w.retry, nil)
	}
	o := Decide(resp.StatusCode, resp.Header, nil, d.Attempt, w.retry, nil)
	answerAttemptSpan(span, resp, o)
	var readErr error
	o.Body, readErr = readAnswer(resp.Body)
	if readErr != nil {
		failAttemptSpan(span, readErr)
	}
	return o
}

// bound is ctx ending after timeout, unless timeout is 0 or less.
func bound(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, timeout)
}

// noAnswer tells apart the ways a request can get no answer: ctx ended
// (context.Canceled: the caller gave up), the attempt's timeout passed
// (*timeoutError), or err itself.
func noAnswer(ctx context.Context, err error, timeout time.Duration) error {
	if ctx.Err() != nil {
		return context.Canceled
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &timeoutError{after: timeout, err: err}
	}
	return err
}

// answerBuffers hold the start of answers being read.
var answerBuffers = sync.Pool{New: func() any { return new([answerBodyMax]byte) }}

// readAnswer returns the start of an answer's body (clip.UTF8 of its first
// answerBodyMax bytes), then reads and discards up to answerDrainMax more
// bytes so that the connection can be reused, and closes body. The error
// is that of a read that failed before the end of the body: the body only
// informs, so the caller only records it.
func readAnswer(body io.ReadCloser) (string, error) {
	defer body.Close()
	buf := answerBuffers.Get().(*[answerBodyMax]byte)
	defer answerBuffers.Put(buf)
	n, err := fill(body, buf[:])
	if err == nil {
		_, err = io.CopyN(io.Discard, body, answerDrainMax)
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	if n == 0 {
		return "", err
	}
	return clip.UTF8(string(buf[:n]), answerBodyMax), err
}

// fill reads from r until buf is full or a read fails, and returns how
// many bytes it read and the error (io.EOF at the end of r), nil when buf
// is full.
func fill(r io.Reader, buf []byte) (int, error) {
	var (
		n   int
		err error
	)
	for n < len(buf) && err == nil {
		var m int
		m, err = r.Read(buf[n:])
		n += m
	}
	return n, err
}

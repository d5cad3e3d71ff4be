package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/clip"
)

// Limits on reading the app's answer.
const (
	// answerBodyMax bounds Outcome.Body.
	answerBodyMax = 1 << 10
	// answerDrainMax bounds what is read and discarded after Outcome.Body
	// so that the connection can be reused; a longer answer closes it.
	answerDrainMax = 64 << 10
)

// Webhook makes delivery attempts to one subscription's endpoint (contract
// §5). Safe for concurrent use.
type Webhook struct {
	endpoint   string
	structured bool
	timeout    time.Duration
	retry      config.Retry
	signer     *standardwebhooks.Webhook // nil: unsigned
	client     *http.Client
}

// NewWebhook checks sub's endpoint (an absolute http or https URL), content
// mode ("binary", "structured", or "" for binary) and signing secret, and
// returns its Webhook. The Webhook's HTTP client follows no redirects,
// bounds each attempt by sub.Timeout, keeps up to sub.MaxInFlight idle
// connections to the endpoint and uses no proxy from the environment (only
// the configured endpoint is contacted). Errors never contain the endpoint
// or the secret, which may hold credentials.
func NewWebhook(sub config.Subscription) (*Webhook, error) {
	u, err := url.Parse(sub.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("egress: subscription %q: endpoint must be an absolute http or https URL", sub.Name)
	}
	w := &Webhook{endpoint: sub.Endpoint, timeout: sub.Timeout, retry: sub.Retry}
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
	w.client = newClient(sub)
	return w, nil
}

// newClient is the HTTP client of sub's attempts: it follows no
// redirects, bounds each attempt by sub.Timeout, traces each attempt in a
// client span tagged with its number, and keeps up to sub.MaxInFlight idle
// connections (baseTransport).
func newClient(sub config.Subscription) *http.Client {
	return &http.Client{
		Transport: otelhttp.NewTransport(attemptTagger{next: baseTransport(sub.MaxInFlight)}),
		Timeout:   sub.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// baseTransport is the connection pool of a webhook: up to maxIdle idle
// connections to its endpoint, and no proxy from the environment (only the
// configured endpoint is contacted).
func baseTransport(maxIdle int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConnsPerHost = maxIdle
	return t
}

// CloseIdleConnections closes the connections to the endpoint that are not
// in use; call it when no more attempts will be made.
func (w *Webhook) CloseIdleConnections() { w.client.CloseIdleConnections() }

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

func (w *Webhook) attempt(ctx context.Context, d Delivery, now time.Time) Outcome {
	req, err := w.newRequest(ctx, d, now)
	if err != nil {
		return Decide(0, nil, err, d.Attempt, w.retry, nil)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return Decide(0, nil, noAnswer(ctx, err, w.timeout), d.Attempt, w.retry, nil)
	}
	o := Decide(resp.StatusCode, resp.Header, nil, d.Attempt, w.retry, nil)
	tagOutcome(resp, o)
	o.Body = readAnswer(resp.Body)
	return o
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

// readAnswer returns the start of an answer's body (clip.UTF8 of its first
// answerBodyMax bytes), then reads and discards up to answerDrainMax more
// bytes so that the connection can be reused, and closes body. Read
// errors are ignored: the body only informs.
func readAnswer(body io.ReadCloser) string {
	defer body.Close()
	head, _ := io.ReadAll(io.LimitReader(body, answerBodyMax))
	_, _ = io.Copy(io.Discard, io.LimitReader(body, answerDrainMax))
	return clip.UTF8(string(head), answerBodyMax)
}

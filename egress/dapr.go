package egress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.opentelemetry.io/otel"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dapr"
	"github.com/eventsidecar/eventsidecar/internal/clip"
	"github.com/eventsidecar/eventsidecar/wire"
)

// The headers of a Dapr delivery besides the sidecar's own, as Dapr sends
// them over JetStream.
const (
	headerPubSubName = "pubsubname"
	headerTopic      = "topic"
	headerAppID      = "dapr-app-id"
)

// subscribePath is where a Dapr HTTP app lists its subscriptions.
const subscribePath = "/dapr/subscribe"

// maxSubscribeBody bounds the app's answer to GET /dapr/subscribe.
const maxSubscribeBody = 4 << 20

// daprHTTP is a Dapr app called over HTTP (dapr.app_protocol http): GET
// /dapr/subscribe lists its programmatic subscriptions, and each delivery
// is a POST of Dapr's envelope to the event's route (daprPost). Safe for
// concurrent use.
type daprHTTP struct {
	base     string // "http://<app_host>:<app_port>"
	appID    string
	settings config.DaprSubscription
	client   *http.Client // for GET /dapr/subscribe
	log      *slog.Logger
}

// newDaprHTTP is the HTTP app of cfg's dapr block.
func newDaprHTTP(cfg config.Config, log *slog.Logger) *daprHTTP {
	d := cfg.Dapr
	return &daprHTTP{
		base:     "http://" + hostPort(d.AppHost, d.AppPort),
		appID:    cfg.AppID,
		settings: d.Subscription,
		client:   &http.Client{Transport: baseTransport(1), Timeout: d.Subscription.Timeout},
		log:      log,
	}
}

func (a *daprHTTP) endpoint() string { return a.base }

func (a *daprHTTP) close() error {
	a.client.CloseIdleConnections()
	return nil
}

// Subscriptions asks GET /dapr/subscribe, with the dapr-app-id header as
// Dapr sends it: 404 is none; an answer that is not a JSON array, or
// another status, is an error; entries it cannot read are logged and
// left out (see dapr.ParseSubscribe). No answer at all is an error
// wrapping ErrAppNotUp.
func (a *daprHTTP) Subscriptions(ctx context.Context) ([]dapr.Subscription, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+subscribePath, nil)
	if err != nil {
		return nil, fmt.Errorf("egress: GET %s: %w", subscribePath, err)
	}
	req.Header.Set(headerAppID, a.appID)
	req.Header.Set("User-Agent", headerUserAgent)
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %s", ErrAppNotUp, subscribePath, describeError(noAnswer(ctx, err, a.settings.Timeout)))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSubscribeBody))
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, fmt.Errorf("egress: GET %s: HTTP %d: %s", subscribePath, resp.StatusCode, clip.UTF8(string(body), answerBodyMax))
	case err != nil:
		return nil, fmt.Errorf("egress: GET %s: reading the answer: %w", subscribePath, err)
	}
	subs, skipped, err := dapr.ParseSubscribe(body)
	if err != nil {
		return nil, fmt.Errorf("egress: GET %s: %w", subscribePath, err)
	}
	for _, e := range skipped {
		a.log.Warn("a subscription the app listed is not served", "error", e)
	}
	return subs, nil
}

// deliverer is the deliverer of the Dapr subscription ds, delivered as
// sub, with the target of each route of ds parsed once (a route that is
// no URL fails each of its attempts, as it did before it was parsed once).
func (a *daprHTTP) deliverer(ds dapr.Subscription, sub config.Subscription) (pusher, error) {
	p := &daprPost{
		base: a.base, ds: ds, timeout: sub.Timeout, retry: sub.Retry,
		transport: baseTransport(sub.MaxInFlight), targets: make(map[string]*target, len(ds.Rules)),
	}
	for _, r := range ds.Rules {
		if t, err := newRouteTarget(a.base, r.Path); err == nil {
			p.targets[r.Path] = t
		}
	}
	if sub.SigningSecret != "" {
		var err error
		if p.signer, err = newSigner(sub.SigningSecret); err != nil {
			return nil, fmt.Errorf("egress: subscription %q: %w", sub.Name, err)
		}
	}
	return p, nil
}

// newRouteTarget is the target of the app's route ("" for "/") at base.
func newRouteTarget(base, route string) (*target, error) {
	if route == "" {
		route = "/"
	}
	tmpl, err := http.NewRequest(http.MethodPost, base+route, nil)
	if err != nil {
		return nil, err
	}
	return newTarget(tmpl), nil
}

// daprPost makes the delivery attempts of one Dapr subscription to an
// HTTP app (contract §9). Safe for concurrent use.
type daprPost struct {
	base      string
	ds        dapr.Subscription
	timeout   time.Duration
	retry     config.Retry
	signer    *standardwebhooks.Webhook // nil: unsigned
	transport *http.Transport
	targets   map[string]*target // by route, of ds's rules; read only
}

// CloseIdleConnections closes the connections to the app that are not in
// use.
func (p *daprPost) CloseIdleConnections() { p.transport.CloseIdleConnections() }

// Attempt POSTs d's event in Dapr's envelope (raw with rawPayload) to the
// app's d.Route and returns what the answer means (daprOutcome), with the
// start of its body and how long it took. When ctx ends before an answer
// it is a Retry with CauseCancelled, as a Webhook's.
func (p *daprPost) Attempt(ctx context.Context, d Delivery) Outcome {
	start := time.Now()
	o := p.attempt(ctx, d, start)
	o.Took = time.Since(start)
	return o
}

// attempt makes the attempt as a Webhook's: in its client span, bounded by
// the timeout until the answer is read, the request handed to the
// transport itself (redirects are not followed). The envelope carries
// ctx's trace context, the request's header the attempt span's. A route
// that is no URL is an error before any span.
func (p *daprPost) attempt(ctx context.Context, d Delivery, now time.Time) Outcome {
	t, err := p.target(d.Route)
	if err != nil {
		return Decide(0, nil, err, d.Attempt, p.retry, nil)
	}
	body := daprEnvelope(ctx, p.ds, d.Event)
	spanCtx, span := startAttemptSpan(ctx, t, d.Attempt)
	defer span.End()
	reqCtx, cancel := bound(spanCtx, p.timeout)
	defer cancel()
	req, err := p.newRequest(reqCtx, t, d, body, now)
	if err != nil {
		failAttemptSpan(span, err)
		return Decide(0, nil, err, d.Attempt, p.retry, nil)
	}
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		failAttemptSpan(span, err)
		return Decide(0, nil, noAnswer(ctx, err, p.timeout), d.Attempt, p.retry, nil)
	}
	o, readErr := p.answer(resp, d.Attempt)
	answerAttemptSpan(span, resp, o)
	if readErr != nil {
		failAttemptSpan(span, readErr)
	}
	return o
}

// target is the target of route: one of the rules', or made now.
func (p *daprPost) target(route string) (*target, error) {
	if t, ok := p.targets[route]; ok {
		return t, nil
	}
	return newRouteTarget(p.base, route)
}

// The canonical keys of the Dapr headers.
var (
	pubSubNameKey = http.CanonicalHeaderKey(headerPubSubName)
	topicKey      = http.CanonicalHeaderKey(headerTopic)
)

// newRequest builds the request of one attempt to t: body, Dapr's
// envelope of the event, as application/cloudevents+json, with the
// headers pubsubname, topic, eventsidecar-attempt, the trace context of
// ctx's span (the attempt's when it is recorded) and, with a secret, the
// Standard Webhooks signature made at now.
func (p *daprPost) newRequest(ctx context.Context, t *target, d Delivery, body []byte, now time.Time) (*http.Request, error) {
	h := newHeaderWriter()
	h.set("Content-Type", wire.StructuredMediaType)
	h.set(pubSubNameKey, p.ds.PubSub)
	h.set(topicKey, p.ds.Topic)
	h.set(attemptKey, strconv.Itoa(d.Attempt))
	h.set("User-Agent", headerUserAgent)
	otel.GetTextMapPropagator().Inject(ctx, h)
	if p.signer != nil {
		if err := sign(h, p.signer, WebhookID(d.Event), now, body); err != nil {
			return nil, err
		}
	}
	return t.post(ctx, h, body), nil
}

// answer reads the app's answer resp to attempt number attempt and closes
// its body. It returns the Outcome (daprOutcome of the verdict of the
// first answerDrainMax bytes of the body, dapr.HTTPAnswer: a longer body
// is cut, as no JSON) with clip.UTF8 of the body's first answerBodyMax
// bytes, after reading and discarding up to answerDrainMax more bytes so
// that the connection can be reused; and the error of a read that failed
// before the end of the body, which only the span records. A body that
// fits the pooled buffer (Dapr's {"status": ...}) costs no allocation.
func (p *daprPost) answer(resp *http.Response, attempt int) (Outcome, error) {
	defer resp.Body.Close()
	buf := answerBuffers.Get().(*[answerBodyMax]byte)
	defer answerBuffers.Put(buf)
	n, err := fill(resp.Body, buf[:])
	body := buf[:n]
	if err == nil {
		whole := bytes.NewBuffer(append(make([]byte, 0, 4*answerBodyMax), body...))
		if _, err = whole.ReadFrom(io.LimitReader(resp.Body, answerDrainMax-answerBodyMax)); err == nil {
			_, err = io.CopyN(io.Discard, resp.Body, answerDrainMax)
		}
		body = whole.Bytes()
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	o := daprOutcome(dapr.HTTPAnswer(resp.StatusCode, body), resp.StatusCode, resp.Header, attempt, p.retry)
	o.Body = clip.UTF8(string(body[:min(len(body), answerBodyMax)]), answerBodyMax)
	return o, err
}

// Reasons of a Dapr app's answers beyond the HTTP status.
const (
	reasonDrop  = "app answered DROP"
	reasonRetry = "app asked for a retry"
)

// daprOutcome maps the verdict v of a Dapr app's answer (status, header)
// to attempt number attempt to its Outcome (contract §9):
//
//   - Success: Delivered.
//   - Drop: Dead, for a DROP ("app answered DROP") or a 404 ("HTTP 404"),
//     as the lead chose: Dapr drops it, here nothing is lost.
//   - a 2xx asking for a retry (RETRY, or a status Dapr does not know),
//     and any other 4xx but 408 and 429: Retry after Backoff, with
//     CauseAnswer (the app is up and judged the event: the circuit stays
//     closed and the attempt counts toward max_attempts). Unlike §5, 400
//     and 415 are retried, as Dapr retries them.
//   - everything else (408, 429, 503, 3xx, other 5xx) as Decide: 429 and
//     503 open the circuit, Retry-After is honoured.
func daprOutcome(v dapr.Verdict, status int, h http.Header, attempt int, r config.Retry) Outcome {
	reason := fmt.Sprintf("HTTP %d", status)
	switch {
	case v == dapr.Success:
		return Outcome{Kind: Delivered, Cause: CauseAnswer, Status: status, Reason: reason}
	case v == dapr.Drop && status == http.StatusNotFound:
		return Outcome{Kind: Dead, Cause: CauseAnswer, Status: status, Reason: reason}
	case v == dapr.Drop:
		return Outcome{Kind: Dead, Cause: CauseAnswer, Status: status, Reason: reasonDrop}
	case status >= 200 && status <= 299:
		reason = reasonRetry
	case status < 400 || status > 499 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests:
		return Decide(status, h, nil, attempt, r, nil)
	}
	return Outcome{Kind: Retry, Cause: CauseAnswer, Status: status, Delay: Backoff(attempt, r, nil), Reason: reason}
}

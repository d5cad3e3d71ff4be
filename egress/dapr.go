package egress

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

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
// sub.
func (a *daprHTTP) deliverer(ds dapr.Subscription, sub config.Subscription) (pusher, error) {
	p := &daprPost{base: a.base, ds: ds, timeout: sub.Timeout, retry: sub.Retry, client: newClient(sub)}
	if sub.SigningSecret != "" {
		var err error
		if p.signer, err = newSigner(sub.SigningSecret); err != nil {
			return nil, fmt.Errorf("egress: subscription %q: %w", sub.Name, err)
		}
	}
	return p, nil
}

// daprPost makes the delivery attempts of one Dapr subscription to an
// HTTP app (contract §9). Safe for concurrent use.
type daprPost struct {
	base    string
	ds      dapr.Subscription
	timeout time.Duration
	retry   config.Retry
	signer  *standardwebhooks.Webhook // nil: unsigned
	client  *http.Client
}

// CloseIdleConnections closes the connections to the app that are not in
// use.
func (p *daprPost) CloseIdleConnections() { p.client.CloseIdleConnections() }

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

func (p *daprPost) attempt(ctx context.Context, d Delivery, now time.Time) Outcome {
	req, err := p.newRequest(ctx, d, now)
	if err != nil {
		return Decide(0, nil, err, d.Attempt, p.retry, nil)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return Decide(0, nil, noAnswer(ctx, err, p.timeout), d.Attempt, p.retry, nil)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, answerDrainMax))
	o := daprOutcome(dapr.HTTPAnswer(resp.StatusCode, body), resp.StatusCode, resp.Header, d.Attempt, p.retry)
	tagOutcome(resp, o)
	o.Body = clip.UTF8(string(body), answerBodyMax)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, answerDrainMax))
	_ = resp.Body.Close()
	return o
}

// newRequest builds the request of one attempt: Dapr's envelope of the
// event with ctx's trace context, as application/cloudevents+json to
// the route, with the headers pubsubname, topic, eventsidecar-attempt
// and, with a secret, the Standard Webhooks signature made at now. The
// otelhttp transport adds the traceparent of the attempt's span.
func (p *daprPost) newRequest(ctx context.Context, d Delivery, now time.Time) (*http.Request, error) {
	body := daprEnvelope(ctx, p.ds, d.Event)
	h := make(http.Header)
	h.Set("Content-Type", wire.StructuredMediaType)
	h.Set(headerPubSubName, p.ds.PubSub)
	h.Set(headerTopic, p.ds.Topic)
	h.Set(headerAttempt, strconv.Itoa(d.Attempt))
	h.Set("User-Agent", headerUserAgent)
	if p.signer != nil {
		if err := sign(h, p.signer, WebhookID(d.Event), now, body); err != nil {
			return nil, err
		}
	}
	route := d.Route
	if route == "" {
		route = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+route, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = h
	return req, nil
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

package egress

import (
	"context"
	"log/slog"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventsidecar/eventsidecar/dapr"
)

// The reasons of a Dapr subscription's event that ends without an attempt.
const (
	reasonNoRoute = "no route matched"
	reasonExpired = "expired"
)

// routeStep picks, once per event, the app's route for each event of
// the Dapr subscription ds, by its rules (dapr.Route over the envelope
// the app would get), for the attempts below. As in Dapr, an event no
// rule matches is skipped (acknowledged, counted "skipped"), or, when ds
// names a deadLetterTopic, dead-lettered there. One that no rule matched
// because a rule failed to evaluate (a member it lacks, a result that is
// not a boolean) is dead-lettered, naming the error: it is not known to be
// unwanted (Dapr retries it for ever). An event whose
// expiration extension has passed is dead-lettered (Dapr drops it unless
// there is a deadLetterTopic: here nothing is lost). Neither makes an
// attempt, so its dead letter has dlqattempts 0.
//
// A filter like the types filter would sit in the dispatcher's admit,
// but routing is a step: its dead letters go through the dead-letter
// step and settlement like any other, and its path reaches the attempt.
func routeStep(ds dapr.Subscription, t tally, log *slog.Logger) middleware {
	return func(next handler) handler {
		return func(ctx context.Context, it *item) result {
			if at, ok := expired(it.ev, time.Now()); ok {
				return noAttempt(it, reasonExpired+" at "+at)
			}
			path, ok, err := route(ctx, ds, it.ev)
			if err != nil {
				log.DebugContext(ctx, "a routing rule failed to evaluate; it does not match", "id", it.ev.ID(), "error", err)
			}
			switch {
			case ok:
				it.route = path
				return next(ctx, it)
			case err != nil:
				// The app may have wanted it: not a clean "no match".
				return noAttempt(it, reasonNoRoute+"; a rule failed to evaluate: "+err.Error())
			case ds.DeadLetterTopic != "":
				return noAttempt(it, reasonNoRoute)
			}
			t.outcome(outcomeSkipped)
			trace.SpanFromContext(ctx).AddEvent("skipped", trace.WithAttributes(attribute.String("eventsidecar.reason", reasonNoRoute)))
			return result{end: endSkipped}
		}
	}
}

// route is ev's path by ds's rules: the first rule's without a look at
// the event when it matches every event, else dapr.Route's over the
// envelope the app would get.
func route(ctx context.Context, ds dapr.Subscription, ev *event.Event) (string, bool, error) {
	if first := ds.Rules[0]; first.Match == nil {
		return first.Path, true, nil
	}
	return dapr.Route(ds.Rules, daprEnvelope(ctx, ds, ev))
}

// noAttempt is the Dead result of an event dead-lettered before any
// attempt, for reason.
func noAttempt(it *item, reason string) result {
	it.attempt = 0
	return result{Outcome: Outcome{Kind: Dead, Reason: reason}}
}

// expired reports whether ev's expiration extension (RFC 3339, as a
// Dapr publish with a ttl sets it) is before now, and gives it.
func expired(ev *event.Event, now time.Time) (string, bool) {
	v, ok := ev.Extensions()[dapr.ExpirationExtension]
	if !ok {
		return "", false
	}
	s, err := types.Format(v)
	if err != nil {
		return "", false
	}
	at, err := time.Parse(time.RFC3339, s)
	if err != nil || !at.Before(now) {
		return "", false
	}
	return s, true
}

// daprEnvelope is the envelope of ev that the app of ds gets (raw, or
// Dapr's structured envelope), with ctx's trace context.
func daprEnvelope(ctx context.Context, ds dapr.Subscription, ev *event.Event) []byte {
	parent, state := traceHeaders(ctx)
	f := dapr.Fields{PubSub: ds.PubSub, Topic: ds.Topic, TraceParent: parent, TraceState: state}
	if ds.Raw() {
		return dapr.RawEnvelope(ev, f)
	}
	return dapr.Envelope(ev, f)
}

package egress

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
)

// ackWaitMargin is added to twice the attempt timeout to make a
// subscription's AckWait: an event may wait for a free slot for up to one
// attempt, then take one attempt, before it is settled.
const ackWaitMargin = 10 * time.Second

// ackWait is how long the broker waits for a settlement before it
// redelivers an event.
func ackWait(sub config.Subscription) time.Duration {
	return 2*sub.Timeout + ackWaitMargin
}

// maxAckPending bounds the events a subscription holds unsettled across all
// sidecars sharing it (in flight, waiting for a retry, or held behind their
// key). Retries count too, so it is generous: a backlog of failing events
// must not stop the others.
func maxAckPending(sub config.Subscription) int {
	return max(1000, 64*sub.MaxInFlight)
}

// adhocIdle is how long the broker keeps an ad-hoc subscription's consumer,
// with the events stored for it, after its last stream stopped pulling.
const adhocIdle = 24 * time.Hour

// consumerConfig is the durable pull consumer of sub: named after it, so
// sidecars with the same subscription name share its events, and filtered
// by its topic plus its own replay topic. It starts with the events stored
// after it is first created. With idle > 0 the broker deletes it after
// idle without a pull.
func consumerConfig(b *broker.Client, sub config.Subscription, idle time.Duration) jetstream.ConsumerConfig {
	subjects := []string{b.Subject(sub.Topic)}
	if replay := ReplayTopic(sub.Name); !config.MatchPattern(sub.Topic, replay) {
		subjects = append(subjects, b.Subject(replay))
	}
	cfg := jetstream.ConsumerConfig{
		Durable:           sub.Name,
		Description:       "eventsidecar subscription " + sub.Name,
		FilterSubjects:    subjects,
		DeliverPolicy:     jetstream.DeliverNewPolicy,
		AckPolicy:         jetstream.AckExplicitPolicy,
		AckWait:           ackWait(sub),
		MaxDeliver:        -1,
		MaxAckPending:     maxAckPending(sub),
		InactiveThreshold: idle,
	}
	if sub.OrderedByKey {
		// One sidecar at a time takes an ordered subscription's events, so
		// that a key's events are never split between sidecars; when it
		// stops pulling, another is pinned after the ack wait.
		cfg.PriorityPolicy = jetstream.PriorityPolicyPinned
		cfg.PriorityGroups = []string{orderedGroup}
		cfg.PinnedTTL = ackWait(sub)
	}
	return cfg
}

// orderedGroup is the priority group ordered subscriptions pull in.
const orderedGroup = "ordered"

// prefetch is how many events a dispatcher holds fetched beyond its
// window, so that the next event is at hand when a delivery ends instead
// of a pull request away; few, since their ack wait runs meanwhile.
const prefetch = 8

// pullOptions are the options a dispatcher of window deliveries at once
// pulls sub's events with.
func pullOptions(sub config.Subscription, window int) []jetstream.PullMessagesOpt {
	opts := []jetstream.PullMessagesOpt{jetstream.PullMaxMessages(window + prefetch)}
	if sub.OrderedByKey {
		opts = append(opts, jetstream.PullPriorityGroup(orderedGroup))
	}
	return opts
}

// ensureConsumer creates sub's consumer, or updates it to the current
// configuration; idle is as for consumerConfig.
func ensureConsumer(ctx context.Context, b *broker.Client, sub config.Subscription, idle time.Duration) (jetstream.Consumer, error) {
	c, err := b.JetStream().CreateOrUpdateConsumer(ctx, b.Stream(), consumerConfig(b, sub, idle))
	if err != nil {
		return nil, fmt.Errorf("egress: consumer %q on stream %q: %w", sub.Name, b.Stream(), err)
	}
	return c, nil
}

package egress

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dedup"
	"github.com/eventsidecar/eventsidecar/wire"
)

const (
	// listDefaultLimit is List's limit when none is given; listMaxLimit
	// caps it.
	listDefaultLimit = 100
	listMaxLimit     = 1000
)

// ReplayTopic returns the topic a subscription's replayed dead letters are
// published to, "_replay.<name>": only that subscription reads it.
func ReplayTopic(name string) string { return "_replay." + name }

// DeadLetters reads and manages one subscription's dead letters: the events
// in the stream on the subscription's dead-letter topic whose
// dlqsubscription extension is the subscription's name (a dead-letter topic
// may be shared). It is safe for concurrent use, also with other sidecars
// managing the same dead letters: each one is counted by one caller only,
// and published once within the broker's duplicate window. It does not own
// the broker.Client.
type DeadLetters struct {
	b       *broker.Client
	name    string
	subject string // the dead-letter topic's subject
}

// NewDeadLetters returns the dead letters of sub, stored through b.
func NewDeadLetters(b *broker.Client, sub config.Subscription) *DeadLetters {
	return &DeadLetters{b: b, name: sub.Name, subject: b.Subject(sub.DeadLetter())}
}

// DeadLetter is one stored dead letter. The caller owns it.
type DeadLetter struct {
	// Sequence is its stream sequence.
	Sequence uint64
	// Event is the dead-lettered event, dlq* extensions included (decoded
	// with wire.DecodeNATS).
	Event event.Event
	// trace is the stored traceparent and tracestate, carried into a replay.
	trace [2]string
}

// List returns up to limit dead letters, oldest first: 100 when limit <= 0,
// at most 1000. Messages on the dead-letter topic that are not valid
// CloudEvents or belong to another subscription are left out.
func (d *DeadLetters) List(ctx context.Context, limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		limit = listDefaultLimit
	}
	limit = min(limit, listMaxLimit)
	out := make([]DeadLetter, 0, min(limit, 16))
	err := d.walk(ctx, func(_ jetstream.Stream, dl DeadLetter) (bool, error) {
		out = append(out, dl)
		return len(out) < limit, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Replay sends the dead letters whose event id is in ids (all when ids is
// empty) back for delivery to this subscription only, oldest first: each
// event, without its dlq* extensions, is published to ReplayTopic and,
// once the broker acknowledged it, its dead letter is deleted. Replaying
// the same dead letter again (after a failed delete, or by a concurrent
// call) is deduplicated by the broker within its duplicate window. It
// returns how many were replayed; on an error it stops there, and what was
// replayed is deleted while the rest stays. Dead letters stored after the
// call started are left for the next call.
func (d *DeadLetters) Replay(ctx context.Context, ids []string) (int, error) {
	return d.each(ctx, ids, d.replay)
}

// Purge deletes the dead letters whose event id is in ids (all when ids is
// empty) and returns how many it deleted. Dead letters stored after the
// call started are left.
func (d *DeadLetters) Purge(ctx context.Context, ids []string) (int, error) {
	return d.each(ctx, ids, func(ctx context.Context, st jetstream.Stream, dl DeadLetter) (bool, error) {
		return d.remove(ctx, st, dl.Sequence)
	})
}

// each applies act to every dead letter whose event id is in ids (every one
// when ids is empty), counting those act reports done, and stops at the
// first error.
func (d *DeadLetters) each(ctx context.Context, ids []string, act func(context.Context, jetstream.Stream, DeadLetter) (bool, error)) (int, error) {
	var want map[string]bool
	if len(ids) > 0 {
		want = make(map[string]bool, len(ids))
		for _, id := range ids {
			want[id] = true
		}
	}
	n := 0
	err := d.walk(ctx, func(st jetstream.Stream, dl DeadLetter) (bool, error) {
		if want != nil && !want[dl.Event.ID()] {
			return true, nil
		}
		done, err := act(ctx, st, dl)
		if done {
			n++
		}
		return err == nil, err
	})
	return n, err
}

// walk calls fn with each of the subscription's dead letters stored before
// the walk began, oldest first, until fn returns false or an error. It reads
// the stream message by message on the dead-letter subject, so it holds one
// at a time and skips other subjects on the server.
func (d *DeadLetters) walk(ctx context.Context, fn func(jetstream.Stream, DeadLetter) (bool, error)) error {
	st, err := d.b.JetStream().Stream(ctx, d.b.Stream())
	if err != nil {
		return fmt.Errorf("egress: dead letters of %q: look up stream %q: %w", d.name, d.b.Stream(), err)
	}
	state := st.CachedInfo().State
	for seq := max(state.FirstSeq, 1); seq <= state.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(d.subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("egress: dead letters of %q: read stream %q from sequence %d: %w", d.name, d.b.Stream(), seq, err)
		}
		if m.Sequence > state.LastSeq {
			return nil
		}
		seq = m.Sequence
		dl, ok := d.deadLetter(m)
		if !ok {
			continue
		}
		if more, err := fn(st, dl); err != nil || !more {
			return err
		}
	}
	return nil
}

// deadLetter decodes m; ok is false when it is not a valid CloudEvent or
// not a dead letter of this subscription.
func (d *DeadLetters) deadLetter(m *jetstream.RawStreamMsg) (dl DeadLetter, ok bool) {
	ev, err := wire.DecodeNATS(m.Header, m.Data)
	if err != nil {
		return DeadLetter{}, false
	}
	var sub string
	if ev.ExtensionAs(ExtDLQSubscription, &sub) != nil || sub != d.name {
		return DeadLetter{}, false
	}
	return DeadLetter{Sequence: m.Sequence, Event: ev,
		trace: [2]string{m.Header.Get(broker.TraceParentHeader), m.Header.Get(broker.TraceStateHeader)}}, true
}

// replay publishes dl's original event to the replay topic, waits for the
// broker's acknowledgement and deletes dl. done is false when another
// caller deleted dl first.
func (d *DeadLetters) replay(ctx context.Context, st jetstream.Stream, dl DeadLetter) (done bool, err error) {
	ev := Original(dl.Event)
	topic := ReplayTopic(d.name)
	msg := broker.Message{
		Topic: topic,
		Event: &ev,
		// Keyed by the dead letter, not the event: a later dead letter of
		// the same event can be replayed again.
		MsgID:       dedup.MsgID(topic, "deadletter "+strconv.FormatUint(dl.Sequence, 10), &ev),
		Fingerprint: dedup.Fingerprint(&ev),
		TraceParent: dl.trace[0],
		TraceState:  dl.trace[1],
	}
	if r := d.b.Publish(ctx, []broker.Message{msg})[0]; r.Err != nil {
		return false, fmt.Errorf("egress: replay dead letter %d of %q: %w", dl.Sequence, d.name, r.Err)
	}
	return d.remove(ctx, st, dl.Sequence)
}

// Original returns a copy of a dead letter's event without its dlq*
// extensions: the event as it was before it was dead-lettered.
func Original(ev event.Event) event.Event {
	out := ev.Clone()
	for name := range ev.Extensions() {
		if strings.HasPrefix(name, dlqPrefix) {
			out.SetExtension(name, nil)
		}
	}
	return out
}

// remove deletes the message at seq. done is false when it was already
// gone (replayed or purged by another caller, or expired).
func (d *DeadLetters) remove(ctx context.Context, st jetstream.Stream, seq uint64) (done bool, err error) {
	err = st.DeleteMsg(ctx, seq)
	if err == nil {
		return true, nil
	}
	if _, getErr := st.GetMsg(ctx, seq); errors.Is(getErr, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	return false, fmt.Errorf("egress: delete dead letter %d of %q from stream %q: %w", seq, d.name, d.b.Stream(), err)
}

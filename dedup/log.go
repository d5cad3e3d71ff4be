package dedup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// logTimeout bounds one request of the delivered log: an append, a
// lookup of its last record or a read of the records after it.
const logTimeout = 2 * time.Second

// Bounds of reading the delivered log: the direct gets one catch-up makes
// before it reads the rest with a consumer, and the records one fetch of
// that consumer brings.
const (
	directReads = 32
	bulkFetch   = 256
)

// maxConflicts bounds the appends in a row that another sidecar's
// appends to the same subscription's subject may turn down.
const maxConflicts = 16

// logHandle is the delivered log's stream as Ensure last put it in place,
// for an atomic.Pointer: created tells a stream made anew (the broker lost
// its state) from the one the sequences applied so far are of.
type logHandle struct {
	stream  jetstream.Stream
	name    string
	created time.Time
}

// subLog is one subscription's part of the delivered log: its subject,
// and the keys of its records read so far. Every record on the subject up
// to applied is in keys; an append says which record it expects last
// (JetStream's expected last subject sequence), so a record this sidecar
// appends needs no read, and one of another sidecar is read (catchUp)
// when an append is turned down or a lookup finds the subject's last
// record beyond applied.
type subLog struct {
	js      jetstream.JetStream
	subject string
	keys    keySet
	appends rounds // Mark's: one append carries every key that came meanwhile; Seen's misses wait for it, or for one lookup of the last record when it has no keys
	syncs   rounds // a lookup of the last record, for the misses whose append failed

	catchUp sync.Mutex // held while reading records, so one read goes at a time

	mu      sync.Mutex
	applied uint64    // the records on subject up to this sequence are in keys
	of      time.Time // created of the log stream applied is of
}

// newSubLog is subscription's part of the log under subjectPrefix.
func newSubLog(js jetstream.JetStream, subjectPrefix, subscription string, window time.Duration, current func() (*logHandle, error)) *subLog {
	sum := sha256.Sum256([]byte(subscription))
	l := &subLog{js: js, subject: subjectPrefix + "." + hex.EncodeToString(sum[:12]), keys: keySet{window: window}}
	l.appends.run = func(r *round) error {
		if len(r.keys) == 0 {
			return l.sync(current)
		}
		return l.append(current, r.keys)
	}
	l.syncs.run = func(*round) error { return l.sync(current) }
	return l
}

// position returns the sequence up to which records are applied, for the
// log stream h: 0 when applied was of an earlier stream.
func (l *subLog) position(h *logHandle) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.of.Equal(h.created) {
		l.applied, l.of = 0, h.created
	}
	return l.applied
}

// advance notes that the records up to seq of h's stream are applied.
func (l *subLog) advance(h *logHandle, seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.of.Equal(h.created) && seq > l.applied {
		l.applied = seq
	}
}

// rewind starts applying h's records again from the first.
func (l *subLog) rewind(h *logHandle) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.applied, l.of = 0, h.created
}

// append records keys in one message on the subject and, once JetStream
// stored it, in l.keys. When another sidecar's record came first, it reads
// that and appends again.
func (l *subLog) append(current func() (*logHandle, error), keys []logKey) error {
	h, err := current()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), logTimeout)
	defer cancel()
	data := make([]byte, 0, len(keys)*logKeyLen)
	for _, k := range keys {
		data = append(data, k[:]...)
	}
	for conflicts := 0; ; conflicts++ {
		last := l.position(h)
		ack, err := l.js.Publish(ctx, l.subject, data, jetstream.WithExpectLastSequencePerSubject(last))
		if err == nil {
			now := time.Now()
			for _, k := range keys {
				l.keys.add(k, now)
			}
			l.advance(h, ack.Sequence)
			return nil
		}
		if !isWrongLast(err) || conflicts == maxConflicts {
			return fmt.Errorf("dedup: append to the delivered log %q: %w", h.name, err)
		}
		if err := l.readTo(ctx, h); err != nil {
			return err
		}
	}
}

// isWrongLast reports whether err turned an append down because the
// subject's last record was not the one it expected.
func isWrongLast(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// sync brings l.keys up to every record on the subject that JetStream had
// stored when it began.
func (l *subLog) sync(current func() (*logHandle, error)) error {
	h, err := current()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), logTimeout)
	defer cancel()
	return l.readTo(ctx, h)
}

// readTo reads the records on the subject after the applied ones, up to
// its last record now.
func (l *subLog) readTo(ctx context.Context, h *logHandle) error {
	before := l.position(h)
	last, err := h.stream.GetLastMsgForSubject(ctx, l.subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		last = &jetstream.RawStreamMsg{}
	case err != nil:
		return fmt.Errorf("dedup: look up the delivered log %q: %w", h.name, err)
	}
	return l.catchUpTo(ctx, h, before, last.Sequence)
}

// catchUpTo reads the records on the subject after the applied ones up to
// last, the subject's last record as a lookup found it that began when
// the records up to before were applied.
func (l *subLog) catchUpTo(ctx context.Context, h *logHandle, before, last uint64) error {
	l.catchUp.Lock()
	defer l.catchUp.Unlock()
	if last < before {
		// The subject's last record was at before or later when the lookup
		// began, so records applied are gone (expired, or the stream was
		// purged or made anew under the same creation time): apply what is
		// left from the start.
		l.rewind(h)
	}
	from := l.position(h) // an append may have advanced it past last meanwhile
	for n := 0; from < last; n++ {
		if n == directReads {
			return l.readBulk(ctx, h, from, last)
		}
		m, err := h.stream.GetMsg(ctx, from+1, jetstream.WithGetMsgSubject(l.subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break // expired since the lookup
		}
		if err != nil {
			return fmt.Errorf("dedup: read the delivered log %q: %w", h.name, err)
		}
		l.apply(m.Data, m.Time)
		from = m.Sequence
		l.advance(h, from)
	}
	l.advance(h, last)
	return nil
}

// readBulk reads the records on the subject after from up to last with
// an ordered consumer, which streams them instead of one request each.
func (l *subLog) readBulk(ctx context.Context, h *logHandle, from, last uint64) error {
	c, err := l.js.OrderedConsumer(ctx, h.name, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{l.subject},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from + 1,
		InactiveThreshold: logTimeout,
	})
	if err != nil {
		return fmt.Errorf("dedup: read the delivered log %q: %w", h.name, err)
	}
	it, err := c.Messages(jetstream.PullMaxMessages(bulkFetch))
	if err != nil {
		return fmt.Errorf("dedup: read the delivered log %q: %w", h.name, err)
	}
	defer it.Stop()
	for from < last {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("dedup: read the delivered log %q: %w", h.name, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("dedup: read the delivered log %q: %w", h.name, err)
		}
		l.apply(m.Data(), meta.Timestamp)
		from = meta.Sequence.Stream
		l.advance(h, from)
	}
	return nil
}

// apply adds the keys of one record, made at t (no later than now), to
// l.keys. A trailing part shorter than a key is ignored.
func (l *subLog) apply(data []byte, t time.Time) {
	if now := time.Now(); t.After(now) {
		t = now
	}
	for i := 0; i+logKeyLen <= len(data); i += logKeyLen {
		l.keys.add(logKey(data[i:i+logKeyLen]), t)
	}
}

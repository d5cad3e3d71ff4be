package dedup

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// deliveredBucketPrefix starts the name of the KV bucket holding a
// stream's failure counts (and, before the delivered log, its delivered
// set), and the name of its delivered log's stream.
const deliveredBucketPrefix = "eventsidecar-delivered-"

// logSubjectPrefix starts the subjects of the delivered logs: one per
// events stream, with a token per subscription after it.
const logSubjectPrefix = "$EVENTSIDECAR.delivered."

// Delivered remembers which events each subscription's app answered 2xx
// for, and how many attempts to deliver a stored event failed (those that
// count toward max_attempts), for the duplicate window, in the broker, so
// that every sidecar sharing it sees the same.
//
// Deliveries are records in the delivered log, a stream with a subject per
// subscription whose messages expire after the window, each carrying the
// keys of the events one append recorded: Mark joins the next append,
// which carries every key that came meanwhile, and Seen answers from the
// keys read so far, or, when its key is not among them, once it has read
// every record the log held when it asked. Failure counts are keys of a
// key-value bucket. Its methods fail until Ensure has put both in place.
// It is safe for concurrent use; it does not own the JetStream context it
// was made with, and has nothing to close.
type Delivered struct {
	js        jetstream.JetStream
	cfg       jetstream.KeyValueConfig
	bucket    string
	logCfg    jetstream.StreamConfig
	logPrefix string                       // the subjects of this log, less the subscription's token
	kv        atomic.Pointer[bucketHandle] // nil until Ensure succeeded
	log       atomic.Pointer[logHandle]    // nil until Ensure succeeded

	mu   sync.Mutex
	subs map[string]*subLog // by subscription name

	// legacyUntil is when the last key an earlier version recorded in the
	// bucket, for a delivery, leaves the window (unix nanoseconds; 0: none
	// was found): until then Seen also looks such keys up. legacyNext is
	// when to look for one again.
	legacyUntil atomic.Int64
	legacyNext  atomic.Int64
	legacyCheck sync.Mutex // held while they are checked again
}

// bucketHandle holds the bucket's handle, for an atomic.Pointer.
type bucketHandle struct{ jetstream.KeyValue }

// NewDelivered returns the delivered set of stream: its log is the stream
// "eventsidecar-delivered-<stream>" on subjects
// "$EVENTSIDECAR.delivered.<stream>.>", its failure counts are in the
// bucket of the same name (the stream name with every character outside
// A-Z, a-z, 0-9, "_" and "-" replaced by "_" in each), and both expire
// after window, in file storage with replicas copies (at least 1). The
// keys read from the log take about 50 bytes of memory per delivered event
// within the window. NewDelivered does not talk to the broker: Ensure
// does.
func NewDelivered(js jetstream.JetStream, stream string, window time.Duration, replicas int) (*Delivered, error) {
	if window <= 0 {
		return nil, fmt.Errorf("dedup: delivered set: the duplicate window must be positive, got %s", window)
	}
	bucket := deliveredBucket(stream)
	prefix := logSubjectPrefix + bucket[len(deliveredBucketPrefix):]
	return &Delivered{js: js, bucket: bucket, logPrefix: prefix, cfg: jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "eventsidecar: failed attempts per stored event and subscription",
		History:     1,
		TTL:         window,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	}, logCfg: jetstream.StreamConfig{
		Name:        bucket,
		Description: "eventsidecar: events the app answered 2xx for, per subscription",
		Subjects:    []string{prefix + ".>"},
		MaxAge:      window,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
		Discard:     jetstream.DiscardOld,
		AllowDirect: true,
	}}, nil
}

// OpenDelivered is NewDelivered followed by Ensure.
func OpenDelivered(ctx context.Context, js jetstream.JetStream, stream string, window time.Duration, replicas int) (*Delivered, error) {
	d, err := NewDelivered(js, stream, window, replicas)
	if err != nil {
		return nil, err
	}
	if err := d.Ensure(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Ensure creates the log and the bucket or updates them to the settings
// NewDelivered was given. It is idempotent, and safe while other sidecars
// ensure the same; run it again after the broker may have lost its state.
func (d *Delivered) Ensure(ctx context.Context) error {
	kv, err := d.js.CreateOrUpdateKeyValue(ctx, d.cfg)
	if err != nil {
		return fmt.Errorf("dedup: create or update bucket %q: %w", d.bucket, err)
	}
	if err := d.checkLegacy(ctx); err != nil {
		return err
	}
	s, err := d.js.CreateOrUpdateStream(ctx, d.logCfg)
	if err != nil {
		return fmt.Errorf("dedup: create or update the delivered log %q: %w", d.logCfg.Name, err)
	}
	d.kv.Store(&bucketHandle{kv})
	d.log.Store(&logHandle{stream: s, name: d.logCfg.Name, created: s.CachedInfo().Created})
	return nil
}

// store is the bucket, or an error wrapping ErrNotReady.
func (d *Delivered) store() (jetstream.KeyValue, error) {
	h := d.kv.Load()
	if h == nil {
		return nil, fmt.Errorf("%w: bucket %q", ErrNotReady, d.bucket)
	}
	return h.KeyValue, nil
}

// logStream is the log's stream, or an error wrapping ErrNotReady.
func (d *Delivered) logStream() (*logHandle, error) {
	h := d.log.Load()
	if h == nil {
		return nil, fmt.Errorf("%w: log %q", ErrNotReady, d.logCfg.Name)
	}
	return h, nil
}

// subLog is subscription's part of the log.
func (d *Delivered) subLog(subscription string) *subLog {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.subs[subscription]
	if l == nil {
		if d.subs == nil {
			d.subs = map[string]*subLog{}
		}
		l = newSubLog(d.js, d.logPrefix, subscription, d.cfg.TTL, d.logStream)
		d.subs[subscription] = l
	}
	return l
}

// deliveredBucket is the bucket name for stream, within the KV bucket name
// rules.
func deliveredBucket(stream string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, stream)
	return deliveredBucketPrefix + safe
}

// Seen reports whether the event with source and id was marked delivered
// for subscription within the window: by any sidecar, when that record was
// stored before Seen was called. It is Look followed by Wait.
func (d *Delivered) Seen(ctx context.Context, subscription, source, id string) (bool, error) {
	return d.Look(subscription, source, id).Wait(ctx)
}

// Lookup is one event's lookup in the delivered set, begun by Look and
// answered by Wait.
type Lookup struct {
	d    *Delivered
	l    *subLog
	sum  [sha256.Size]byte
	hit  bool   // the key was read already
	err  error  // the set is not ready
	ride *round // the round of appends after the lookup began
}

// Look begins to find out what Seen reports, without waiting: Wait
// gives the answer. A key this sidecar has read costs nothing; for
// another, Wait needs a request of the log that begins after Look was
// called: the next append of this sidecar's records (it is stored only
// when no record came before it that was not read), which a Mark made
// meanwhile starts, or, when none did by the time of Wait, a lookup of
// the log's last record in its place.
func (d *Delivered) Look(subscription, source, id string) *Lookup {
	lk := &Lookup{d: d, sum: deliveredDigest(subscription, source, id)}
	if _, lk.err = d.logStream(); lk.err != nil {
		return lk
	}
	lk.l = d.subLog(subscription)
	if lk.hit = lk.l.keys.has(lk.key(), time.Now()); lk.hit {
		return lk
	}
	lk.ride = lk.l.appends.join(nil)
	return lk
}

// key is the event's key in the log.
func (lk *Lookup) key() logKey { return logKey(lk.sum[:logKeyLen]) }

// Wait returns the lookup's answer once its request ended, or ctx's error
// when ctx ends first. When the append it waited for failed, it looks the
// log's last record up instead.
func (lk *Lookup) Wait(ctx context.Context) (bool, error) {
	switch {
	case lk.err != nil:
		return false, lk.err
	case lk.hit:
		return true, nil
	}
	switch err := lk.l.appends.wait(ctx, lk.ride); {
	case ctx.Err() != nil:
		return false, err
	case err != nil:
		if err := lk.l.syncs.wait(ctx, lk.l.syncs.join(nil)); err != nil {
			return false, err
		}
	}
	if lk.l.keys.has(lk.key(), time.Now()) {
		return true, nil
	}
	return lk.d.seenLegacy(ctx, lk.sum)
}

// Mark records that subscription's app answered 2xx for the event with
// source and id; it is remembered for the window from now.
func (d *Delivered) Mark(ctx context.Context, subscription, source, id string) error {
	if _, err := d.logStream(); err != nil {
		return err
	}
	sum := deliveredDigest(subscription, source, id)
	k := logKey(sum[:logKeyLen])
	l := d.subLog(subscription)
	return l.appends.wait(ctx, l.appends.join(&k))
}

// Failures returns how many attempts to deliver the stored event at
// stream sequence seq to subscription failed and counted toward its
// max_attempts, as NoteFailure last recorded within the window; 0 when
// none did.
func (d *Delivered) Failures(ctx context.Context, subscription string, seq uint64) (int, error) {
	kv, err := d.store()
	if err != nil {
		return 0, err
	}
	e, err := kv.Get(ctx, failuresKey(subscription, seq))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("dedup: read bucket %q: %w", d.bucket, err)
	}
	n, err := strconv.Atoi(string(e.Value()))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("dedup: bucket %q: failure count %q is not a number", d.bucket, e.Value())
	}
	return n, nil
}

// NoteFailure records that attempt number n (1 for the first) to deliver
// the stored event at seq to subscription failed and counts: the next
// attempt is n+1, whichever sidecar makes it. It sets the count rather
// than adding to it, so a record made twice does no harm; the window
// starts again with each record.
func (d *Delivered) NoteFailure(ctx context.Context, subscription string, seq uint64, n int) error {
	kv, err := d.store()
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, failuresKey(subscription, seq), []byte(strconv.Itoa(n))); err != nil {
		return fmt.Errorf("dedup: write bucket %q: %w", d.bucket, err)
	}
	return nil
}

// failuresKey is the bucket key of one stored event's failure count for
// one subscription.
func failuresKey(subscription string, seq uint64) string {
	h := sha256.New()
	write(h, subscription, strconv.FormatUint(seq, 10))
	return "failures." + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// deliveredDigest is the SHA-256 of one event for one subscription; its
// first half is the event's key in the delivered log.
func deliveredDigest(subscription, source, id string) [sha256.Size]byte {
	h := sha256.New()
	write(h, subscription, source, id)
	return [sha256.Size]byte(h.Sum(nil))
}

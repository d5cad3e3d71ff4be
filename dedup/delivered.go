package dedup

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// deliveredBucketPrefix starts the name of the KV bucket holding a
// stream's delivered set.
const deliveredBucketPrefix = "eventsidecar-delivered-"

// Delivered remembers which events each subscription's app answered 2xx
// for, and how many attempts to deliver a stored event failed (those that
// count toward max_attempts), for the duplicate window, in a JetStream
// key-value bucket, so that every sidecar sharing the broker sees the
// same. Its methods fail until Ensure has put the bucket in place. It is
// safe for concurrent use; it does not own the JetStream context it was
// made with, and has nothing to close.
type Delivered struct {
	js     jetstream.JetStream
	cfg    jetstream.KeyValueConfig
	bucket string
	kv     atomic.Pointer[bucketHandle] // nil until Ensure succeeded
}

// bucketHandle holds the bucket's handle, for an atomic.Pointer.
type bucketHandle struct{ jetstream.KeyValue }

// NewDelivered returns the delivered set of stream in the bucket
// "eventsidecar-delivered-<stream>" (the stream name with every character
// outside A-Z, a-z, 0-9, "_" and "-" replaced by "_"), whose entries
// expire after window, one value per key, in file storage with replicas
// copies (at least 1). It does not talk to the broker: Ensure does.
func NewDelivered(js jetstream.JetStream, stream string, window time.Duration, replicas int) (*Delivered, error) {
	if window <= 0 {
		return nil, fmt.Errorf("dedup: delivered set: the duplicate window must be positive, got %s", window)
	}
	bucket := deliveredBucket(stream)
	return &Delivered{js: js, bucket: bucket, cfg: jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "eventsidecar: events the app answered 2xx for, per subscription",
		History:     1,
		TTL:         window,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
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

// Ensure creates the bucket or updates it to the settings NewDelivered
// was given. It is idempotent, and safe while other sidecars ensure the
// same bucket; run it again after the broker may have lost its state.
func (d *Delivered) Ensure(ctx context.Context) error {
	kv, err := d.js.CreateOrUpdateKeyValue(ctx, d.cfg)
	if err != nil {
		return fmt.Errorf("dedup: create or update bucket %q: %w", d.bucket, err)
	}
	d.kv.Store(&bucketHandle{kv})
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
// for subscription within the window.
func (d *Delivered) Seen(ctx context.Context, subscription, source, id string) (bool, error) {
	kv, err := d.store()
	if err != nil {
		return false, err
	}
	_, err = kv.Get(ctx, deliveredKey(subscription, source, id))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("dedup: read bucket %q: %w", d.bucket, err)
	}
}

// Mark records that subscription's app answered 2xx for the event with
// source and id; it is remembered for the window from now.
func (d *Delivered) Mark(ctx context.Context, subscription, source, id string) error {
	kv, err := d.store()
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, deliveredKey(subscription, source, id), nil); err != nil {
		return fmt.Errorf("dedup: write bucket %q: %w", d.bucket, err)
	}
	return nil
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

// deliveredKey is the bucket key of one event for one subscription: the
// base64url SHA-256 of the three, which fits the KV key rules whatever
// characters they hold.
func deliveredKey(subscription, source, id string) string {
	h := sha256.New()
	write(h, subscription, source, id)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

package dedup

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Versions before the delivered log recorded each delivery as a key of
// one token in the bucket (legacyKey). While such a key may still be in
// the window, sidecars of both kinds may share the broker: Seen then looks
// the event's key up there too, so a delivery the earlier version recorded
// is not made again.

// checkLegacy finds when the newest delivery an earlier version recorded
// in the bucket leaves the window, into legacyUntil.
func (d *Delivered) checkLegacy(ctx context.Context) error {
	s, err := d.js.Stream(ctx, "KV_"+d.bucket)
	if err != nil {
		return fmt.Errorf("dedup: bucket %q: %w", d.bucket, err)
	}
	m, err := s.GetLastMsgForSubject(ctx, "$KV."+d.bucket+".*")
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		d.legacyUntil.Store(0)
	case err != nil:
		return fmt.Errorf("dedup: look for deliveries an earlier version recorded in bucket %q: %w", d.bucket, err)
	default:
		d.legacyUntil.Store(m.Time.Add(d.cfg.TTL).UnixNano())
	}
	d.legacyNext.Store(time.Now().Add(d.cfg.TTL).UnixNano())
	return nil
}

// seenLegacy reports whether an earlier version recorded the delivery of
// the event with digest sum, while any delivery it recorded may be in the
// window.
func (d *Delivered) seenLegacy(ctx context.Context, sum [32]byte) (bool, error) {
	if !d.legacyNow(ctx) {
		return false, nil
	}
	kv, err := d.store()
	if err != nil {
		return false, err
	}
	_, err = kv.Get(ctx, legacyKey(sum))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("dedup: read bucket %q: %w", d.bucket, err)
	}
}

// legacyNow reports whether a delivery an earlier version recorded may be
// in the window now. Once a window has passed since it last looked, it
// looks again, since earlier versions may still be running; when that
// fails, it says yes.
func (d *Delivered) legacyNow(ctx context.Context) bool {
	now := time.Now().UnixNano()
	if now < d.legacyUntil.Load() {
		return true
	}
	if now < d.legacyNext.Load() {
		return false
	}
	d.legacyCheck.Lock()
	defer d.legacyCheck.Unlock()
	if now < d.legacyNext.Load() {
		return now < d.legacyUntil.Load()
	}
	if err := d.checkLegacy(ctx); err != nil {
		return true
	}
	return now < d.legacyUntil.Load()
}

// legacyKey is the bucket key an earlier version recorded the delivery
// of the event with digest sum under (deliveredDigest): its base64url,
// which fits the KV key rules whatever characters the event's names hold.
func legacyKey(sum [32]byte) string {
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

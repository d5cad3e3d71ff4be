package egress

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/eventsidecar/eventsidecar/wire"
)

// Headers of a delivery besides the event's own.
const (
	headerAttempt   = "eventsidecar-attempt"
	headerUserAgent = "eventsidecar"
)

// newRequest builds the request of one attempt (contract §5): the event in
// the webhook's content mode, attempt number and, with a secret, the
// Standard Webhooks signature made at now. The otelhttp transport adds the
// trace context of the attempt's span.
func (w *Webhook) newRequest(ctx context.Context, d Delivery, now time.Time) (*http.Request, error) {
	h := make(http.Header)
	var body []byte
	if w.structured {
		body = wire.EncodeStructured(d.Event)
		h.Set("Content-Type", wire.StructuredMediaType)
	} else {
		body = d.Event.Data()
		wire.SetBinaryHeaders(h, d.Event)
	}
	h.Set(headerAttempt, strconv.Itoa(d.Attempt))
	h.Set("User-Agent", headerUserAgent)
	if w.signer != nil {
		if err := sign(h, w.signer, WebhookID(d.Event), now, body); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = h
	return req, nil
}

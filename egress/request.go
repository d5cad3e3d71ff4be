package egress

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"

	"github.com/eventsidecar/eventsidecar/wire"
)

// Headers of a delivery besides the event's own.
const (
	headerAttempt   = "eventsidecar-attempt"
	headerUserAgent = "eventsidecar"
)

// attemptKey is the canonical header key of headerAttempt.
var attemptKey = http.CanonicalHeaderKey(headerAttempt)

// headerRoom is how many header values a request holds before its value
// store grows: the ce- headers of an event with a few extensions,
// Content-Type, the attempt, User-Agent, the trace context and the
// signature.
const headerRoom = 20

// newRequest builds the request of one attempt (contract §5): the event in
// the webhook's content mode, attempt number and, with a secret, the
// Standard Webhooks signature made at now, and the trace context of ctx's
// span (the attempt's when it is recorded, else the process span's).
func (w *Webhook) newRequest(ctx context.Context, d Delivery, now time.Time) (*http.Request, error) {
	h := newHeaderWriter()
	var body []byte
	if w.structured {
		body = wire.EncodeStructured(d.Event)
		h.set("Content-Type", wire.StructuredMediaType)
	} else {
		body = d.Event.Data()
		wire.EachBinaryHeader(d.Event, h.set)
	}
	h.set(attemptKey, strconv.Itoa(d.Attempt))
	h.set("User-Agent", headerUserAgent)
	if w.auth != "" {
		h.set("Authorization", w.auth)
	}
	otel.GetTextMapPropagator().Inject(ctx, h)
	if w.signer != nil {
		if err := sign(h, w.signer, WebhookID(d.Event), now, body); err != nil {
			return nil, err
		}
	}
	return w.target.post(ctx, h, body), nil
}

// target is where attempts go: the URL, parsed once and shared by every
// request, the requests' Host and the attributes of every attempt's span.
type target struct {
	url       *url.URL
	host      string
	spanAttrs []attribute.KeyValue
}

// newTarget is the target of tmpl, a request made by http.NewRequest.
func newTarget(tmpl *http.Request) *target {
	return &target{url: tmpl.URL, host: tmpl.Host, spanAttrs: attemptAttributes(tmpl.URL)}
}

// post is an HTTP/1.1 POST of body to t within ctx, with the header of h.
func (t *target) post(ctx context.Context, h *headerWriter, body []byte) *http.Request {
	tmpl := http.Request{
		Method:     http.MethodPost,
		URL:        t.url,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h.h,
		Host:       t.host,
	}
	setBody(&tmpl, body)
	return tmpl.WithContext(ctx)
}

// setBody gives r body as http.NewRequest does: its length, a reader the
// transport knows to be in memory (so that it writes the header and the
// body at once), and GetBody so that the transport can send it again on a
// fresh connection when a reused one fails before any of it was written.
func setBody(r *http.Request, body []byte) {
	if len(body) == 0 {
		r.Body, r.GetBody = http.NoBody, noBody
		return
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
}

// noBody is the GetBody of a request without a body.
func noBody() (io.ReadCloser, error) { return http.NoBody, nil }

// headerWriter fills an http.Header with canonical keys given as such,
// keeping the values in one store instead of a slice each.
type headerWriter struct {
	h    http.Header
	vals []string
}

// newHeaderWriter is an empty header with room for headerRoom values.
func newHeaderWriter() *headerWriter {
	return &headerWriter{h: make(http.Header, headerRoom), vals: make([]string, 0, headerRoom)}
}

// set makes value the one value of key, which must be canonical
// (textproto.CanonicalMIMEHeaderKey).
func (w *headerWriter) set(key, value string) {
	w.vals = append(w.vals, value)
	n := len(w.vals)
	w.h[key] = w.vals[n-1 : n : n]
}

// Set is set for a key in any case; it lets propagators write into the
// header (propagation.TextMapCarrier).
func (w *headerWriter) Set(key, value string) { w.set(canonicalKey(key), value) }

// canonicalKey is key's canonical header key, known without work for the
// propagators' keys and the signature's.
func canonicalKey(key string) string {
	switch key {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	case standardwebhooks.HeaderWebhookID:
		return "Webhook-Id"
	case standardwebhooks.HeaderWebhookTimestamp:
		return "Webhook-Timestamp"
	case standardwebhooks.HeaderWebhookSignature:
		return "Webhook-Signature"
	}
	return textproto.CanonicalMIMEHeaderKey(key)
}

// Get returns the first value of key.
func (w *headerWriter) Get(key string) string { return w.h.Get(key) }

// Keys lists the keys of the header.
func (w *headerWriter) Keys() []string {
	keys := make([]string, 0, len(w.h))
	for k := range w.h {
		keys = append(keys, k)
	}
	return keys
}

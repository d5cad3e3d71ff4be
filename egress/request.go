package egress

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/headers"
)

// Headers of a delivery besides the event's own.
const (
	headerAttempt    = "eventsidecar-attempt"
	headerUserAgent  = "eventsidecar"
	structuredFormat = "application/cloudevents+json"
)

// newRequest builds the request of one attempt (contract §5): the event in
// the webhook's content mode, attempt number and, with a secret, the
// Standard Webhooks signature made at now. The otelhttp transport adds the
// trace context of the attempt's span.
func (w *Webhook) newRequest(ctx context.Context, d Delivery, now time.Time) (*http.Request, error) {
	h := make(http.Header)
	var body []byte
	if w.structured {
		body = StructuredJSON(d.Event)
		h.Set("Content-Type", structuredFormat)
	} else {
		body = d.Event.Data()
		setBinaryHeaders(h, d.Event)
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

// setBinaryHeaders sets the binary content mode headers of ev: every
// attribute but datacontenttype as a percent-encoded "ce-" header, and
// datacontenttype, when set, as Content-Type.
func setBinaryHeaders(h http.Header, ev *event.Event) {
	headers.Each(ev, func(name, value string) {
		if name != "datacontenttype" {
			h.Set(headers.Prefix+name, headers.Encode(value))
		}
	})
	if ct := ev.DataContentType(); ct != "" {
		h.Set("Content-Type", ct)
	}
}

// StructuredJSON writes ev in the CloudEvents JSON format: attributes in
// their canonical string form, except Integer and Boolean extensions held
// typed, which stay JSON numbers and booleans; data as dataMember says.
// sdk-go's MarshalJSON is not used: it writes data of a "+json" type as a
// string or base64, not as JSON.
func StructuredJSON(ev *event.Event) []byte {
	exts := ev.Extensions()
	var b bytes.Buffer
	b.WriteByte('{')
	member := func(name string, value []byte) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.Write(jsonString(name))
		b.WriteByte(':')
		b.Write(value)
	}
	headers.Each(ev, func(name, value string) {
		member(name, attributeJSON(exts[name], value))
	})
	if name, value := dataMember(ev); name != "" {
		member(name, value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// attributeJSON is the JSON value of an attribute: ext is the extension's
// typed value (nil for a context attribute), canonical its string form.
func attributeJSON(ext any, canonical string) []byte {
	switch v := ext.(type) {
	case int32:
		return strconv.AppendInt(nil, int64(v), 10)
	case bool:
		return strconv.AppendBool(nil, v)
	}
	return jsonString(canonical)
}

// dataMember returns the member carrying ev's data: "data" with the data
// itself when it is valid JSON and datacontenttype is JSON or absent;
// "data" with a JSON string when datacontenttype is text (text/*,
// application/xml, */*+xml) and the data valid UTF-8; "data_base64"
// otherwise. No data, or empty data, gives no member.
func dataMember(ev *event.Event) (string, []byte) {
	data := ev.Data()
	if len(data) == 0 {
		return "", nil
	}
	ct := ev.DataContentType()
	switch {
	case (ct == "" || headers.IsJSON(ct)) && json.Valid(data):
		return "data", data
	case headers.IsText(ct) && utf8.Valid(data):
		return "data", jsonString(string(data))
	}
	return "data_base64", jsonString(base64.StdEncoding.EncodeToString(data))
}

// jsonString returns s as a JSON string, without escaping <, > and &.
func jsonString(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes; invalid UTF-8 becomes U+FFFD
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'})
}

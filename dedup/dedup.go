// Package dedup derives what makes publishing idempotent: the idempotency key
// of a request (RFC 8941 string, quoted or bare), the broker message id that
// JetStream deduplicates on, and a fingerprint of the event as the client
// sent it, so a key reused with a different event can be told apart from a
// true duplicate.
package dedup

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/wire"
)

// MaxKeyLen bounds an Idempotency-Key header value, in bytes.
const MaxKeyLen = 255

// ParseKey parses an Idempotency-Key header value: an RFC 8941 sf-string
// ("quoted", with \" and \\ escapes) or the bare key. Surrounding spaces are
// ignored. The key is 1 to MaxKeyLen bytes of printable ASCII.
func ParseKey(v string) (string, error) {
	v = strings.Trim(v, " \t")
	if strings.HasPrefix(v, `"`) {
		var err error
		if v, err = unquote(v); err != nil {
			return "", err
		}
	}
	if v == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(v) > MaxKeyLen {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, MaxKeyLen)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "", fmt.Errorf("%w: byte %d is not printable ASCII", ErrInvalidKey, i)
		}
	}
	return v, nil
}

// unquote decodes an RFC 8941 sf-string (§3.3.3).
func unquote(v string) (string, error) {
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			if i+1 >= len(v) || (v[i+1] != '"' && v[i+1] != '\\') {
				return "", fmt.Errorf("%w: bad escape at byte %d", ErrInvalidKey, i)
			}
			b.WriteByte(v[i+1])
			i++
		case '"':
			if i != len(v)-1 {
				return "", fmt.Errorf("%w: text after the closing quote", ErrInvalidKey)
			}
			return b.String(), nil
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("%w: missing closing quote", ErrInvalidKey)
}

// MsgID is the broker message id (Nats-Msg-Id) of an event published to
// topic: derived from the Idempotency-Key when the request had one, else from
// the event's source and id. Keys are scoped to the topic, so the same event
// may be published once to each of several topics.
func MsgID(topic, key string, ev *event.Event) string {
	var room [512]byte
	b := room[:0]
	if key != "" {
		b = appendParts(b, topic, "key", key)
	} else {
		b = appendParts(b, topic, "event", ev.Source(), ev.ID())
	}
	return encode(sha256.Sum256(b))
}

// hashInPlace bounds the attributes and data Fingerprint hashes from a
// buffer on the stack; beyond it the data is streamed into the hash.
const hashInPlace = 2048

// Fingerprint is a digest of ev's attributes and data. Take it before the
// sidecar fills in defaults (time, a raw event's id), so that it covers what
// the client sent and a retry of the same request matches.
func Fingerprint(ev *event.Event) string {
	var room [hashInPlace]byte
	b := room[:0]
	wire.EachAttribute(ev, func(name, value string) { b = appendParts(b, name, value) })
	b = appendParts(b, "data")
	data := ev.Data()
	if len(b)+len(data) <= hashInPlace {
		return encode(sha256.Sum256(append(b, data...)))
	}
	h := sha256.New()
	h.Write(b)
	h.Write(data)
	return encode([sha256.Size]byte(h.Sum(nil)))
}

// write feeds parts to h, each terminated by a NUL so that no two different
// part lists hash the same bytes (parts never contain NUL: validation
// refuses control characters).
func write(h hash.Hash, parts ...string) {
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
}

// appendParts appends parts to b as write feeds them to a hash.
func appendParts(b []byte, parts ...string) []byte {
	for _, p := range parts {
		b = append(b, p...)
		b = append(b, 0)
	}
	return b
}

// encode is a digest in unpadded base64url.
func encode(sum [sha256.Size]byte) string {
	var out [43]byte // base64.RawURLEncoding.EncodedLen(sha256.Size)
	base64.RawURLEncoding.Encode(out[:], sum[:])
	return string(out[:])
}

package egress

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// secretPrefix starts every Standard Webhooks secret.
const secretPrefix = "whsec_"

// errBadSecret is why a signing secret is refused; it never holds the
// secret.
var errBadSecret = errors.New(`signing_secret must be "whsec_" followed by base64`)

// WebhookID is the Standard Webhooks message id of an event: "msg_" and the
// unpadded base64url SHA-256 of source, a NUL byte and id. It is the same
// for every attempt (and every redelivery) of the event, so receivers can
// deduplicate by it, and has no '.', which separates the signed parts.
// Safe for concurrent use.
func WebhookID(ev *event.Event) string {
	sum := sha256.Sum256([]byte(ev.Source() + "\x00" + ev.ID()))
	return "msg_" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// newSigner checks a Standard Webhooks secret, "whsec_" and the standard,
// padded base64 of a non-empty key, and returns its signer.
func newSigner(secret string) (*standardwebhooks.Webhook, error) {
	key, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok || key == "" {
		return nil, errBadSecret
	}
	if _, err := base64.StdEncoding.Strict().DecodeString(key); err != nil {
		return nil, errBadSecret
	}
	s, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, errBadSecret
	}
	return s, nil
}

// headerSetter is a request's header as sign writes it (a headerWriter;
// an http.Header in tests).
type headerSetter interface{ Set(key, value string) }

// sign sets the Standard Webhooks headers webhook-id, webhook-timestamp
// (now, in Unix seconds) and webhook-signature ("v1,<base64 HMAC-SHA256 of
// id.timestamp.body>") on h.
func sign(h headerSetter, s *standardwebhooks.Webhook, id string, now time.Time, body []byte) error {
	sig, err := s.Sign(id, now, body)
	if err != nil {
		return fmt.Errorf("egress: sign webhook: %w", err)
	}
	h.Set(standardwebhooks.HeaderWebhookID, id)
	h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(standardwebhooks.HeaderWebhookSignature, sig)
	return nil
}

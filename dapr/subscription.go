package dapr

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Kind is where a Subscription comes from, named as Dapr's metadata API
// names it.
type Kind string

// The kinds of subscription the sidecar serves.
const (
	// Programmatic subscriptions are the app's answer to GET
	// /dapr/subscribe (or ListTopicSubscriptions).
	Programmatic Kind = "PROGRAMMATIC"
	// Declarative subscriptions are Subscription resources in
	// dapr.resources_path.
	Declarative Kind = "DECLARATIVE"
)

// Subscription is one Dapr subscription: the app's routes for the events
// of a topic of a pub/sub component. The zero value subscribes to
// nothing; ParseSubscribe and LoadResources make them.
type Subscription struct {
	// PubSub is the pub/sub component's name, Topic the topic.
	PubSub, Topic string
	// Rules route each event, in order: the first whose Match is true (or
	// nil) gives the path. The default route, when there is one, is the
	// last rule, without a Match. Never empty.
	Rules []Rule
	// DeadLetterTopic receives the events the app drops, or that no rule
	// matches; "" when none is named.
	DeadLetterTopic string
	// Metadata is the subscription's metadata, each value unquoted once
	// when it arrived JSON-encoded twice (see Unquote).
	Metadata Metadata
	// Bulk is bulkSubscribe.enabled: such a subscription is not served.
	Bulk bool
	// Kind is where it comes from.
	Kind Kind
	// Resource names a declarative subscription's source, "<file>: <metadata.name>";
	// "" for a programmatic one.
	Resource string
}

// Raw reports whether the subscription asks for raw delivery (metadata
// rawPayload true, see Metadata.RawPayload); a bad value is false.
func (s Subscription) Raw() bool {
	raw, _ := s.Metadata.RawPayload()
	return raw
}

// maxNameBytes bounds the names Name makes.
const maxNameBytes = 128

// Name is the name of the sidecar's durable subscription that delivers s
// to the app appID, shared by every replica of the app:
// "<appID>-<pubsub>-<topic>". When that has characters outside A-Z, a-z,
// 0-9, "_" and "-" (a topic's dots), they become "_" and "-" and the first
// 8 hex digits of the SHA-256 of the unchanged name are added, so that
// topics "a.b" and "a_b" get different names; so is a name longer than
// 128 bytes, cut to fit. The name depends on nothing else, so every
// replica computes the same one. Safe for concurrent use.
func (s Subscription) Name(appID string) string {
	name := appID + "-" + s.PubSub + "-" + s.Topic
	clean := strings.Map(func(r rune) rune {
		if isNameRune(r) {
			return r
		}
		return '_'
	}, name)
	if clean == name && len(name) <= maxNameBytes {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:4])
	if len(clean) > maxNameBytes-len(suffix) {
		clean = clean[:maxNameBytes-len(suffix)]
	}
	return clean + suffix
}

func isNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}

// subscriptionJSON is one entry of the answer to GET /dapr/subscribe, as
// Dapr reads it (pkg/runtime/pubsub/subscriptions.go).
type subscriptionJSON struct {
	PubSubName      string                     `json:"pubsubname"`
	Topic           string                     `json:"topic"`
	DeadLetterTopic string                     `json:"deadLetterTopic"`
	Metadata        map[string]json.RawMessage `json:"metadata"`
	Route           string                     `json:"route"`
	Routes          routesJSON                 `json:"routes"`
	BulkSubscribe   struct {
		Enabled bool `json:"enabled"`
	} `json:"bulkSubscribe"`
}

type routesJSON struct {
	Rules   []ruleJSON `json:"rules"`
	Default string     `json:"default"`
}

type ruleJSON struct {
	Match string `json:"match"`
	Path  string `json:"path"`
}

// ParseSubscribe reads the app's answer to GET /dapr/subscribe: a JSON
// array of {"pubsubname", "topic", "route" | "routes": {"rules": [{"match",
// "path"}], "default"}, "deadLetterTopic", "metadata", "bulkSubscribe"}.
// Rules are taken in order, then routes.default, else the v1 route; a
// path without a leading "/" gets one. Metadata values may be any JSON
// scalar; strings are unquoted once more when the SDK JSON-encoded them
// twice (the JavaScript SDK sends "\"true\""). An empty body is no
// subscriptions; a body that is not a JSON array is err. Entries without
// a pub/sub name, topic or route, or with a match that does not compile,
// are left out, each named by an error of skipped, as Dapr drops an entry
// without a route. The subscriptions are Programmatic.
func ParseSubscribe(body []byte) (subs []Subscription, skipped []error, err error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil, nil
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(body, &entries); err != nil {
		return nil, nil, fmt.Errorf("dapr: subscriptions: not a JSON array: %w", err)
	}
	for i, raw := range entries {
		s, err := parseEntry(raw)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("dapr: subscriptions[%d]: %w", i, err))
			continue
		}
		subs = append(subs, s)
	}
	return subs, skipped, nil
}

// parseEntry reads one entry of the answer to GET /dapr/subscribe.
func parseEntry(raw json.RawMessage) (Subscription, error) {
	var e subscriptionJSON
	if err := json.Unmarshal(raw, &e); err != nil {
		return Subscription{}, err
	}
	md, err := metadataValues(e.Metadata)
	if err != nil {
		return Subscription{}, err
	}
	return newSubscription(spec{
		pubsub: e.PubSubName, topic: e.Topic, rules: e.Routes.Rules, dflt: e.Routes.Default, route: e.Route,
		deadLetter: e.DeadLetterTopic, metadata: md, bulk: e.BulkSubscribe.Enabled, kind: Programmatic,
	})
}

// metadataValues is a subscription's metadata with every value a string:
// JSON strings decoded and unquoted once more (Unquote), other scalars as
// their JSON text.
func metadataValues(raw map[string]json.RawMessage) (Metadata, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	md := make(Metadata, len(raw))
	for k, v := range raw {
		var s string
		switch {
		case json.Unmarshal(v, &s) == nil:
			md[k] = Unquote(s)
		case len(v) > 0 && (v[0] == '{' || v[0] == '['):
			return nil, fmt.Errorf("metadata %q: want a string, got %s", k, v)
		default:
			md[k] = string(v)
		}
	}
	return md, nil
}

// spec is a subscription as either source gives it.
type spec struct {
	pubsub, topic, deadLetter string
	rules                     []ruleJSON
	dflt, route               string
	metadata                  Metadata
	bulk                      bool
	kind                      Kind
	resource                  string
	// verbatim keeps the paths as given (a gRPC app's, which Dapr sends
	// as they are) and, when no rule is left, routes every event to "".
	verbatim bool
}

// newSubscription checks sp and compiles its rules.
func newSubscription(sp spec) (Subscription, error) {
	switch {
	case sp.pubsub == "":
		return Subscription{}, errors.New("pubsubname is empty")
	case sp.topic == "":
		return Subscription{}, fmt.Errorf("pub/sub %q: topic is empty", sp.pubsub)
	}
	s := Subscription{PubSub: sp.pubsub, Topic: sp.topic, DeadLetterTopic: sp.deadLetter, Metadata: sp.metadata,
		Bulk: sp.bulk, Kind: sp.kind, Resource: sp.resource}
	for i, r := range sp.rules {
		rule, err := newRule(r.Match, sp.path(r.Path))
		if err != nil {
			return Subscription{}, fmt.Errorf("topic %q: routes.rules[%d]: %w", sp.topic, i, err)
		}
		s.Rules = append(s.Rules, rule)
	}
	switch last := orDefault(sp.dflt, sp.route); {
	case last != "":
		s.Rules = append(s.Rules, Rule{Path: sp.path(last)})
	case sp.verbatim && len(s.Rules) == 0:
		s.Rules = []Rule{{Path: ""}}
	}
	if len(s.Rules) == 0 {
		return Subscription{}, fmt.Errorf("topic %q: no route", sp.topic)
	}
	return s, nil
}

// path is the route p as sp routes to it: as it is when verbatim, else
// with a leading "/" (routePath).
func (sp spec) path(p string) string {
	if sp.verbatim {
		return p
	}
	return routePath(p)
}

// routePath is an app route with a leading "/", as Dapr posts to it; ""
// stays "" (a gRPC app's topic handler).
func routePath(p string) string {
	if p == "" || strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}

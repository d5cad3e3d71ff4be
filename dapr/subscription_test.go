package dapr

import (
	"strings"
	"testing"
)

// jsSubscribe is what @dapr/dapr 3.18.0's DaprServer answers to GET
// /dapr/subscribe (design notes §2.3), byte for byte.
const jsSubscribe = `[{"pubsubname":"pubsub","topic":"orders","route":"/pubsub--orders--default"},
 {"pubsubname":"pubsub","topic":"payments","metadata":{"rawPayload":"\"true\""},"route":"/pubsub--payments--pay"},
 {"pubsubname":"pubsub","topic":"shipments","metadata":{"maxDeliverCount":"3"},
  "routes":{"default":"/pubsub--shipments--ship/slow",
            "rules":[{"match":"event.type == \"ship.fast\"","path":"/pubsub--shipments--ship/fast"}]},
  "deadLetterTopic":"shipments-dead"},
 {"pubsubname":"pubsub","topic":"bulk","route":"/pubsub--bulk--default",
  "bulkSubscribe":{"enabled":true,"maxMessagesCount":10,"maxAwaitDurationMs":100}}]`

// goSubscribe is what github.com/dapr/go-sdk v1.15.0's service/http
// answers (design notes §1.4).
const goSubscribe = `[{"pubsubname":"pubsub","topic":"orders","route":"/orders","deadLetterTopic":""},
  {"pubsubname":"pubsub","topic":"ships","routes":{"rules":[{"match":"event.type == \"fast\"","path":"/ships/fast"}],"default":"/ships/slow"},"deadLetterTopic":"dead"},
  {"pubsubname":"pubsub","topic":"raw","route":"/raw","metadata":{"rawPayload":"true"},"deadLetterTopic":""}]`

// sub is a Subscription as the tests compare them: rules as "match ->
// path" strings.
type sub struct {
	pubsub, topic, deadLetter string
	rules                     []string
	md                        Metadata
	bulk, raw                 bool
}

func summary(s Subscription) sub {
	out := sub{pubsub: s.PubSub, topic: s.Topic, deadLetter: s.DeadLetterTopic, md: s.Metadata, bulk: s.Bulk, raw: s.Raw()}
	for _, r := range s.Rules {
		m := ""
		if r.Match != nil {
			m = r.Match.String()
		}
		out.rules = append(out.rules, m+" -> "+r.Path)
	}
	return out
}

func TestParseSubscribeSDKs(t *testing.T) {
	tests := []struct {
		name, body string
		want       []sub
	}{
		{"JavaScript SDK", jsSubscribe, []sub{
			{pubsub: "pubsub", topic: "orders", rules: []string{" -> /pubsub--orders--default"}},
			{pubsub: "pubsub", topic: "payments", rules: []string{" -> /pubsub--payments--pay"}, md: Metadata{"rawPayload": "true"}, raw: true},
			{pubsub: "pubsub", topic: "shipments", deadLetter: "shipments-dead", md: Metadata{"maxDeliverCount": "3"},
				rules: []string{`event.type == "ship.fast" -> /pubsub--shipments--ship/fast`, " -> /pubsub--shipments--ship/slow"}},
			{pubsub: "pubsub", topic: "bulk", rules: []string{" -> /pubsub--bulk--default"}, bulk: true},
		}},
		{"Go SDK", goSubscribe, []sub{
			{pubsub: "pubsub", topic: "orders", rules: []string{" -> /orders"}},
			{pubsub: "pubsub", topic: "ships", deadLetter: "dead",
				rules: []string{`event.type == "fast" -> /ships/fast`, " -> /ships/slow"}},
			{pubsub: "pubsub", topic: "raw", rules: []string{" -> /raw"}, md: Metadata{"rawPayload": "true"}, raw: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subs, skipped, err := ParseSubscribe([]byte(tt.body))
			if err != nil || len(skipped) > 0 {
				t.Fatalf("ParseSubscribe: %v, skipped %v", err, skipped)
			}
			if len(subs) != len(tt.want) {
				t.Fatalf("%d subscriptions, want %d", len(subs), len(tt.want))
			}
			for i, s := range subs {
				if got := summary(s); !sameSub(got, tt.want[i]) {
					t.Errorf("subscription %d = %+v, want %+v", i, got, tt.want[i])
				}
				if s.Kind != Programmatic || s.Resource != "" {
					t.Errorf("subscription %d: kind %q, resource %q", i, s.Kind, s.Resource)
				}
			}
		})
	}
}

func sameSub(a, b sub) bool {
	if a.pubsub != b.pubsub || a.topic != b.topic || a.deadLetter != b.deadLetter || a.bulk != b.bulk || a.raw != b.raw ||
		strings.Join(a.rules, "|") != strings.Join(b.rules, "|") || len(a.md) != len(b.md) {
		return false
	}
	for k, v := range a.md {
		if b.md[k] != v {
			return false
		}
	}
	return true
}

func TestParseSubscribeRoutes(t *testing.T) {
	tests := []struct {
		name, entry string
		rules       []string
	}{
		{"v1 route", `{"pubsubname":"p","topic":"t","route":"/a"}`, []string{" -> /a"}},
		{"route without a slash", `{"pubsubname":"p","topic":"t","route":"a"}`, []string{" -> /a"}},
		{"default wins over route", `{"pubsubname":"p","topic":"t","route":"/a","routes":{"default":"/d"}}`, []string{" -> /d"}},
		{"rules then route", `{"pubsubname":"p","topic":"t","route":"/a","routes":{"rules":[{"match":"event.type == 'x'","path":"/x"}]}}`,
			[]string{"event.type == 'x' -> /x", " -> /a"}},
		{"rules only", `{"pubsubname":"p","topic":"t","routes":{"rules":[{"match":"true","path":"/x"},{"match":"","path":"/any"}]}}`,
			[]string{"true -> /x", " -> /any"}},
		{"numeric metadata", `{"pubsubname":"p","topic":"t","route":"/a","metadata":{"n":3,"b":true}}`, []string{" -> /a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subs, skipped, err := ParseSubscribe([]byte("[" + tt.entry + "]"))
			if err != nil || len(skipped) > 0 || len(subs) != 1 {
				t.Fatalf("ParseSubscribe = %v, %v, %v", subs, skipped, err)
			}
			if got := summary(subs[0]).rules; strings.Join(got, "|") != strings.Join(tt.rules, "|") {
				t.Errorf("rules %q, want %q", got, tt.rules)
			}
		})
	}
}

func TestParseSubscribeSkips(t *testing.T) {
	body := `[{"pubsubname":"p","topic":"ok","route":"/ok"},
		{"pubsubname":"p","topic":"noroute"},
		{"topic":"nopubsub","route":"/a"},
		{"pubsubname":"p","route":"/a"},
		{"pubsubname":"p","topic":"badcel","routes":{"rules":[{"match":"event.type ==","path":"/x"}],"default":"/d"}},
		{"pubsubname":"p","topic":"objmeta","route":"/a","metadata":{"m":{"x":1}}},
		"not an object"]`
	subs, skipped, err := ParseSubscribe([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || subs[0].Topic != "ok" {
		t.Errorf("subscriptions %v, want only ok", subs)
	}
	wants := []string{`subscriptions[1]: topic "noroute": no route`, "subscriptions[2]: pubsubname is empty",
		`subscriptions[3]: pub/sub "p": topic is empty`, `subscriptions[4]: topic "badcel": routes.rules[0]: dapr: match "event.type =="`,
		`subscriptions[5]: metadata "m": want a string`, "subscriptions[6]: json"}
	if len(skipped) != len(wants) {
		t.Fatalf("skipped %v, want %d", skipped, len(wants))
	}
	for i, w := range wants {
		if !strings.Contains(skipped[i].Error(), w) {
			t.Errorf("skipped[%d] = %v, want %q", i, skipped[i], w)
		}
	}
}

func TestParseSubscribeBody(t *testing.T) {
	for _, body := range []string{"", " \n", "[]", "null"} {
		subs, skipped, err := ParseSubscribe([]byte(body))
		if err != nil || len(subs) != 0 || len(skipped) != 0 {
			t.Errorf("ParseSubscribe(%q) = %v, %v, %v; want none", body, subs, skipped, err)
		}
	}
	for _, body := range []string{"{}", "<html>", `"x"`} {
		if _, _, err := ParseSubscribe([]byte(body)); err == nil || !strings.Contains(err.Error(), "not a JSON array") {
			t.Errorf("ParseSubscribe(%q) error = %v, want not a JSON array", body, err)
		}
	}
}

func TestName(t *testing.T) {
	tests := []struct {
		pubsub, topic, want string
	}{
		{"pubsub", "orders", "app-pubsub-orders"},
		{"pubsub", "orders.eu", "app-pubsub-orders_eu-"},
		{"pubsub", "orders_eu", "app-pubsub-orders_eu"},
		{"pubsub", "a/b", "app-pubsub-a_b-"},
	}
	for _, tt := range tests {
		got := Subscription{PubSub: tt.pubsub, Topic: tt.topic}.Name("app")
		if strings.HasSuffix(tt.want, "-") {
			if !strings.HasPrefix(got, tt.want) || len(got) != len(tt.want)+8 {
				t.Errorf("Name(%s, %s) = %q, want %q and 8 hex digits", tt.pubsub, tt.topic, got, tt.want)
			}
		} else if got != tt.want {
			t.Errorf("Name(%s, %s) = %q, want %q", tt.pubsub, tt.topic, got, tt.want)
		}
		if !namePattern(got) {
			t.Errorf("Name %q has characters a subscription name cannot", got)
		}
	}
	a := Subscription{PubSub: "p", Topic: "a.b"}.Name("app")
	b := Subscription{PubSub: "p", Topic: "a_b"}.Name("app")
	c := Subscription{PubSub: "p", Topic: "a.b"}.Name("app")
	if a == b || a != c {
		t.Errorf("names %q, %q, %q: want the first two different, the first and last equal", a, b, c)
	}
	long := Subscription{PubSub: "p", Topic: strings.Repeat("t", 300)}.Name("app")
	if len(long) != maxNameBytes {
		t.Errorf("a long name is %d bytes, want %d", len(long), maxNameBytes)
	}
}

func namePattern(s string) bool {
	for _, r := range s {
		if !isNameRune(r) {
			return false
		}
	}
	return s != ""
}

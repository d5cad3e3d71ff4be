package dapr

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles writes name -> content into a new directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const v2Orders = `apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: orders-sub
spec:
  pubsubname: pubsub
  topic: orders
  routes:
    rules:
      - match: event.type == "order.created"
        path: /orders/created
    default: /orders
  deadLetterTopic: orders-dead
  metadata:
    rawPayload: "true"
scopes: [orders]
`

func TestLoadResources(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a-orders.yaml": v2Orders,
		"b-multi.yml": `apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: payments-sub}
spec: {pubsubname: pubsub, topic: payments, route: payments}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: pubsub}
spec: {type: pubsub.redis, version: v1}
---
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: other-app}
spec: {pubsubname: pubsub, topic: x, routes: {default: /x}}
scopes: [billing]
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: bulk}
spec:
  pubsubname: pubsub
  topic: bulk
  routes: {default: /bulk}
  bulkSubscribe: {enabled: true, maxMessagesCount: 100}
`,
		"c-notes.txt": "not: [yaml",
	})
	subs, err := LoadResources(dir, "orders")
	if err != nil {
		t.Fatalf("LoadResources: %v", err)
	}
	want := []struct {
		sub      sub
		resource string
	}{
		{sub{pubsub: "pubsub", topic: "orders", deadLetter: "orders-dead", md: Metadata{"rawPayload": "true"}, raw: true,
			rules: []string{`event.type == "order.created" -> /orders/created`, " -> /orders"}}, "a-orders.yaml: orders-sub"},
		{sub{pubsub: "pubsub", topic: "payments", rules: []string{" -> /payments"}}, "b-multi.yml: payments-sub"},
		{sub{pubsub: "pubsub", topic: "bulk", rules: []string{" -> /bulk"}, bulk: true}, "b-multi.yml: bulk"},
	}
	if len(subs) != len(want) {
		t.Fatalf("%d subscriptions, want %d: %+v", len(subs), len(want), subs)
	}
	for i, w := range want {
		if got := summary(subs[i]); !sameSub(got, w.sub) {
			t.Errorf("subscription %d = %+v, want %+v", i, got, w.sub)
		}
		if subs[i].Kind != Declarative || subs[i].Resource != w.resource {
			t.Errorf("subscription %d: kind %q, resource %q; want DECLARATIVE, %q", i, subs[i].Kind, subs[i].Resource, w.resource)
		}
	}
}

func TestLoadResourcesV1IgnoresRoutesAndV2Route(t *testing.T) {
	dir := writeFiles(t, map[string]string{"s.yaml": `apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: one}
spec: {pubsubname: pubsub, topic: one, route: /one, routes: {default: /ignored}}
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata: {name: two}
spec: {pubsubname: pubsub, topic: two, route: /ignored, routes: {default: /two}}
`})
	subs, err := LoadResources(dir, "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 2 || subs[0].Rules[0].Path != "/one" || subs[1].Rules[0].Path != "/two" {
		t.Errorf("subscriptions %+v, want /one and /two", subs)
	}
}

func TestLoadResourcesErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"bad YAML", map[string]string{"s.yaml": v2Orders + "---\nkind: [\n"}, []string{"s.yaml: document 2"}},
		{"wrong type", map[string]string{"s.yaml": "kind: Subscription\nspec: {topic: [1]}\n"}, []string{"s.yaml: document 1"}},
		{"unknown version", map[string]string{"s.yaml": strings.Replace(v2Orders, "v2alpha1", "v3", 1)},
			[]string{"s.yaml: document 1", `subscription "orders-sub": apiVersion "dapr.io/v3"`}},
		{"no route", map[string]string{"s.yaml": "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: n}\nspec: {pubsubname: p, topic: t}\n"},
			[]string{"s.yaml: document 1", `subscription "n": topic "t": no route`}},
		{"bad match", map[string]string{"s.yaml": strings.Replace(v2Orders, `event.type == "order.created"`, `event.type ==`, 1)},
			[]string{"s.yaml: document 1", `routes.rules[0]: dapr: match "event.type =="`}},
		{"no name", map[string]string{"s.yaml": "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nspec: {pubsubname: p, topic: t, routes: {default: /d}}\n"},
			[]string{"s.yaml: document 1", "metadata.name is empty"}},
		{"same name twice", map[string]string{"a.yaml": v2Orders, "b.yaml": "---\n" + v2Orders},
			[]string{"b.yaml: document 1", `subscription "orders-sub" is also`, "a.yaml: document 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subs, err := LoadResources(writeFiles(t, tt.files), "orders")
			if err == nil {
				t.Fatalf("LoadResources = %+v, want an error", subs)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if subs != nil {
				t.Errorf("subscriptions %+v with the error, want none", subs)
			}
		})
	}
}

func TestLoadResourcesMissingDir(t *testing.T) {
	if _, err := LoadResources(filepath.Join(t.TempDir(), "missing"), "app"); err == nil {
		t.Error("LoadResources of a missing directory: no error")
	}
}

package daemon

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// daprAppServer is a Dapr app: it lists one programmatic subscription, of the
// topic orders with a rule, and hands each delivery (path and body) to
// the returned channel.
func daprAppServer(t *testing.T) (*httptest.Server, <-chan delivery) {
	t.Helper()
	got := make(chan delivery, 16)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/dapr/subscribe" {
			_, _ = io.WriteString(w, `[{"pubsubname":"pubsub","topic":"orders","metadata":{"rawPayload":"\"false\""},
				"routes":{"rules":[{"match":"event.type == \"big\"","path":"/big"}],"default":"/orders"},"deadLetterTopic":"dead"}]`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		h.Set("path", r.URL.Path)
		got <- delivery{header: h, body: string(body)}
	}))
	t.Cleanup(app.Close)
	return app, got
}

// daprConfig is testConfig without subscriptions, for the Dapr app at
// url, with a resources directory holding one declarative subscription.
func daprConfig(t *testing.T, url string) config.Config {
	t.Helper()
	cfg := testConfig(t, "")
	cfg.Subscriptions = nil
	host, port, err := net.SplitHostPort(strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dapr.AppHost = host
	cfg.Dapr.AppPort, _ = strconv.Atoi(port)
	cfg.Dapr.ResourcesPath = t.TempDir()
	yaml := "apiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata: {name: audit}\nspec: {pubsubname: pubsub, topic: audit, route: /audit}\n"
	if err := os.WriteFile(filepath.Join(cfg.Dapr.ResourcesPath, "audit.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// metadataSubscriptions is GET /v1.0/metadata's subscriptions.
func metadataSubscriptions(t *testing.T, base string) []map[string]any {
	t.Helper()
	resp, err := http.Get(base + "/v1.0/metadata")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m struct {
		Subscriptions []map[string]any `json:"subscriptions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m.Subscriptions
}

// TestDaprSubscriptionsDelivered: the daemon asks the app for its
// subscriptions, reads the declarative one, lists both in /v1.0/metadata
// once their consumers exist, and delivers a Dapr publish to its route.
func TestDaprSubscriptionsDelivered(t *testing.T) {
	app, got := daprAppServer(t)
	log, _ := testLogger(t)
	m, err := New(daprConfig(t, app.URL), log)
	if err != nil {
		t.Fatal(err)
	}
	r := start(t, m)
	base := "http://" + m.Addrs().HTTP.String()
	r.waitReady(t, base)
	var subs []map[string]any
	poll.Until(t, wait, "two subscriptions in /v1.0/metadata", func() bool {
		subs = metadataSubscriptions(t, base)
		return len(subs) == 2
	})
	byTopic := map[string]string{}
	for _, s := range subs {
		b, _ := json.Marshal(s)
		byTopic[s["topic"].(string)] = string(b)
	}
	want := map[string]string{
		"audit": `{"deadLetterTopic":"","pubsubname":"pubsub","rules":[{"path":"/audit"}],"topic":"audit","type":"DECLARATIVE"}`,
		"orders": `{"deadLetterTopic":"dead","metadata":{"rawPayload":"false"},"pubsubname":"pubsub",` +
			`"rules":[{"match":"event.type == \"big\"","path":"/big"},{"path":"/orders"}],"topic":"orders","type":"PROGRAMMATIC"}`,
	}
	for topic, w := range want {
		if byTopic[topic] != w {
			t.Errorf("metadata of %s = %s, want %s", topic, byTopic[topic], w)
		}
	}
	resp, err := http.Post(base+"/v1.0/publish/pubsub/orders", "application/json", strings.NewReader(`{"orderId":1}`))
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("publish: %v %v, want 204", resp, err)
	}
	resp.Body.Close()
	select {
	case d := <-got:
		var env map[string]any
		if err := json.Unmarshal([]byte(d.body), &env); err != nil {
			t.Fatalf("delivery %q: %v", d.body, err)
		}
		if d.header.Get("path") != "/orders" || env["source"] != "daemon-test" || env["topic"] != "orders" || env["pubsubname"] != "pubsub" {
			t.Errorf("delivery to %s: %s", d.header.Get("path"), d.body)
		}
	case <-time.After(wait):
		t.Fatalf("no delivery within %s", wait)
	}
}

func TestNewDaprResources(t *testing.T) {
	log, _ := testLogger(t)
	cfg := daprConfig(t, "http://127.0.0.1:1")
	cfg.Dapr.AppPort = 0
	if _, err := New(cfg, log); !errors.Is(err, errNoAppPort) {
		t.Errorf("New with resources and no app port = %v, want errNoAppPort", err)
	}
	cfg = daprConfig(t, "http://127.0.0.1:1")
	bad := filepath.Join(cfg.Dapr.ResourcesPath, "bad.yaml")
	if err := os.WriteFile(bad, []byte("kind: Subscription\napiVersion: dapr.io/v9\nmetadata: {name: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, log); err == nil || !strings.Contains(err.Error(), bad+": document 1") {
		t.Errorf("New with a bad resource = %v, want an error naming %s", err, bad)
	}
}

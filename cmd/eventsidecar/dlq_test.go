package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/egress"
	"github.com/eventsidecar/eventsidecar/ingress"
	"github.com/eventsidecar/eventsidecar/server"
)

func TestParseDLQ(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantMethod string
		wantURL    string
		wantBody   string
	}{
		{"list", []string{"list", "--subscription", "orders", "--addr", "h:1"}, "GET", "http://h:1/v1/subscriptions/orders/deadletters", ""},
		{"list limit", []string{"list", "--subscription=orders", "--limit", "5", "--addr", "h:1"}, "GET", "http://h:1/v1/subscriptions/orders/deadletters?limit=5", ""},
		{"replay all", []string{"replay", "--subscription", "orders", "--addr", "h:1"}, "POST", "http://h:1/v1/subscriptions/orders/deadletters/replay", `{}`},
		{"replay ids", []string{"replay", "--subscription", "orders", "--id", "a", "--id", "b c", "--addr", "h:1"}, "POST", "http://h:1/v1/subscriptions/orders/deadletters/replay", `{"ids":["a","b c"]}`},
		{"purge all", []string{"purge", "--subscription", "orders", "--addr", "h:1"}, "DELETE", "http://h:1/v1/subscriptions/orders/deadletters", ""},
		{"purge ids", []string{"purge", "--subscription", "orders", "--id", "a&b", "--id", "c", "--addr", "h:1"}, "DELETE", "http://h:1/v1/subscriptions/orders/deadletters?id=a%26b&id=c", ""},
		{"escaped name", []string{"list", "--subscription", "a/b", "--addr", "h:1"}, "GET", "http://h:1/v1/subscriptions/a%2Fb/deadletters", ""},
		{"default address", []string{"list", "--subscription", "orders"}, "GET", "http://127.0.0.1:3600/v1/subscriptions/orders/deadletters", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseDLQ(tt.args, io.Discard)
			if err != nil {
				t.Fatalf("parseDLQ: %v", err)
			}
			req, err := c.request()
			if err != nil {
				t.Fatalf("request: %v", err)
			}
			var body []byte
			if req.Body != nil {
				body, _ = io.ReadAll(req.Body)
			}
			if req.Method != tt.wantMethod || req.URL.String() != tt.wantURL || string(body) != tt.wantBody {
				t.Errorf("request = %s %s %s, want %s %s %s", req.Method, req.URL, body, tt.wantMethod, tt.wantURL, tt.wantBody)
			}
		})
	}
}

func TestDLQUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no action", []string{"dlq"}, 2},
		{"unknown action", []string{"dlq", "show", "--subscription", "x"}, 2},
		{"no subscription", []string{"dlq", "list"}, 2},
		{"extra argument", []string{"dlq", "list", "--subscription", "x", "more"}, 2},
		{"id on list", []string{"dlq", "list", "--subscription", "x", "--id", "a"}, 2},
		{"limit on replay", []string{"dlq", "replay", "--subscription", "x", "--limit", "3"}, 2},
		{"negative limit", []string{"dlq", "list", "--subscription", "x", "--limit", "-1"}, 2},
		{"empty id", []string{"dlq", "purge", "--subscription", "x", "--id", ""}, 2},
		{"help", []string{"dlq", "list", "-h"}, 0},
		{"help action", []string{"dlq", "help"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if got := run(tt.args, strings.NewReader(""), &stdout, &stderr); got != tt.want {
				t.Errorf("exit = %d, want %d; stderr %s", got, tt.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), "eventsidecar dlq list") {
				t.Errorf("stderr lacks the usage: %s", stderr.String())
			}
		})
	}
}

// dlqSubs is the one subscription "orders" over the real dead-letter store.
type dlqSubs struct {
	b   *broker.Client
	sub config.Subscription
}

func (s dlqSubs) Stats(context.Context) []egress.Stats {
	return []egress.Stats{{Name: s.sub.Name, Topic: s.sub.Topic, Endpoint: s.sub.Endpoint}}
}

func (s dlqSubs) DeadLetters(name string) (*egress.DeadLetters, error) {
	if name != s.sub.Name {
		return nil, fmt.Errorf("%w: %q", egress.ErrUnknownSubscription, name)
	}
	return egress.NewDeadLetters(s.b, s.sub), nil
}

// startAdmin serves the real HTTP API, with API token "tok" and the
// subscription "orders" holding the dead letters a and b, over an embedded
// broker, and returns a config file pointing at it.
func startAdmin(t *testing.T) string {
	t.Helper()
	cfg := config.Default()
	cfg.Broker.Embedded.StoreDir = t.TempDir()
	cfg.HTTP.APIToken = "tok"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Open(ctx, cfg.Broker, "dlq test", log)
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	sub := config.DefaultSubscription()
	sub.Name, sub.Topic, sub.Endpoint = "orders", "orders.>", "http://127.0.0.1:8080/events"
	storeDeadLetters(t, b, sub, "a", "b")
	reg := prometheus.NewRegistry()
	api, err := ingress.New(cfg, b, reg)
	if err != nil {
		t.Fatal(err)
	}
	admin := egress.NewAdmin(dlqSubs{b: b, sub: sub}, cfg.HTTP.ReadTimeout, log)
	srv := httptest.NewServer(server.New(cfg.HTTP, server.Handlers{Publish: api, Admin: admin, Ready: b.Ready, Rejected: api.Rejected}, reg, log).Handler())
	t.Cleanup(srv.Close)
	path := filepath.Join(t.TempDir(), "sidecar.yaml")
	yaml := fmt.Sprintf("http:\n  listen: %s\n  api_token: tok\n", strings.TrimPrefix(srv.URL, "http://"))
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func storeDeadLetters(t *testing.T, b *broker.Client, sub config.Subscription, ids ...string) {
	t.Helper()
	for _, id := range ids {
		ev := event.New()
		ev.SetID(id)
		ev.SetSource("/test")
		ev.SetType("com.example.test")
		for name, value := range map[string]string{"dlqreason": "HTTP 410", "dlqstatus": "410", "dlqattempts": "1", "dlqsubscription": sub.Name} {
			ev.SetExtension(name, value)
		}
		if r := b.Publish(context.Background(), []broker.Message{{Topic: sub.DeadLetter(), Event: &ev}})[0]; r.Err != nil {
			t.Fatalf("store dead letter %q: %v", id, r.Err)
		}
	}
}

func TestDLQRoundTrip(t *testing.T) {
	t.Setenv("EVENTSIDECAR_API_TOKEN", "")
	path := startAdmin(t)
	steps := []struct {
		name    string
		args    []string
		want    int
		wantOut string // a JSON answer, or what stderr must contain
	}{
		{"list", []string{"list", "--limit", "1"}, 0, `{"ids":["a"]}`},
		{"replay one", []string{"replay", "--id", "a"}, 0, `{"replayed":1}`},
		{"list after replay", []string{"list"}, 0, `{"ids":["b"]}`},
		{"purge all", []string{"purge"}, 0, `{"purged":1}`},
		{"list after purge", []string{"list"}, 0, `{"ids":[]}`},
		{"bad limit", []string{"list", "--limit", "5000"}, 1, "400 Bad Request: query parameter limit"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			args := append([]string{"dlq"}, st.args...)
			args = append(args, "--subscription", "orders", "--config", path)
			var stdout, stderr bytes.Buffer
			if got := run(args, strings.NewReader(""), &stdout, &stderr); got != st.want {
				t.Fatalf("exit = %d, want %d; stderr %s", got, st.want, stderr.String())
			}
			if st.want != 0 {
				if !strings.Contains(stderr.String(), st.wantOut) {
					t.Errorf("stderr = %q, want %q", stderr.String(), st.wantOut)
				}
				return
			}
			if got := summarize(t, stdout.Bytes()); got != st.wantOut {
				t.Errorf("answer = %s (%s), want %s", got, stdout.String(), st.wantOut)
			}
		})
	}
}

// summarize reduces a dead-letter listing to the events' ids and leaves
// other answers as they are.
func summarize(t *testing.T, out []byte) string {
	t.Helper()
	var list struct {
		DeadLetters []struct {
			Event struct {
				ID string `json:"id"`
			} `json:"event"`
			Reason string `json:"dlqreason"`
		} `json:"deadletters"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("answer %q: %v", out, err)
	}
	if list.DeadLetters == nil {
		return string(bytes.TrimSpace(out))
	}
	ids := []string{}
	for _, d := range list.DeadLetters {
		if d.Reason != "HTTP 410" {
			t.Errorf("dlqreason = %q, want HTTP 410", d.Reason)
		}
		ids = append(ids, d.Event.ID)
	}
	b, _ := json.Marshal(map[string][]string{"ids": ids})
	return string(b)
}

func TestDLQErrors(t *testing.T) {
	path := startAdmin(t)
	tests := []struct {
		name  string
		token string
		args  []string
		want  string
	}{
		{"unknown subscription", "", []string{"list", "--subscription", "nope"}, `404 Not Found: subscription "nope" is not configured`},
		{"wrong token", "wrong", []string{"purge", "--subscription", "orders"}, "401 Unauthorized: Authorization: Bearer token missing or wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("EVENTSIDECAR_API_TOKEN", tt.token)
			args := append(append([]string{"dlq"}, tt.args...), "--config", path)
			var stdout, stderr bytes.Buffer
			if got := run(args, strings.NewReader(""), &stdout, &stderr); got != 1 {
				t.Errorf("exit = %d, want 1", got)
			}
			if !strings.Contains(stderr.String(), tt.want) || stdout.Len() != 0 {
				t.Errorf("stderr = %q, stdout = %q; want %q on stderr only", stderr.String(), stdout.String(), tt.want)
			}
		})
	}
	t.Setenv("EVENTSIDECAR_API_TOKEN", "")
	var stdout, stderr bytes.Buffer
	run([]string{"dlq", "list", "--subscription", "orders", "--config", path}, strings.NewReader(""), &stdout, &stderr)
	if got := summarize(t, stdout.Bytes()); got != `{"ids":["a","b"]}` {
		t.Errorf("dead letters after refused requests: %s %s", stdout.String(), stderr.String())
	}
}

// TestAPIRequestToken checks the request publish and dlq share: the
// address from --addr or the config file, the token from the environment
// before the config file.
func TestAPIRequestToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte("http:\n  listen: 127.0.0.1:9\n  api_token: fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, env, addr, wantAuth, wantHost string
	}{
		{"from file", "", "", "Bearer fromfile", "127.0.0.1:9"},
		{"from environment", "fromenv", "h:2", "Bearer fromenv", "h:2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("EVENTSIDECAR_API_TOKEN", tt.env)
			req, err := apiRequest(http.MethodGet, path, tt.addr, "/v1/subscriptions", nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := req.Header.Get("Authorization"); got != tt.wantAuth || req.URL.Host != tt.wantHost {
				t.Errorf("Authorization %q, host %q; want %q, %q", got, req.URL.Host, tt.wantAuth, tt.wantHost)
			}
		})
	}
}

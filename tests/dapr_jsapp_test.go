package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// daprAppConfig is the dapr block of a sidecar whose Dapr app listens on
// appPort, with quick retries so that a RETRY comes again soon.
func daprAppConfig(appPort int) string {
	return fmt.Sprintf(`dapr:
  app_port: %d
  subscription:
    retry:
      initial_backoff: 20ms
      max_backoff: 500ms
`, appPort)
}

// appDelivery is one line app.js printed for a delivery.
type appDelivery struct {
	Route string          `json:"route"`
	Data  json.RawMessage `json:"data"`
}

// TestDaprJSApp runs tests/dapr/js/app.js, an unmodified app on the Dapr
// JavaScript SDK (DaprServer subscribing with a route, routing rules and
// a raw payload; DaprClient publishing), against the real binary with
// dapr.app_port, configured by nothing but DAPR_HTTP_PORT and APP_PORT,
// and checks what the app received and what the sidecar dead-lettered.
func TestDaprJSApp(t *testing.T) {
	app := nodeApp(t, "app.js")
	appPort := freePort(t)
	sc := startSidecar(t, embeddedConfig(t.TempDir(), daprAppConfig(appPort)))
	_, port, err := net.SplitHostPort(strings.TrimPrefix(sc.url(""), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := app(ctx, "DAPR_HTTP_PORT="+port, fmt.Sprintf("APP_PORT=%d", appPort))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node app.js: %v\nstdout:\n%s\nstderr:\n%s\nsidecar log:\n%s", err, &stdout, &stderr, sc.log())
	}
	deliveries, published := appOutput(t, stdout.String())
	for name, answer := range published {
		if string(answer) != "{}" {
			t.Errorf("publish %s answered %s, want {}", name, answer)
		}
	}
	var got []string
	for _, d := range deliveries {
		got = append(got, d.Route+" "+string(d.Data))
	}
	sort.Strings(got)
	want := []string{
		`fast {"speed":"fast"}`,
		`orders {"orderId":1,"action":"ok"}`,
		`orders {"orderId":2,"action":"retry"}`,
		`orders {"orderId":2,"action":"retry"}`,
		`orders {"orderId":3,"action":"drop"}`,
		`orders {"orderId":4,"action":"ok"}`,
		`payments {"amount":5}`,
		`slow {"speed":"slow"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the app got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	checkDaprDeadLetters(t, sc)
}

// appOutput reads what app.js printed: its deliveries, and what each
// publish answered (the last line). The SDK logs on stdout too.
func appOutput(t *testing.T, out string) ([]appDelivery, map[string]json.RawMessage) {
	t.Helper()
	var deliveries []appDelivery
	var last struct {
		Done      bool                       `json:"done"`
		Published map[string]json.RawMessage `json:"published"`
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var d appDelivery
		switch {
		case json.Unmarshal([]byte(line), &last) == nil && last.Done:
		case json.Unmarshal([]byte(line), &d) == nil && d.Route != "":
			deliveries = append(deliveries, d)
		}
	}
	if !last.Done || len(last.Published) != 8 {
		t.Fatalf("app.js did not finish: %s", out)
	}
	return deliveries, last.Published
}

// daprDeadLetters is GET /v1/subscriptions/{name}/deadletters.
type daprDeadLetters struct {
	Deadletters []struct {
		Event    struct{ Data json.RawMessage }
		Reason   string `json:"dlqreason"`
		Status   int    `json:"dlqstatus"`
		Attempts int    `json:"dlqattempts"`
	}
}

// checkDaprDeadLetters checks that the order the app dropped becomes the
// one dead letter of the orders subscription, and that nothing is left
// pending.
func checkDaprDeadLetters(t *testing.T, sc *sidecar) {
	t.Helper()
	var list daprDeadLetters
	poll.Until(t, 20*time.Second, "the dropped order dead-lettered", func() bool {
		code, body := sc.get("/v1/subscriptions/e2e-pubsub-orders/deadletters")
		if err := json.Unmarshal(body, &list); code != 200 || err != nil {
			t.Fatalf("dead letters = %d %s (%v)", code, body, err)
		}
		return len(list.Deadletters) > 0
	})
	if len(list.Deadletters) != 1 {
		t.Fatalf("dead letters = %+v, want the dropped order", list)
	}
	if dl := list.Deadletters[0]; string(dl.Event.Data) != `{"orderId":3,"action":"drop"}` ||
		dl.Reason != "app answered DROP" || dl.Status != 200 || dl.Attempts != 1 {
		t.Errorf("dead letter = %+v, want order 3 dropped at the first attempt", dl)
	}
	poll.Until(t, 20*time.Second, "the app's three subscriptions delivering, nothing pending", func() bool {
		code, body := sc.get("/v1/subscriptions")
		var subs struct {
			Subscriptions []struct {
				Name    string `json:"name"`
				State   string `json:"state"`
				Pending uint64 `json:"pending"`
			}
		}
		if err := json.Unmarshal(body, &subs); code != 200 || err != nil || len(subs.Subscriptions) != 3 {
			t.Fatalf("subscriptions = %d %s (%v), want the app's three", code, body, err)
		}
		for _, s := range subs.Subscriptions {
			if !strings.HasPrefix(s.Name, "e2e-pubsub-") || s.State != "delivering" || s.Pending != 0 {
				return false
			}
		}
		return true
	})
}

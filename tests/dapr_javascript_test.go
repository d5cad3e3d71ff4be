package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventsidecar/eventsidecar/wire"
)

// daprJSDir holds the sample apps on the Dapr JavaScript SDK; .ci/run
// installs their dependencies with `npm ci --prefix tests/dapr/js`.
const daprJSDir = "dapr/js"

// nodeApp returns the command running the JavaScript sample app script
// with env added to the environment, or skips the test when node or the
// installed SDK is missing here. Call it before starting anything.
func nodeApp(t *testing.T, script string) func(ctx context.Context, env ...string) *exec.Cmd {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed; the Dapr JavaScript SDK tests need it (and `npm ci --prefix tests/dapr/js`)")
	}
	if _, err := os.Stat(filepath.Join(daprJSDir, "node_modules", "@dapr", "dapr", "package.json")); err != nil {
		t.Skip("the Dapr JavaScript SDK is not installed: run `npm ci --prefix tests/dapr/js`")
	}
	return func(ctx context.Context, env ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, node, script)
		cmd.Dir = daprJSDir
		cmd.Env = append(os.Environ(), env...)
		return cmd
	}
}

// storedEvents reads every event the sidecar stored, oldest first.
func (s *sidecar) storedEvents() []event.Event {
	s.t.Helper()
	st := stream(s.t, s.natsURL)
	n := msgCount(s.t, st)
	events := make([]event.Event, 0, n)
	for seq := uint64(1); seq <= n; seq++ {
		raw, err := st.GetMsg(s.t.Context(), seq)
		if err != nil {
			s.t.Fatalf("get message %d: %v", seq, err)
		}
		ev, err := wire.DecodeNATS(raw.Header, raw.Data)
		if err != nil {
			s.t.Fatalf("decode message %d: %v", seq, err)
		}
		events = append(events, ev)
	}
	return events
}

// TestDaprJSPublisher runs tests/dapr/js/publisher.js, an unmodified app on
// the Dapr JavaScript SDK (@dapr/dapr 3.18.0), against the real binary
// with nothing but DAPR_HTTP_PORT, and checks what the broker stored.
func TestDaprJSPublisher(t *testing.T) {
	publisher := nodeApp(t, "publisher.js")
	sc := startSidecar(t, embeddedConfig(t.TempDir(), ""))
	_, port, err := net.SplitHostPort(strings.TrimPrefix(sc.url(""), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := publisher(ctx, "DAPR_HTTP_PORT="+port)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node publisher.js: %v\nstdout:\n%s\nstderr:\n%s\nsidecar log:\n%s", err, &stdout, &stderr, sc.log())
	}
	// The SDK logs on stdout too: the answers are the last line.
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var answers map[string]json.RawMessage
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &answers); err != nil {
		t.Fatalf("publisher printed %q: %v", &stdout, err)
	}
	want := map[string]string{"object": "{}", "string": "{}", "cloudEvent": "{}", "bulk": `{"failedMessages":[]}`}
	for name, w := range want {
		if got := string(answers[name]); got != w {
			t.Errorf("%s answered %s, want %s (stderr: %s)", name, got, w, &stderr)
		}
	}

	events := sc.storedEvents()
	wantEvents := []struct{ id, source, typ, contentType, data string }{
		{"", "e2e", "com.dapr.event.sent", "application/json", `{"orderId":1}`},
		{"", "e2e", "com.dapr.event.sent", "text/plain", "hello"},
		{"order-3", "/shop", "order.created", "application/json", `{"orderId":3}`},
		{"", "e2e", "com.dapr.event.sent", "application/json", `{"orderId":4}`},
		{"", "e2e", "com.dapr.event.sent", "text/plain", "five"},
		{"", "e2e", "com.dapr.event.sent", "application/json", `{"orderId":6}`},
	}
	if len(events) != len(wantEvents) {
		t.Fatalf("%d events stored, want %d: %v", len(events), len(wantEvents), events)
	}
	for i, w := range wantEvents {
		ev := events[i]
		if (w.id != "" && ev.ID() != w.id) || ev.ID() == "" || ev.Source() != w.source || ev.Type() != w.typ ||
			ev.DataContentType() != w.contentType || string(ev.Data()) != w.data {
			t.Errorf("event %d = %s %s %s %q %q, want %+v", i, ev.ID(), ev.Source(), ev.Type(), ev.DataContentType(), ev.Data(), w)
		}
	}
}

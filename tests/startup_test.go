package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// runToExit runs `eventsidecar run` on cfg, which must fail at start, and
// returns its exit code and what it wrote to stderr.
func runToExit(t *testing.T, cfg string) (int, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, binary, "run", "--config", path)
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the sidecar kept running, want it to refuse to start; its log:\n%s", stderr.String())
	}
	if err == nil {
		t.Fatalf("the sidecar exited 0, want a failure; its log:\n%s", stderr.String())
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

func TestSecondSidecarOnOneStoreDirRefused(t *testing.T) {
	dir := t.TempDir()
	first := startSidecar(t, embeddedConfig(dir, ""))
	one := first.mustPublish("/v1/publish/orders.created", "one", "ce-specversion: 1.0", "ce-id: s-1",
		"ce-source: /shop", "ce-type: t", "Content-Type: text/plain")

	code, log := runToExit(t, embeddedConfig(dir, ""))
	want := fmt.Sprintf("store_dir %s is in use by another process (pid %d)", dir, first.cmd.Process.Pid)
	if code != 1 || !strings.Contains(log, want) {
		t.Errorf("second sidecar: exit %d, log:\n%s\nwant exit 1 and %q", code, log, want)
	}

	busy := strings.Replace(embeddedConfig(dir, ""), "listen: 127.0.0.1:0\ngrpc", "listen: "+first.addr+"\ngrpc", 1)
	code, log = runToExit(t, busy)
	if code != 1 || !strings.Contains(log, "listen http "+first.addr) || strings.Contains(log, "store_dir") {
		t.Errorf("sidecar on a busy port: exit %d, log:\n%s\nwant exit 1 naming the port, not the store", code, log)
	}

	two := first.mustPublish("/v1/publish/orders.created", "two", "ce-specversion: 1.0", "ce-id: s-2",
		"ce-source: /shop", "ce-type: t", "Content-Type: text/plain")
	if two.Sequence != one.Sequence+1 {
		t.Errorf("sequences %d then %d, want consecutive", one.Sequence, two.Sequence)
	}
	first.stop()
	again := startSidecar(t, embeddedConfig(dir, ""))
	s := stream(t, again.natsURL)
	for _, r := range []receipt{one, two} {
		msg, err := s.GetMsg(t.Context(), r.Sequence)
		if err != nil || msg.Header.Get("ce-id") != r.ID {
			t.Errorf("after a restart, sequence %d: %v %v, want event %s", r.Sequence, msg, err, r.ID)
		}
	}
	if n := msgCount(t, s); n != 2 {
		t.Errorf("stream holds %d events after a restart, want 2", n)
	}
}

// freePort returns a loopback port nothing listens on (for now).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestStartWithoutTheBroker(t *testing.T) {
	port := freePort(t)
	url := fmt.Sprintf("nats://app:s3cret@127.0.0.1:%d", port)
	a := newApp(t, http.StatusOK)
	sc := launchSidecar(t, urlConfig("e2e", url, subscriptionConfig(a.URL+"/events", fastRetry)))

	if code, body := sc.get("/healthz"); code != http.StatusOK {
		t.Errorf("healthz without the broker = %d %s, want 200", code, body)
	}
	code, body := sc.get("/readyz")
	var ready struct{ Reason string }
	_ = json.Unmarshal(body, &ready)
	wantURL := fmt.Sprintf("nats://127.0.0.1:%d", port)
	if code != http.StatusServiceUnavailable || !strings.Contains(ready.Reason, wantURL) || strings.Contains(string(body), "s3cret") {
		t.Errorf("readyz without the broker = %d %s, want 503 naming %s without the password", code, body, wantURL)
	}
	event := []string{"ce-specversion: 1.0", "ce-id: nb-1", "ce-source: /shop", "ce-type: t", "Content-Type: text/plain"}
	code, hdr, answer := sc.post("/v1/publish/orders.created", "x", event...)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("publish without the broker = %d (Retry-After %q) %s, want 503 with Retry-After", code, hdr.Get("Retry-After"), answer)
	}
	if strings.Contains(sc.log(), "s3cret") {
		t.Errorf("the log shows the password:\n%s", sc.log())
	}

	ns := natsServer(t, port, t.TempDir())
	sc.waitReady()
	r := sc.mustPublish("/v1/publish/orders.created", "x", event...)
	poll.Until(t, 30*time.Second, "delivery of the event published once connected", func() bool {
		return a.deliveredOnce(t, []string{"nb-1"})
	})
	if msgCount(t, stream(t, ns.ClientURL())) != 1 || r.Sequence != 1 {
		t.Errorf("stream after connecting: sequence %d, want one event at 1", r.Sequence)
	}
}

// TestHealthListenAndFlags runs the sidecar as the Kubernetes injector
// does: --health-listen serves /healthz and /readyz, and nothing else, on a
// second address, and --log-level overrides the file's log.level (the file
// says error, so the info lines the test waits for appear only through the
// flag).
func TestHealthListenAndFlags(t *testing.T) {
	cfg := fmt.Sprintf(`app_id: e2e
http:
  listen: 127.0.0.1:0
grpc:
  listen: ""
broker:
  embedded:
    store_dir: %s
log:
  level: error
`, t.TempDir())
	s := startSidecar(t, cfg, "--health-listen", "127.0.0.1:0", "--log-level", "info")
	if s.health == "" || s.health == s.addr {
		t.Fatalf("health address %q, API address %q: want a second listener", s.health, s.addr)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 404, "/v1/publish/orders": 404, "/v1/subscriptions": 404} {
		resp, err := http.Get("http://" + s.health + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s on the health address: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if code, _ := s.get("/v1/subscriptions"); code != 200 {
		t.Errorf("GET /v1/subscriptions on the API address: %d, want 200", code)
	}
}

// TestBadRunFlagRefused: a --log-level outside the set stops the start with
// a message naming log.level.
func TestBadRunFlagRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(embeddedConfig(t.TempDir(), "")), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "run", "--config", path, "--log-level", "loud").CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("the sidecar started with --log-level loud; its output:\n%s", out)
	}
	if !strings.Contains(string(out), "log.level") || !strings.Contains(string(out), "loud") {
		t.Errorf("output %q does not name log.level and the value", out)
	}
}

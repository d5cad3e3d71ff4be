package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// binary is the eventsidecar binary built once for all tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eventsidecar-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "eventsidecar")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "../cmd/eventsidecar")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build eventsidecar:", err)
		os.Exit(1)
	}
	if err := buildNATSServer(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sidecar is one running eventsidecar process.
type sidecar struct {
	t        *testing.T
	cmd      *exec.Cmd
	addr     string // HTTP API host:port
	grpcAddr string // gRPC API host:port, when it listens
	health   string // the health endpoints' host:port, when they listen apart
	natsURL  string // the embedded broker's client URL, when it listens
	exited   chan struct{}

	mu     sync.Mutex
	stderr bytes.Buffer
	stdout bytes.Buffer // what the process printed on stdout (spans, with the stdout exporter)
}

// startSidecar writes cfg (YAML) to a file and runs `eventsidecar run
// --config` on it with the extra flags, waiting until it is ready (GET
// /readyz answers 200).
func startSidecar(t *testing.T, cfg string, flags ...string) *sidecar {
	t.Helper()
	s := launchSidecar(t, cfg, flags...)
	s.waitReady()
	return s
}

// waitReady waits until GET /readyz answers 200.
func (s *sidecar) waitReady() {
	s.t.Helper()
	poll.Until(s.t, 60*time.Second, "sidecar ready", func() bool {
		code, _ := s.get("/readyz")
		return code == http.StatusOK
	})
}

// launchSidecar writes cfg (YAML) to a file and runs `eventsidecar run
// --config` on it with the extra flags, waiting until the HTTP API listens
// (it need not be ready).
func launchSidecar(t *testing.T, cfg string, flags ...string) *sidecar {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &sidecar{t: t, cmd: exec.Command(binary, append([]string{"run", "--config", path}, flags...)...), exited: make(chan struct{})}
	s.cmd.Stdout = &lockedWriter{mu: &s.mu, w: &s.stdout}
	pipe, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sidecar: %v", err)
	}
	listening := make(chan struct{})
	go s.readLog(pipe, listening)
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(s.kill)
	select {
	case <-listening:
	case <-s.exited:
		t.Fatalf("sidecar exited before listening; its log:\n%s", s.log())
	case <-time.After(60 * time.Second):
		t.Fatalf("sidecar did not listen within 60s; its log:\n%s", s.log())
	}
	return s
}

// readLog copies the JSON log lines and notes the listeners' addresses.
func (s *sidecar) readLog(r io.Reader, listening chan<- struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var rec struct{ Msg, Addr, URL string }
		_ = json.Unmarshal(line, &rec)
		s.mu.Lock()
		s.stderr.Write(line)
		s.stderr.WriteByte('\n')
		switch rec.Msg {
		case "embedded broker listening":
			s.natsURL = rec.URL
		case "grpc listening":
			s.grpcAddr = rec.Addr
		case "health listening":
			s.health = rec.Addr
		case "http listening":
			s.addr = rec.Addr
			close(listening)
		}
		s.mu.Unlock()
	}
}

// lockedWriter writes to w holding mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// output is what the process printed on stdout.
func (s *sidecar) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stdout.String()
}

func (s *sidecar) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

func (s *sidecar) url(path string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://" + s.addr + path
}

// stop sends SIGTERM and waits for a clean exit.
func (s *sidecar) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("signal sidecar: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.t.Fatalf("sidecar did not stop within 30s after SIGTERM; its log:\n%s", s.log())
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Fatalf("sidecar exit code %d after SIGTERM; its log:\n%s", code, s.log())
	}
}

// kill ends the process at once (SIGKILL) and waits for it.
func (s *sidecar) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// post sends body with headers ("Name: value") and returns the status,
// headers and body of the answer.
func (s *sidecar) post(path, body string, hdrs ...string) (int, http.Header, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url(path), strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, kv := range hdrs {
		k, v, _ := strings.Cut(kv, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	return do(s.t, req)
}

func (s *sidecar) get(path string) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.url(path), nil)
	if err != nil {
		s.t.Fatal(err)
	}
	code, _, body := do(s.t, req)
	return code, body
}

func do(t *testing.T, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return resp.StatusCode, resp.Header, body
}

// receipt is a single-event publish answer.
type receipt struct {
	Topic     string `json:"topic"`
	ID        string `json:"id"`
	Source    string `json:"source"`
	Sequence  uint64 `json:"sequence"`
	Duplicate bool   `json:"duplicate"`
}

// mustPublish posts like post and requires a 200 single-event answer.
func (s *sidecar) mustPublish(path, body string, hdrs ...string) receipt {
	s.t.Helper()
	code, _, answer := s.post(path, body, hdrs...)
	if code != http.StatusOK {
		s.t.Fatalf("publish status %d: %s", code, answer)
	}
	var r receipt
	if err := json.Unmarshal(answer, &r); err != nil {
		s.t.Fatalf("publish answer %s: %v", answer, err)
	}
	return r
}

// embeddedConfig is a sidecar on the embedded broker with store dir dir,
// its NATS port open on loopback so the tests can read the stream.
func embeddedConfig(dir string, extra string) string {
	return fmt.Sprintf(`app_id: e2e
http:
  listen: 127.0.0.1:0
grpc:
  listen: ""
broker:
  embedded:
    store_dir: %s
    listen: 127.0.0.1:0
log:
  level: debug
%s`, dir, extra)
}

// withGRPC makes cfg (from embeddedConfig or urlConfig) listen for gRPC on
// a free loopback port.
func withGRPC(cfg string) string {
	return strings.Replace(cfg, "grpc:\n  listen: \"\"", "grpc:\n  listen: 127.0.0.1:0", 1)
}

// urlConfig is a sidecar with app_id appID on the broker at natsURL;
// extra follows broker.url (indent its lines to add broker settings).
func urlConfig(appID, natsURL, extra string) string {
	return fmt.Sprintf(`app_id: %s
http:
  listen: 127.0.0.1:0
grpc:
  listen: ""
broker:
  url: %s
%s`, appID, natsURL, extra)
}

// dial connects a gRPC client to the sidecar's gRPC API.
func (s *sidecar) dial() *grpc.ClientConn {
	s.t.Helper()
	if s.grpcAddr == "" {
		s.t.Fatalf("no gRPC listener in the log:\n%s", s.log())
	}
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// settled waits until the broker holds nothing pending or unsettled for
// the subscription name: no delivery of it can still come.
func settled(t *testing.T, natsURL, name string) {
	t.Helper()
	unsettled(t, natsURL, name, 0)
}

// unsettled waits until the broker holds none of the subscription name's
// events pending and n of them delivered but not settled.
func unsettled(t *testing.T, natsURL, name string, n int) {
	t.Helper()
	s := stream(t, natsURL)
	poll.Until(t, 30*time.Second, fmt.Sprintf("%s: %d unsettled, none pending in the broker", name, n), func() bool {
		c, err := s.Consumer(t.Context(), name)
		if err != nil {
			return false
		}
		info, err := c.Info(t.Context())
		return err == nil && info.NumPending == 0 && info.NumAckPending == n
	})
}

package ingress

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/apitest"
	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// serveHTTP serves h.api with Serve (the real server, with its timeouts) on
// a loopback port until the test ends, and returns its address.
func (h *harness) serveHTTP() string {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.api.Serve(ctx, ln) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// inFlightBytes is the in-flight byte budget held, as /metrics reports it.
func (h *harness) inFlightBytes() int {
	h.t.Helper()
	rec := httptest.NewRecorder()
	h.api.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if v, ok := strings.CutPrefix(line, "eventsidecar_publish_in_flight_bytes "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				h.t.Fatalf("metric line %q: %v", line, err)
			}
			return int(n)
		}
	}
	h.t.Fatalf("/metrics lacks eventsidecar_publish_in_flight_bytes:\n%s", rec.Body)
	return 0
}

// stalledUpload is a publish whose body stops coming: a real TCP connection
// that sent the headers and the start of the body.
type stalledUpload struct {
	conn net.Conn
	r    *bufio.Reader
}

// stall opens a connection to addr and sends a publish request's headers
// (and extra ones, "Name: value") and then sent, of a body it never ends.
func stall(t *testing.T, addr, sent string, extra ...string) *stalledUpload {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	req := "POST /v1/publish/orders.created HTTP/1.1\r\nHost: sidecar\r\nContent-Type: application/cloudevents-batch+json\r\n"
	for _, h := range extra {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"+sent); err != nil {
		t.Fatal(err)
	}
	return &stalledUpload{conn: conn, r: bufio.NewReader(conn)}
}

// chunk is one chunk of a chunked body holding data.
func chunk(data string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(data), data) }

// answer reads the answer to the upload.
func (u *stalledUpload) answer(t *testing.T) *http.Response {
	t.Helper()
	if err := u.conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(u.r, nil)
	if err != nil {
		t.Fatalf("read the answer to a stalled upload: %v", err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestStalledUploadsHoldOnlyWhatTheySent(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.HTTP.MaxEventBytes = 16 << 10
		c.HTTP.MaxBatchBytes = 64 << 10
		c.HTTP.MaxInFlightBytes = 64 << 10
	})
	addr := h.serveHTTP()
	const sent = 1 << 10
	body := "[" + strings.Repeat(" ", sent-1)
	var uploads []*stalledUpload
	for i := range 4 {
		before := h.inFlightBytes()
		if i%2 == 0 {
			uploads = append(uploads, stall(t, addr, chunk(body), "Transfer-Encoding: chunked"))
		} else {
			uploads = append(uploads, stall(t, addr, body, "Content-Length: 65536"))
		}
		poll.Until(t, 10*time.Second, fmt.Sprintf("upload %d holds what it sent", i), func() bool { return h.inFlightBytes() >= before+sent })
	}
	if held, most := h.inFlightBytes(), 4*max(firstBodyBuffer, 2*sent); held > most {
		t.Errorf("4 uploads that sent %d bytes each hold %d bytes of the budget, want at most %d", sent, held, most)
	}
	apitest.WantStatus(t, h.post("/v1/publish/orders.created", "{}", binaryEvent...), http.StatusOK)

	// The budget still bounds what is held: an upload bringing more than is
	// left is refused while it is still sending.
	big := stall(t, addr, chunk("["+strings.Repeat(" ", 62<<10)), "Transfer-Encoding: chunked")
	wantProblem(t, big.answer(t), http.StatusTooManyRequests, "max_in_flight_bytes")

	for _, u := range uploads {
		_ = u.conn.Close()
	}
	poll.Until(t, 10*time.Second, "closed uploads release the budget", func() bool { return h.inFlightBytes() == 0 })
	if n := h.stored(); n != 1 {
		t.Errorf("stored = %d, want 1", n)
	}
}

func TestStalledBodyAnswers408(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		// As by default, the write deadline passes with the read deadline.
		c.HTTP.ReadTimeout = 2 * time.Second
		c.HTTP.WriteTimeout = 2 * time.Second
	})
	addr := h.serveHTTP()
	tests := []struct {
		name, sent string
		headers    []string
	}{
		{"Content-Length", `[{"specversion":`, []string{"Content-Length: 100"}},
		{"chunked", chunk(`[{"specversion":`), []string{"Transfer-Encoding: chunked"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := stall(t, addr, tt.sent, tt.headers...).answer(t)
			p := wantProblem(t, resp, http.StatusRequestTimeout, "http.read_timeout")
			if p.Type != "urn:eventsidecar:problem:timeout" {
				t.Errorf("problem type = %q", p.Type)
			}
			if !resp.Close {
				t.Error("408 does not close the connection")
			}
		})
	}
	t.Cleanup(func() {
		if n := h.stored(); n != 0 {
			t.Errorf("stored = %d, want 0", n)
		}
	})
}

func TestOversizedHeadersAnswer431(t *testing.T) {
	h := newHarness(t, nil)
	url := "http://" + h.serveHTTP() + "/v1/publish/orders.created"
	tests := []struct {
		name string
		size int
		want int
	}{
		{"within the limit", 60 << 10, http.StatusOK},
		{"over the limit", 65 << 10, http.StatusRequestHeaderFieldsTooLarge},
		{"far over the limit", 900 << 10, http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, url, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			for _, kv := range binaryEvent {
				k, v, _ := strings.Cut(kv, ":")
				req.Header.Set(k, strings.TrimSpace(v))
			}
			req.Header.Set("ce-id", tt.name)
			req.Header.Set("X-Padding", strings.Repeat("p", tt.size))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if tt.want == http.StatusOK {
				apitest.WantStatus(t, resp, http.StatusOK)
				return
			}
			p := wantProblem(t, resp, tt.want, "limit of 65536")
			if p.Type != "urn:eventsidecar:problem:headers_too_large" {
				t.Errorf("problem type = %q", p.Type)
			}
		})
	}
	if n := h.stored(); n != 1 {
		t.Errorf("stored = %d, want 1", n)
	}
}

package listen

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/eventsidecar/eventsidecar/internal/poll"
	"github.com/eventsidecar/eventsidecar/internal/syncbuf"
)

var (
	testSecret  = "whsec_" + base64.StdEncoding.EncodeToString([]byte("the listener test secret, 32 b.."))
	otherSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("another secret that is not it..."))
)

const testTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"

// binaryDelivery is a binary-mode delivery as egress sends it.
func binaryDelivery() (http.Header, []byte) {
	h := http.Header{}
	h.Set("ce-specversion", "1.0")
	h.Set("ce-id", "evt-1")
	h.Set("ce-source", "/test/orders")
	h.Set("ce-type", "com.example.order.created")
	h.Set("ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80")
	h.Set("ce-partitionkey", "customer-1")
	h.Set("Content-Type", "application/json")
	return h, []byte(`{"order":1}`)
}

// structuredDelivery is a structured-mode delivery with binary data.
func structuredDelivery() (http.Header, []byte) {
	h := http.Header{}
	h.Set("Content-Type", "application/cloudevents+json")
	return h, []byte(`{"specversion":"1.0","id":"evt-2","source":"/test/orders","type":"com.example.blob",` +
		`"datacontenttype":"application/octet-stream","data_base64":"AP9j"}`)
}

// sign adds Standard Webhooks headers made with secret ("" adds none).
func sign(t *testing.T, h http.Header, body []byte, secret string) {
	t.Helper()
	if secret == "" {
		return
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sig, err := wh.Sign("msg_abc", now, body)
	if err != nil {
		t.Fatal(err)
	}
	h.Set(standardwebhooks.HeaderWebhookID, "msg_abc")
	h.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(standardwebhooks.HeaderWebhookSignature, sig)
}

// deliver posts body with h to a fresh receiver and returns the answer's
// status and what the receiver printed.
func deliver(t *testing.T, secret string, status int, asJSON bool, method string, h http.Header, body []byte) (int, string) {
	t.Helper()
	var out syncbuf.Buffer
	l, err := NewHandler(&out, Config{Secret: secret, Status: status, JSON: asJSON})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(method, srv.URL+"/events", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	req.Header.Set("traceparent", "00-"+testTraceID+"-00f067aa0ba902b7-01")
	req.Header.Set("eventsidecar-attempt", "2")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, out.String()
}

func TestListenText(t *testing.T) {
	tests := []struct {
		name     string
		delivery func() (http.Header, []byte)
		secret   string // the receiver's
		signWith string // the sender's; "" unsigned
		status   int
		want     int
		wantOut  []string
		notOut   []string
	}{
		{"binary unsigned", binaryDelivery, "", "", 200, 200, []string{
			"--- delivery 1  attempt 2  trace_id " + testTraceID + "\n",
			"specversion: 1.0\nid: evt-1\nsource: /test/orders\ntype: com.example.order.created\n" +
				"datacontenttype: application/json\nsubject: Euro € 😀\npartitionkey: customer-1\n",
			"data:\n{\"order\":1}\n",
		}, []string{"signature"}},
		{"binary valid", binaryDelivery, testSecret, testSecret, 200, 200, []string{"signature valid\n", "id: evt-1\n"}, nil},
		{"binary invalid", binaryDelivery, testSecret, otherSecret, 200, 401, []string{"signature invalid (", "id: evt-1\n"}, nil},
		{"binary unsigned with secret", binaryDelivery, testSecret, "", 200, 401, []string{"signature invalid (", "missing required headers"}, nil},
		{"structured valid", structuredDelivery, testSecret, testSecret, 200, 200, []string{
			"signature valid\n", "id: evt-2\n", "datacontenttype: application/octet-stream\n", "data (base64):\nAP9j\n",
		}, nil},
		{"structured invalid", structuredDelivery, testSecret, otherSecret, 200, 401, []string{"signature invalid ("}, nil},
		{"status", binaryDelivery, "", "", 503, 503, []string{"id: evt-1\n"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body := tt.delivery()
			sign(t, h, body, tt.signWith)
			got, out := deliver(t, tt.secret, tt.status, false, http.MethodPost, h, body)
			if got != tt.want {
				t.Errorf("status = %d, want %d", got, tt.want)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notOut {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestListenJSON(t *testing.T) {
	str := func(s string) *string { return &s }
	tests := []struct {
		name     string
		delivery func() (http.Header, []byte)
		secret   string
		signWith string
		want     int
		wantOut  delivery
	}{
		{"binary valid", binaryDelivery, testSecret, testSecret, 200, delivery{Signature: "valid", Data: str(`{"order":1}`),
			Attributes: map[string]string{"subject": "Euro € 😀", "id": "evt-1", "partitionkey": "customer-1"}}},
		{"binary invalid", binaryDelivery, testSecret, otherSecret, 401, delivery{Signature: "invalid", Data: str(`{"order":1}`),
			Attributes: map[string]string{"id": "evt-1"}}},
		{"structured valid", structuredDelivery, testSecret, testSecret, 200, delivery{Signature: "valid", DataBase64: "AP9j",
			Attributes: map[string]string{"id": "evt-2", "type": "com.example.blob"}}},
		{"structured unsigned", structuredDelivery, "", "", 200, delivery{Signature: "unsigned", DataBase64: "AP9j",
			Attributes: map[string]string{"id": "evt-2"}}},
		{"structured not checked", structuredDelivery, "", otherSecret, 200, delivery{Signature: "unchecked", DataBase64: "AP9j",
			Attributes: map[string]string{"id": "evt-2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body := tt.delivery()
			sign(t, h, body, tt.signWith)
			status, out := deliver(t, tt.secret, 200, true, http.MethodPost, h, body)
			if status != tt.want {
				t.Errorf("status = %d, want %d", status, tt.want)
			}
			if strings.Count(out, "\n") != 1 {
				t.Errorf("output is not one line: %q", out)
			}
			var got delivery
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			checkDelivery(t, got, tt.wantOut)
		})
	}
}

func checkDelivery(t *testing.T, got, want delivery) {
	t.Helper()
	if got.Attempt != 2 || got.TraceID != testTraceID || got.Signature != want.Signature {
		t.Errorf("attempt, trace_id, signature = %d, %q, %q; want 2, %q, %q", got.Attempt, got.TraceID, got.Signature, testTraceID, want.Signature)
	}
	if (got.SignatureError != "") != (want.Signature == "invalid") {
		t.Errorf("signature_error = %q with signature %q", got.SignatureError, got.Signature)
	}
	for k, v := range want.Attributes {
		if got.Attributes[k] != v {
			t.Errorf("attributes[%q] = %q, want %q", k, got.Attributes[k], v)
		}
	}
	if got.Attributes["specversion"] != "1.0" || got.Attributes["source"] != "/test/orders" {
		t.Errorf("attributes = %v, want specversion and source", got.Attributes)
	}
	if (got.Data == nil) != (want.Data == nil) || got.Data != nil && *got.Data != *want.Data || got.DataBase64 != want.DataBase64 {
		t.Errorf("data = %v, data_base64 = %q; want %v, %q", got.Data, got.DataBase64, want.Data, want.DataBase64)
	}
}

func TestListenRefuses(t *testing.T) {
	bad := http.Header{}
	bad.Set("ce-specversion", "1.0")
	bad.Set("ce-id", "1")
	bad.Set("ce-source", "/s")
	bad.Set("ce-type", "t")
	bad.Set("ce-subject", "%E2%82")
	tests := []struct {
		name, method string
		h            http.Header
		body         []byte
		want         int
		wantOut      string
	}{
		{"not a CloudEvent", http.MethodPost, http.Header{"Content-Type": {"text/plain"}}, []byte("hello"), 400, "error: not a CloudEvent"},
		{"bad header encoding", http.MethodPost, bad, nil, 400, "ce-subject: must be percent-encoded UTF-8"},
		{"GET", http.MethodGet, http.Header{}, nil, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := deliver(t, "", 200, false, tt.method, tt.h, tt.body)
			if status != tt.want || !strings.Contains(out, tt.wantOut) {
				t.Errorf("status %d, output %q; want %d and %q", status, out, tt.want, tt.wantOut)
			}
		})
	}
}

func TestListenCountsDeliveries(t *testing.T) {
	var out syncbuf.Buffer
	l, err := NewHandler(&out, Config{Status: 204})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)
	for i := 0; i < 3; i++ {
		h, body := binaryDelivery()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/any/path", bytes.NewReader(body))
		req.Header = h
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Errorf("status = %d, want 204", resp.StatusCode)
		}
	}
	for _, w := range []string{"--- delivery 1  attempt -  trace_id -\n", "--- delivery 3 "} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}

func TestListenBadSecret(t *testing.T) {
	if _, err := NewHandler(&syncbuf.Buffer{}, Config{Secret: "whsec_not base64!", Status: 200}); err == nil {
		t.Error("NewHandler accepted a secret that is not base64")
	}
}

// postBinary posts binaryDelivery to addr and returns the answer's status.
func postBinary(t *testing.T, addr string) int {
	t.Helper()
	h, body := binaryDelivery()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", bytes.NewReader(body))
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// checkStopped waits for errc, what the function named what returned once
// its context ended, and checks that it stopped gracefully, having closed
// stopped.
func checkStopped(t *testing.T, what string, errc <-chan error, stopped <-chan struct{}) {
	t.Helper()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("%s = %v, want nil after a graceful stop", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return after its context ended", what)
	}
	select {
	case <-stopped:
	default:
		t.Errorf("%s did not call stop", what)
	}
}

func TestServeShutsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewHandler(&syncbuf.Buffer{}, Config{Status: 200})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, func() { close(stopped) }, ln, l) }()
	postBinary(t, ln.Addr().String())
	cancel()
	checkStopped(t, "serve", errc, stopped)
	if _, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil || errors.Is(err, context.Canceled) {
		t.Errorf("GET after shutdown: err = %v, want a connection error", err)
	}
}

func TestRun(t *testing.T) {
	var out, log syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan struct{})
	errc := make(chan error, 1)
	c := Config{Addr: "127.0.0.1:0", Status: 202}
	go func() { errc <- Run(ctx, func() { close(stopped) }, c, &out, &log) }()
	const announce = "eventsidecar listen: receiving deliveries on http://"
	var addr string
	poll.Until(t, 10*time.Second, "Run says where it listens", func() bool {
		_, rest, ok := strings.Cut(log.String(), announce)
		addr, _, _ = strings.Cut(rest, "/\n")
		return ok && strings.HasSuffix(rest, "/\n")
	})
	if got := postBinary(t, addr); got != 202 || !strings.Contains(out.String(), "id: evt-1\n") {
		t.Errorf("status %d, output %q; want 202 and the delivery printed", got, out.String())
	}
	cancel()
	checkStopped(t, "Run", errc, stopped)
}

func TestRunRefuses(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"bad secret", Config{Addr: "127.0.0.1:0", Secret: "whsec_not base64!"}, "--secret: "},
		{"busy address", Config{Addr: busy.Addr().String()}, "listen " + busy.Addr().String() + ": "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log syncbuf.Buffer
			err := Run(context.Background(), func() {}, tt.c, &syncbuf.Buffer{}, &log)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || log.String() != "" {
				t.Errorf("Run = %v, log %q; want an error starting %q and nothing logged", err, log.String(), tt.want)
			}
		})
	}
}

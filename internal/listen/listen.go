// Package listen is the debug webhook receiver of `eventsidecar listen`:
// it prints each delivery it receives (attempt, trace id, signature,
// attributes, data) as text or JSON and verifies Standard Webhooks
// signatures.
package listen

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/eventsidecar/eventsidecar/internal/graceful"
	"github.com/eventsidecar/eventsidecar/wire"
)

// maxDeliveryBytes bounds the body of one delivery the receiver reads.
const maxDeliveryBytes = 16 << 20

// shutdownTimeout bounds the receiver's graceful shutdown.
const shutdownTimeout = 10 * time.Second

// Signature check results.
const (
	sigValid     = "valid"
	sigInvalid   = "invalid"
	sigUnsigned  = "unsigned"
	sigUnchecked = "unchecked"
)

// Config configures a receiver. The zero value listens on 127.0.0.1:8080,
// checks no signature and answers 200.
type Config struct {
	// Addr is the address Run listens on; NewHandler ignores it. Default
	// "127.0.0.1:8080".
	Addr string
	// Secret is a Standard Webhooks secret "whsec_<base64>": signatures are
	// verified and a delivery whose signature does not verify is answered
	// 401. Default "": signatures are not checked.
	Secret string
	// Status is the HTTP status a delivery is answered with, unless its
	// signature does not verify (401) or it is not a CloudEvent (400).
	// Default 200.
	Status int
	// JSON prints one JSON object per line for each delivery instead of
	// text. Default false.
	JSON bool
}

// defaultAddr is where Run listens when Config.Addr is "".
const defaultAddr = "127.0.0.1:8080"

// Run listens on c.Addr, says on log where it receives deliveries and
// serves NewHandler(out, c) until ctx ends; then it calls stop (so that,
// when ctx comes from signal.NotifyContext, a second signal ends the
// process at once) and shuts down gracefully within 10s. It returns nil
// after a graceful stop.
func Run(ctx context.Context, stop context.CancelFunc, c Config, out, log io.Writer) error {
	h, err := NewHandler(out, c)
	if err != nil {
		return err
	}
	addr := cmp.Or(c.Addr, defaultAddr)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	fmt.Fprintf(log, "eventsidecar listen: receiving deliveries on http://%s/\n", ln.Addr())
	return serve(ctx, stop, ln, h)
}

// serve serves h on ln until ctx ends, then calls stop and shuts down
// gracefully.
func serve(ctx context.Context, stop context.CancelFunc, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    1 << 20,
	}
	return graceful.Serve(ctx, ln, shutdownTimeout, srv.Serve, func(ctx context.Context) error {
		stop()
		return srv.Shutdown(ctx)
	})
}

// receiver prints each delivery it receives to out, one at a time.
type receiver struct {
	webhook *standardwebhooks.Webhook // nil: signatures are not checked
	status  int
	asJSON  bool
	mu      sync.Mutex // guards out and count
	out     io.Writer
	count   int
}

// NewHandler returns the handler of the listen command: every POST is a
// delivery, printed to w as text or, with c.JSON, as one JSON object per
// line; it answers c.Status, or 401 when c.Secret is set and the
// delivery's Standard Webhooks signature does not verify. It is safe for
// concurrent use; w is written by one delivery at a time.
func NewHandler(w io.Writer, c Config) (http.Handler, error) {
	l := &receiver{status: cmp.Or(c.Status, http.StatusOK), asJSON: c.JSON, out: w}
	if c.Secret != "" {
		wh, err := standardwebhooks.NewWebhook(c.Secret)
		if err != nil {
			return nil, fmt.Errorf("--secret: %w", err)
		}
		l.webhook = wh
	}
	return l, nil
}

// delivery is what the receiver shows of one request.
type delivery struct {
	Attempt        int               `json:"attempt"`
	TraceID        string            `json:"trace_id"`
	Signature      string            `json:"signature"`
	SignatureError string            `json:"signature_error,omitempty"`
	Attributes     map[string]string `json:"attributes"`
	Data           *string           `json:"data,omitempty"`
	DataBase64     string            `json:"data_base64,omitempty"`
	Error          string            `json:"error,omitempty"`
	names          []string          // attribute names in spec order
}

func (l *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "deliveries are POST requests", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDeliveryBytes))
	if err != nil {
		code := http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			code = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "read body: "+err.Error(), code)
		return
	}
	d := l.inspect(r, body)
	l.print(d)
	switch {
	case d.Signature == sigInvalid:
		http.Error(w, "signature does not verify: "+d.SignatureError, http.StatusUnauthorized)
	case d.Error != "":
		http.Error(w, d.Error, http.StatusBadRequest)
	default:
		w.WriteHeader(l.status)
	}
}

// inspect reads the delivery's headers and its CloudEvent.
func (l *receiver) inspect(r *http.Request, body []byte) *delivery {
	d := &delivery{Attributes: map[string]string{}, TraceID: traceID(r.Header.Get("traceparent"))}
	d.Attempt, _ = strconv.Atoi(r.Header.Get("eventsidecar-attempt"))
	d.Signature, d.SignatureError = l.verify(r.Header, body)
	ev, err := readEvent(r, body)
	if err != nil {
		d.Error = "not a CloudEvent: " + err.Error()
		d.setData(body)
		return d
	}
	wire.EachAttribute(ev, func(name, value string) {
		d.names = append(d.names, name)
		d.Attributes[name] = value
	})
	d.setData(ev.Data())
	return d
}

func (l *receiver) verify(h http.Header, body []byte) (result, reason string) {
	if l.webhook == nil {
		if h.Get(standardwebhooks.HeaderWebhookSignature) == "" {
			return sigUnsigned, ""
		}
		return sigUnchecked, ""
	}
	if err := l.webhook.Verify(body, h); err != nil {
		return sigInvalid, err.Error()
	}
	return sigValid, ""
}

// traceID is the trace-id field of a W3C traceparent, "" when malformed.
func traceID(traceparent string) string {
	parts := strings.Split(strings.TrimSpace(traceparent), "-")
	if len(parts) < 4 || len(parts[1]) != 32 {
		return ""
	}
	return parts[1]
}

// readEvent reads the request's CloudEvent, in binary or structured mode
// of the CloudEvents HTTP binding, with the decoders and the validation of
// the sidecar's publish path (package wire), which hold it to the spec as
// publishing does.
func readEvent(r *http.Request, body []byte) (*event.Event, error) {
	mode, err := wire.DetectMode(r.Header)
	if err != nil {
		return nil, err
	}
	var ev event.Event
	switch mode {
	case wire.ModeBinary:
		ev, err = wire.DecodeBinary(r.Header, body)
	case wire.ModeStructured:
		ev, err = wire.DecodeStructured(body)
	default:
		return nil, fmt.Errorf("neither binary mode (no ce-specversion header) nor structured (Content-Type %q)", r.Header.Get("Content-Type"))
	}
	if err == nil {
		err = wire.Validate(&ev)
	}
	if err != nil {
		return nil, err
	}
	return &ev, nil
}

func (d *delivery) setData(data []byte) {
	switch {
	case len(data) == 0:
	case utf8.Valid(data):
		s := string(data)
		d.Data = &s
	default:
		d.DataBase64 = base64.StdEncoding.EncodeToString(data)
	}
}

// print writes d to the receiver's output in one piece.
func (l *receiver) print(d *delivery) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count++
	var b bytes.Buffer
	if l.asJSON {
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(d)
	} else {
		l.writeText(&b, d)
	}
	_, _ = l.out.Write(b.Bytes())
}

func (l *receiver) writeText(b *bytes.Buffer, d *delivery) {
	attempt := ""
	if d.Attempt > 0 {
		attempt = strconv.Itoa(d.Attempt)
	}
	fmt.Fprintf(b, "--- delivery %d  attempt %s  trace_id %s", l.count, orDash(attempt), orDash(d.TraceID))
	if l.webhook != nil {
		fmt.Fprintf(b, "  signature %s", d.Signature)
		if d.SignatureError != "" {
			fmt.Fprintf(b, " (%s)", d.SignatureError)
		}
	}
	b.WriteByte('\n')
	if d.Error != "" {
		fmt.Fprintf(b, "error: %s\n", d.Error)
	}
	for _, name := range d.names {
		fmt.Fprintf(b, "%s: %s\n", name, d.Attributes[name])
	}
	switch {
	case d.Data != nil:
		fmt.Fprintf(b, "data:\n%s\n", *d.Data)
	case d.DataBase64 != "":
		fmt.Fprintf(b, "data (base64):\n%s\n", d.DataBase64)
	default:
		b.WriteString("data: (none)\n")
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

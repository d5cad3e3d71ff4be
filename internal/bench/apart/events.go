package apart

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/bench"
)

// eventBytes is the size of every event's data, as the issue measured.
const eventBytes = 256

// eventData is the data of every event but the end-to-end row's: 256
// bytes of JSON.
var eventData = padded(`{"order_id":"ord-0000000042","customer_id":"cus-0000000007","amount_cents":1299000,"currency":"EUR"`)

// padded is the JSON object that begins with head, a member "pad" filling
// it to eventBytes, and its closing brace.
func padded(head string) []byte {
	const pad = `,"pad":""}`
	n := max(eventBytes-len(head)-len(pad), 0)
	return []byte(head + `,"pad":"` + strings.Repeat("x", n) + `"}`)
}

// stampPrefix begins the data of the end-to-end row's events, followed by
// the Unix time in nanoseconds, in stampDigits digits, at which the load
// generator built the request.
const (
	stampPrefix = `{"sent_ns":`
	stampDigits = 19
)

// stamped is an end-to-end event's data, stamped with sent.
func stamped(sent time.Time) []byte {
	return padded(stampPrefix + fmt.Sprintf("%0*d", stampDigits, sent.UnixNano()))
}

// sentAt is the time an end-to-end event's data was stamped with; ok is
// false for data without a stamp.
func sentAt(data []byte) (t time.Time, ok bool) {
	if len(data) < len(stampPrefix)+stampDigits || !bytes.HasPrefix(data, []byte(stampPrefix)) {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt(string(data[len(stampPrefix):len(stampPrefix)+stampDigits]), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

// singleRequest is a binary-mode publish of worker w's seq-th event.
func singleRequest(ctx context.Context, url string, w int, seq uint64) (*http.Request, error) {
	return bench.BinaryRequest(ctx, url, bench.EventID(w, seq), eventData)
}

// stampedRequest is a binary-mode publish of worker w's seq-th event with
// its data stamped now.
func stampedRequest(ctx context.Context, url string, w int, seq uint64) (*http.Request, error) {
	return bench.BinaryRequest(ctx, url, bench.EventID(w, seq), stamped(time.Now()))
}

// subject is the subject the sidecar stores the events on, in its
// default stream.
var subject = config.Default().Broker.SubjectPrefix + "." + bench.Topic

// directMsg is what a direct nats.go publisher sends for worker w's seq-th
// event: its data, with its id as Nats-Msg-Id, on subject.
func directMsg(w int, seq uint64) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = eventData
	m.Header.Set(nats.MsgIdHdr, bench.EventID(w, seq))
	return m
}

package apart

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/bench"
)

// webhookSpec is the webhook role's settings.
type webhookSpec struct {
	Hint int // deliveries expected, to size its table
}

// arrivalsReq asks the webhook for its arrivals; when From is not zero,
// with the latencies of the stamped events sent from From until To.
type arrivalsReq struct {
	From, To time.Time
}

// arrivals is what the webhook has received so far.
type arrivals struct {
	At             time.Time // when it answered
	Received       int64     // distinct events
	Duplicates     int64     // deliveries of an event received before
	FirstDuplicate string    // the id of the first of them
	Timed          int64     // stamped events sent within the window asked for
	P50, P99       time.Duration
}

// webhook is the app's webhook: it reads each delivery, notes its Ce-Id
// and, for a stamped event, the latency from the stamp, and answers 200
// (400 without an id, which the sidecar dead-letters). It is safe for
// concurrent use.
type webhook struct {
	mu       sync.Mutex
	seen     map[string]struct{}
	dups     int64
	firstDup string
	stamps   []stampedArrival
}

// stampedArrival is a stamped event's stamp and latency.
type stampedArrival struct {
	sent    time.Time
	latency time.Duration
}

// serveWebhook serves the webhook on 127.0.0.1; its hello has its URL,
// and it answers each arrivalsReq with its arrivals.
func serveWebhook(_ context.Context, spec []byte, l *link) error {
	var sp webhookSpec
	if err := decodeSpec(spec, &sp); err != nil {
		return err
	}
	wh := &webhook{seen: make(map[string]struct{}, sp.Hint)}
	srv, ln, err := listenHTTP(wh)
	if err != nil {
		return err
	}
	return serveHTTP(srv, ln, l, "http://"+ln.Addr().String()+"/events", func() error {
		return answerEach(l, func(req arrivalsReq) any { return wh.arrivals(req) })
	})
}

func (wh *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var head [len(stampPrefix) + stampDigits]byte
	n, err := io.ReadFull(r.Body, head[:])
	if err == nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		_, err = io.Copy(io.Discard, r.Body)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	at := time.Now()
	id := r.Header.Get("Ce-Id")
	if id == "" {
		http.Error(w, "no ce-id", http.StatusBadRequest)
		return
	}
	sent, ok := sentAt(head[:n])
	wh.note(id, sent, ok, at)
	w.WriteHeader(http.StatusOK)
}

// note records a delivery of the event with id that came at at, stamped
// with sent when stamped.
func (wh *webhook) note(id string, sent time.Time, stamped bool, at time.Time) {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	if _, dup := wh.seen[id]; dup {
		wh.dups++
		if wh.firstDup == "" {
			wh.firstDup = id
		}
		return
	}
	wh.seen[id] = struct{}{}
	if stamped {
		wh.stamps = append(wh.stamps, stampedArrival{sent: sent, latency: at.Sub(sent)})
	}
}

// arrivals answers req.
func (wh *webhook) arrivals(req arrivalsReq) arrivals {
	wh.mu.Lock()
	a := arrivals{At: time.Now(), Received: int64(len(wh.seen)), Duplicates: wh.dups, FirstDuplicate: wh.firstDup}
	var lat []time.Duration
	if !req.From.IsZero() {
		for _, s := range wh.stamps {
			if !s.sent.Before(req.From) && s.sent.Before(req.To) {
				lat = append(lat, s.latency)
			}
		}
	}
	wh.mu.Unlock()
	if a.Timed = int64(len(lat)); a.Timed > 0 {
		slices.Sort(lat)
		a.P50, a.P99 = bench.Percentile(lat, 0.50), bench.Percentile(lat, 0.99)
	}
	return a
}

package bench

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventsidecar/eventsidecar/config"
)

// receiver is the app's webhook: a net/http server on 127.0.0.1 that reads
// each delivery's body, notes its Ce-Id and when it came, and answers 200
// at once (400 for a delivery without an id, which the sidecar then
// dead-letters). Its methods are safe for concurrent use. The caller must
// Close it.
type receiver struct {
	srv  *http.Server
	url  string
	done chan error

	count atomic.Int64 // distinct ids received

	mu       sync.Mutex
	got      map[string]time.Time // id → first receipt
	dups     int64                // deliveries of an id already received
	firstDup string
	last     time.Time     // the latest receipt, or when gaps were reset
	gap      time.Duration // the longest time between receipts since then
}

// startReceiver serves the webhook; hint is the number of deliveries
// expected, to size its table.
func startReceiver(hint int) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: listen: %w", err)
	}
	h := config.Default().HTTP
	r := &receiver{
		url:  "http://" + ln.Addr().String() + "/events",
		done: make(chan error, 1),
		got:  make(map[string]time.Time, hint),
	}
	r.srv = &http.Server{
		Handler:      http.HandlerFunc(r.serveHTTP),
		ReadTimeout:  h.ReadTimeout,
		WriteTimeout: h.WriteTimeout,
		IdleTimeout:  h.IdleTimeout,
	}
	go func() { r.done <- r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if _, err := io.Copy(io.Discard, req.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	at := time.Now()
	id := req.Header.Get("Ce-Id")
	if id == "" {
		http.Error(w, "no ce-id", http.StatusBadRequest)
		return
	}
	r.note(id, at)
	w.WriteHeader(http.StatusOK)
}

func (r *receiver) note(id string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.got[id]; dup {
		r.dups++
		if r.firstDup == "" {
			r.firstDup = id
		}
		return
	}
	r.got[id] = at
	r.count.Add(1)
	if !r.last.IsZero() {
		r.gap = max(r.gap, at.Sub(r.last))
	}
	r.last = maxTime(r.last, at)
}

// resetGap starts measuring the longest gap between receipts from now.
func (r *receiver) resetGap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last, r.gap = time.Now(), 0
}

// longestGap is the longest time without a receipt since resetGap, up to
// now.
func (r *receiver) longestGap() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last.IsZero() {
		return 0
	}
	return max(r.gap, time.Since(r.last))
}

// received is the number of distinct events received.
func (r *receiver) received() int64 { return r.count.Load() }

// duplicates is the number of deliveries of an id received before, and
// the first such id.
func (r *receiver) duplicates() (int64, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dups, r.firstDup
}

// receivedAt returns when the event with id first came.
func (r *receiver) receivedAt(id string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.got[id]
	return at, ok
}

// missing is how many of ids have not come.
func (r *receiver) missing(ids []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := r.got[id]; !ok {
			n++
		}
	}
	return n
}

// Close closes the server and its connections at once; deliveries must
// have stopped. (A graceful Shutdown would wait 5s for the connections the
// sidecar opened but never used.)
func (r *receiver) Close() error {
	err := r.srv.Close()
	if serr := <-r.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

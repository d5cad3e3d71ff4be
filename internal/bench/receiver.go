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

// arrivals is the app's ledger of the deliveries it received: each
// event's id and when it first came, the duplicates, and the longest time
// without one. Its methods are safe for concurrent use.
type arrivals struct {
	count atomic.Int64 // distinct ids received

	mu       sync.Mutex
	got      map[string]time.Time // id → first receipt
	dups     int64                // deliveries of an id already received
	firstDup string
	last     time.Time     // the latest receipt, or when gaps were reset
	gap      time.Duration // the longest time between receipts since then
}

// newArrivals is an empty ledger; hint is the number of deliveries
// expected, to size its table.
func newArrivals(hint int) *arrivals {
	return &arrivals{got: make(map[string]time.Time, hint)}
}

// receiver is the app's webhook: a net/http server on 127.0.0.1 that reads
// each delivery's body, notes its Ce-Id and when it came in its arrivals,
// and answers 200 at once (400 for a delivery without an id, which the
// sidecar then dead-letters). Its methods are safe for concurrent use. The
// caller must Close it.
type receiver struct {
	*arrivals
	srv  *http.Server
	url  string
	done chan error
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
		arrivals: newArrivals(hint),
		url:      "http://" + ln.Addr().String() + "/events",
		done:     make(chan error, 1),
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

// note records a delivery of the event with id that came at at.
func (a *arrivals) note(id string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.got[id]; dup {
		a.dups++
		if a.firstDup == "" {
			a.firstDup = id
		}
		return
	}
	a.got[id] = at
	a.count.Add(1)
	if !a.last.IsZero() {
		a.gap = max(a.gap, at.Sub(a.last))
	}
	a.last = maxTime(a.last, at)
}

// resetGap starts measuring the longest gap between receipts from now.
func (a *arrivals) resetGap() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last, a.gap = time.Now(), 0
}

// longestGap is the longest time without a receipt since resetGap, up to
// now.
func (a *arrivals) longestGap() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last.IsZero() {
		return 0
	}
	return max(a.gap, time.Since(a.last))
}

// received is the number of distinct events received.
func (a *arrivals) received() int64 { return a.count.Load() }

// duplicates is the number of deliveries of an id received before, and
// the first such id.
func (a *arrivals) duplicates() (int64, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dups, a.firstDup
}

// receivedAt returns when the event with id first came.
func (a *arrivals) receivedAt(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.got[id]
	return at, ok
}

// missing is how many of ids have not come.
func (a *arrivals) missing(ids []string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := a.got[id]; !ok {
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

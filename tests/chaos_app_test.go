package tests

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// chaosApp is the chaos suite's app: a webhook on a fixed port that can be
// stopped and started again there, told to answer 503, and made to take
// its time over each answer. It records every receipt. Events are told
// apart by id: every event the suite publishes has the source /chaos.
type chaosApp struct {
	t      *testing.T
	addr   string
	delay  atomic.Int64 // each answer takes this long (a time.Duration): deliveries stay in flight for a while
	status atomic.Int32 // the status it answers with

	mu       sync.Mutex
	srv      *http.Server // nil while stopped
	events   map[string]*appEvent
	oks      []time.Time    // when each 2xx answer was given, in order
	dups     []string       // receipts of an event it had already answered 2xx for: "id (first 2xx at T, again at T)"
	inFlight map[string]int // receipts not answered yet, by path
}

// appEvent is what the app saw of one event.
type appEvent struct {
	receipts int
	received time.Time // its first receipt
	firstOK  time.Time // when it first answered 2xx for it; zero before
}

// newChaosApp starts an app answering 200 at once, on a fixed port, and
// stops it at the end of the test.
func newChaosApp(t *testing.T) *chaosApp {
	t.Helper()
	a := &chaosApp{t: t, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(fixedPort(t))),
		events: map[string]*appEvent{}, inFlight: map[string]int{}}
	a.status.Store(http.StatusOK)
	a.start()
	t.Cleanup(a.stop)
	return a
}

// endpoint is the webhook URL of path.
func (a *chaosApp) endpoint(path string) string {
	return "http://" + a.addr + path
}

// start serves on the app's address, waiting out another process that
// holds it.
func (a *chaosApp) start() {
	a.t.Helper()
	var ln net.Listener
	poll.Until(a.t, 30*time.Second, "listen on "+a.addr, func() bool {
		var err error
		ln, err = net.Listen("tcp", a.addr)
		return err == nil
	})
	srv := &http.Server{Handler: a}
	go func() { _ = srv.Serve(ln) }()
	a.mu.Lock()
	a.srv = srv
	a.mu.Unlock()
}

// stop closes the app's port (connections are refused from then on) after
// the answers in progress are sent, so that every 2xx it counts is one the
// sidecar got.
func (a *chaosApp) stop() {
	a.mu.Lock()
	srv := a.srv
	a.srv = nil
	a.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		a.t.Errorf("stop the app: %v", err)
	}
}

// ServeHTTP records the receipt and answers with the app's status after
// its delay; when the sidecar goes away first, it does not answer.
func (a *chaosApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	id := r.Header.Get("ce-id")
	a.receive(id, r.URL.Path)
	defer a.leave(r.URL.Path)
	select {
	case <-r.Context().Done():
		return
	case <-time.After(time.Duration(a.delay.Load())):
	}
	status := int(a.status.Load())
	if status/100 == 2 {
		a.answered(id)
	}
	w.WriteHeader(status)
}

func (a *chaosApp) receive(id, path string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ev := a.events[id]
	if ev == nil {
		ev = &appEvent{received: time.Now()}
		a.events[id] = ev
	}
	ev.receipts++
	if !ev.firstOK.IsZero() {
		a.dups = append(a.dups, fmt.Sprintf("%s (2xx at %s, again at %s)", id,
			ev.firstOK.Format(time.StampMilli), time.Now().Format(time.StampMilli)))
	}
	a.inFlight[path]++
}

func (a *chaosApp) leave(path string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.inFlight[path]--
}

func (a *chaosApp) answered(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	a.oks = append(a.oks, now)
	if ev := a.events[id]; ev.firstOK.IsZero() {
		ev.firstOK = now
	}
}

// setDelay makes the app take d over each answer from now on.
func (a *chaosApp) setDelay(d time.Duration) {
	a.delay.Store(int64(d))
}

// inFlightOn counts the deliveries to path being answered now.
func (a *chaosApp) inFlightOn(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inFlight[path]
}

// okCount counts the 2xx answers given.
func (a *chaosApp) okCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.oks)
}

// firstOKAfter returns when the app first answered 2xx after t0.
func (a *chaosApp) firstOKAfter(t0 time.Time) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := sort.Search(len(a.oks), func(i int) bool { return a.oks[i].After(t0) })
	if i == len(a.oks) {
		return time.Time{}, false
	}
	return a.oks[i], true
}

// newSince returns, in order, when the app first answered 2xx for each
// event it first received after t0.
func (a *chaosApp) newSince(t0 time.Time) []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	var oks []time.Time
	for _, ev := range a.events {
		if ev.received.After(t0) && !ev.firstOK.IsZero() {
			oks = append(oks, ev.firstOK)
		}
	}
	slices.SortFunc(oks, time.Time.Compare)
	return oks
}

// delivered returns when the app first answered 2xx for id.
func (a *chaosApp) delivered(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ev := a.events[id]
	if ev == nil || ev.firstOK.IsZero() {
		return time.Time{}, false
	}
	return ev.firstOK, true
}

// missing returns the ids the app has not answered 2xx for.
func (a *chaosApp) missing(ids []string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, id := range ids {
		if ev := a.events[id]; ev == nil || ev.firstOK.IsZero() {
			out = append(out, id)
		}
	}
	return out
}

// tally returns how many events the app answered 2xx for, and the
// receipts of events it had already answered 2xx for.
func (a *chaosApp) tally() (delivered int, duplicates []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ev := range a.events {
		if !ev.firstOK.IsZero() {
			delivered++
		}
	}
	return delivered, slices.Clone(a.dups)
}

// String describes what the app saw, for failure messages.
func (a *chaosApp) String() string {
	delivered, dups := a.tally()
	return fmt.Sprintf("app on %s: %d events answered 2xx, %d duplicate receipts, %d 2xx answers", a.addr, delivered, len(dups), a.okCount())
}

package bench

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/pause"
)

const (
	// e2eSenders is the end-to-end scenario's pool of senders, and
	// e2eInFlight its subscription's max_in_flight.
	e2eSenders  = 64
	e2eInFlight = 64
	// e2eGrace is how long, after the last answer, the webhook may go
	// without receiving any of the accepted events still missing before
	// those count as lost.
	e2eGrace = 5 * time.Second
	// e2ePoll is how often the webhook is checked for the missing events.
	e2ePoll = 10 * time.Millisecond
)

// measureEndToEnd publishes single events over HTTP at o.E2ERate per
// second to a fresh sidecar that delivers them to a webhook, and measures
// the time from each request's start to the event's arrival at the
// webhook.
func measureEndToEnd(ctx context.Context, o Options, s scenario) (res Result, err error) {
	sc, err := startSidecar(ctx, o)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, sc.Close()) }()
	l := OpenLoop{Rate: o.E2ERate, Senders: e2eSenders, Warmup: o.Warmup, Duration: o.Duration}
	r, err := startReceiver(l.total())
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, r.Close()) }()
	d, err := newDeliverer(ctx, sc.node, r.url, s.concurrency, o.log())
	if err != nil {
		return res, err
	}
	d.start(ctx)
	run := l.run(ctx, sc.url, singleRequest)
	lost := run.await(ctx, r.arrivals, e2eGrace)
	st, err := d.stop(ctx)
	if err != nil {
		return res, err
	}
	res = run.summarize(s, r.latency)
	res.Rate, res.Undelivered = l.Rate, lost
	n, first := failures(st, r.arrivals)
	res.Failed += n
	if res.FirstError == "" {
		res.FirstError = first
	}
	return res, nil
}

// OpenLoop is an open-loop load generator: it sends single events at a
// fixed rate on a schedule (the i-th at Start + i/Rate) that never waits
// for answers, from a bounded pool of Senders. When every sender is busy
// the schedule slips, and the achieved rate shows it. The events of the
// first Warmup are not measured; the schedule ends after Duration more.
// It is a plain value.
type OpenLoop struct {
	// Rate is the events per second, Senders the number of requests in
	// flight at most.
	Rate, Senders int
	// Start is when the schedule starts; the zero time is when the run
	// does.
	Start time.Time
	// Warmup and Duration are the unmeasured and the measured time.
	Warmup, Duration time.Duration
}

// total is the number of events scheduled.
func (l OpenLoop) total() int {
	return int(float64(l.Rate) * (l.Warmup + l.Duration).Seconds())
}

// send is one scheduled event's request: when it started, and its error.
type send struct {
	at  time.Time
	err error
}

// openRun is what an OpenLoop sent: sends[i] is the request of worker 0's
// i-th event. It is a plain value, read after the run.
type openRun struct {
	sends        []send
	win          window
	measuredFrom int // the first event scheduled after the warm-up
}

// Measure sends build's requests for worker 0 to url on the schedule, and
// returns once every request has its answer, with the failed requests, the
// accepted events (warm-up included) and, of those scheduled after the
// warm-up, the number (Events) and the achieved rate. Latencies, Requests,
// Key and Name are left empty.
func (l OpenLoop) Measure(ctx context.Context, url string, build RequestFunc) Result {
	return l.run(ctx, url, build).summarize(scenario{concurrency: l.Senders}, nil)
}

// run sends build's requests to url until the schedule ends or ctx does,
// and returns once every request has its answer.
func (l OpenLoop) run(ctx context.Context, url string, build RequestFunc) openRun {
	start := l.Start
	if start.IsZero() {
		start = time.Now()
	}
	run := openRun{
		sends:        make([]send, l.total()),
		win:          window{warmEnd: start.Add(l.Warmup), end: start.Add(l.Warmup + l.Duration)},
		measuredFrom: int(float64(l.Rate) * l.Warmup.Seconds()),
	}
	client := NewClient(l.Senders)
	defer client.CloseIdleConnections()
	do := HTTPOp(client, url, build)
	jobs := make(chan int, l.Senders)
	var wg sync.WaitGroup
	for range l.Senders {
		wg.Go(func() {
			for i := range jobs {
				run.sends[i].at = time.Now()
				run.sends[i].err = do(ctx, 0, uint64(i))
			}
		})
	}
	n := l.schedule(ctx, start, jobs)
	close(jobs)
	wg.Wait()
	run.sends = run.sends[:n]
	return run
}

// schedule hands event i to jobs at start + i/rate, until every event is
// handed out or ctx ends; late events are handed out at once. It returns
// how many it handed out.
func (l OpenLoop) schedule(ctx context.Context, start time.Time, jobs chan<- int) int {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for i := range l.total() {
		due := start.Add(time.Duration(i) * time.Second / time.Duration(l.Rate))
		if d := time.Until(due); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				return i
			}
		}
		select {
		case jobs <- i:
		case <-ctx.Done():
			return i
		}
	}
	return l.total()
}

// await polls a until every accepted event has come, none more of them
// has for grace, or ctx ends, and returns how many have not come.
func (run openRun) await(ctx context.Context, a *arrivals, grace time.Duration) int64 {
	var ids []string
	for i, sd := range run.sends {
		if sd.err == nil {
			ids = append(ids, EventID(0, uint64(i)))
		}
	}
	n, deadline := a.missing(ids), time.Now().Add(grace)
	for n > 0 && time.Now().Before(deadline) && pause.For(ctx, e2ePoll) {
		if m := a.missing(ids); m < n {
			n, deadline = m, time.Now().Add(grace)
		}
	}
	return int64(n)
}

// summarize is the run's Result: the failed requests, the accepted
// events, and of those scheduled after the warm-up the achieved rate and,
// unless latency is nil, the latency of each one latency knows (the i-th
// event's, sent at sent).
func (run openRun) summarize(s scenario, latency func(i int, sent time.Time) (time.Duration, bool)) Result {
	res := Result{Key: s.key, Name: s.name, Concurrency: s.concurrency, EventsPerRequest: 1, Delivery: true}
	lat := make([]time.Duration, 0, max(len(run.sends)-run.measuredFrom, 0))
	var last time.Time
	for i, sd := range run.sends {
		if sd.err != nil {
			res.Failed++
			if res.FirstError == "" {
				res.FirstError = sd.err.Error()
			}
			continue
		}
		res.Accepted++
		if i < run.measuredFrom {
			continue
		}
		res.Events++
		last = maxTime(last, sd.at)
		if latency == nil {
			continue
		}
		if d, ok := latency(i, sd.at); ok {
			lat = append(lat, d)
		}
	}
	res.Requests = int64(len(lat))
	if res.Events == 0 || (latency != nil && len(lat) == 0) {
		return res
	}
	res.Elapsed = max(run.win.end.Sub(run.win.warmEnd), last.Sub(run.win.warmEnd))
	res.EventsPerSec = float64(res.Events) / res.Elapsed.Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50, res.P99 = Percentile(lat, 0.50), Percentile(lat, 0.99)
	}
	return res
}

// latency is the time from sent to the arrival of worker 0's i-th event,
// if it came.
func (r *receiver) latency(i int, sent time.Time) (time.Duration, bool) {
	at, ok := r.receivedAt(EventID(0, uint64(i)))
	return at.Sub(sent), ok
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Op performs one request as worker w, the worker's seq-th (from 0), and
// reports whether it succeeded. It is called from w's goroutine only.
type Op func(ctx context.Context, w int, seq uint64) error

// window is the time frame of one run: requests started before warmEnd are
// the warm-up and not measured; no request starts at or after end but the
// first measured one of a load generator that has none yet (see gate).
type window struct {
	warmEnd, end time.Time
}

// measures reports whether a request started at start is measured.
func (win window) measures(start time.Time) bool {
	return !start.Before(win.warmEnd)
}

// gate admits one load generator's requests into a run in win: each
// request that starts before win.end and, when none of those is measured,
// one that starts after it, so that every generator measures at least one
// request however long its requests take. It is used by one goroutine.
type gate struct {
	win      window
	measured bool // a request that is measured has been admitted
}

// admit reports whether a request may start at now; none may once ctx has
// ended.
func (g *gate) admit(ctx context.Context, now time.Time) bool {
	if ctx.Err() != nil || (g.measured && !now.Before(g.win.end)) {
		return false
	}
	g.measured = g.measured || g.win.measures(now)
	return true
}

// sample is what one worker saw. It is owned by one goroutine while the run
// lasts and read only after it.
type sample struct {
	lat      []time.Duration // latencies of the measured requests
	ok       int64           // successful requests, warm-up included
	failed   int64           // failed requests, warm-up included
	firstErr error
	first    time.Time // start of the first measured request, successful or not
	last     time.Time // end of the last measured request
}

// newSample preallocates room for the latencies of expected requests.
func newSample(expected int) sample {
	return sample{lat: make([]time.Duration, 0, expected)}
}

// add records one request that ran from start to end.
func (s *sample) add(start, end time.Time, win window, err error) {
	measured := win.measures(start)
	if measured && s.first.IsZero() {
		s.first = start
	}
	if err != nil {
		s.failed++
		if s.firstErr == nil {
			s.firstErr = err
		}
		return
	}
	s.ok++
	if !measured {
		return
	}
	s.lat = append(s.lat, end.Sub(start))
	if end.After(s.last) {
		s.last = end
	}
}

// late reports whether s's first measured request started at or after
// win.end: its worker measured nothing within the measured duration.
func (s *sample) late(win window) bool {
	return !s.first.IsZero() && !s.first.Before(win.end)
}

// expectedPerSecond is a generous guess of the requests per second of the
// whole machine, to preallocate latency slices.
const expectedPerSecond = 60000

// Load is a closed-loop load generator: Concurrency workers, each issuing
// requests back to back from Start for Warmup, which is not measured, then
// for Duration, and on until it has measured one. It is a plain value.
type Load struct {
	// Concurrency is the number of workers.
	Concurrency int
	// Start is when the warm-up starts; the zero time is when the run does.
	// A later call measures from Start + Warmup still, with a shorter
	// warm-up.
	Start time.Time
	// Warmup and Duration are the unmeasured and the measured time.
	Warmup, Duration time.Duration
}

// window is l's time frame, starting now when l.Start is zero.
func (l Load) window() window {
	start := l.Start
	if start.IsZero() {
		start = time.Now()
	}
	warmEnd := start.Add(l.Warmup)
	return window{warmEnd: warmEnd, end: warmEnd.Add(l.Duration)}
}

// Measure runs do from each worker and summarizes what they saw, each
// request carrying perRequest events: the measured requests and events,
// the time they took from the end of the warm-up, the events/s over it,
// p50 and p99 (nearest rank), the failed requests and accepted events
// (warm-up included) and a note when a worker went on past the measured
// duration. Key and Name are left empty.
func (l Load) Measure(ctx context.Context, perRequest int, do Op) Result {
	samples, win := l.run(ctx, do)
	return summarize(scenario{concurrency: l.Concurrency, perRequest: perRequest}, measurement{samples: samples, win: win})
}

// run calls do from each worker while its gate admits the calls (until the
// window has closed and the worker has measured a call, or ctx ends) and
// returns one sample per worker with the window it used.
func (l Load) run(ctx context.Context, do Op) ([]sample, window) {
	expected := int(l.Duration.Seconds()*expectedPerSecond)/l.Concurrency + 1024
	samples := make([]sample, l.Concurrency)
	win := l.window()
	var wg sync.WaitGroup
	for w := range samples {
		samples[w] = newSample(expected)
		wg.Go(func() {
			s, g := &samples[w], gate{win: win}
			for seq := uint64(0); ; seq++ {
				start := time.Now()
				if !g.admit(ctx, start) {
					return
				}
				err := do(ctx, w, seq)
				s.add(start, time.Now(), win, err)
			}
		})
	}
	wg.Wait()
	return samples, win
}

// RequestFunc builds worker w's seq-th request to url.
type RequestFunc func(ctx context.Context, url string, w int, seq uint64) (*http.Request, error)

// HTTPOp sends the requests build makes with c; a request fails on a
// transport error or a status other than 2xx. Its body is read to the end,
// so that the connection is kept alive.
func HTTPOp(c *http.Client, url string, build RequestFunc) Op {
	return func(ctx context.Context, w int, seq uint64) error {
		req, err := build(ctx, url, w, seq)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("bench: POST %s: %w", url, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			detail, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			_, _ = io.Copy(io.Discard, resp.Body)
			return fmt.Errorf("bench: POST %s: status %d: %s", url, resp.StatusCode, detail)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return fmt.Errorf("bench: POST %s: read response: %w", url, err)
		}
		return nil
	}
}

// NewClient is an HTTP/1.1 keep-alive client for concurrency workers on one
// host: one connection per worker, no proxy, no compression, each request
// bounded by 30s. The caller should CloseIdleConnections when done.
func NewClient(concurrency int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			MaxConnsPerHost:     concurrency,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		Timeout: requestTimeout,
	}
}

// requestTimeout bounds each request of the load generator, HTTP or gRPC.
const requestTimeout = 30 * time.Second

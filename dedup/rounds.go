package dedup

import (
	"context"
	"sync"
)

// rounds runs one request at a time on behalf of the callers that join
// it (group commit): a caller joins the next round, which starts once a
// caller waits for it and no round is in flight, or as soon as the round
// in flight has ended, so every round's request starts after all of its
// callers joined, and a burst of callers costs one request, or two. The
// first caller to wait for a round that nothing runs runs it itself, on
// its own goroutine, so an uncontended caller costs no goroutine of its
// own; a round that is due when another ends runs on a goroutine of its
// own. The zero value needs run set; safe for concurrent use.
type rounds struct {
	run func(*round) error // the request of one round, with its callers' keys

	mu      sync.Mutex
	running bool   // a round is in flight
	next    *round // the round after it, nil until someone joins
}

// round is one request of a rounds and what its callers gave it.
type round struct {
	keys []logKey      // the keys its callers brought
	done chan struct{} // closed when its request ended
	err  error         // the request's error, once done is closed
}

// join adds k to the next round, making the round when none was joined
// yet, and returns it; k may be nil for a caller that only needs some
// request to begin after it asked. wait starts it.
func (g *rounds) join(k *logKey) *round {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.next == nil {
		g.next = &round{done: make(chan struct{})}
	}
	r := g.next
	if k != nil {
		r.keys = append(r.keys, *k)
	}
	return r
}

// wait returns the error of r's request once it ended, or ctx's when ctx
// ends first. When r is due and no round is in flight, the caller runs
// it, to its end whatever ctx does (run bounds its request).
func (g *rounds) wait(ctx context.Context, r *round) error {
	g.mu.Lock()
	lead := g.next == r && !g.running
	if lead {
		g.running, g.next = true, nil
	}
	g.mu.Unlock()
	if lead {
		g.lead(r)
		return r.err
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// lead runs r, which the caller took to run, then starts the round joined
// meanwhile, if any, on a goroutine of its own.
func (g *rounds) lead(r *round) {
	r.err = g.run(r)
	close(r.done)
	g.mu.Lock()
	defer g.mu.Unlock()
	next := g.next
	g.next, g.running = nil, next != nil
	if next != nil {
		go g.lead(next)
	}
}

package dedup

import (
	"context"
	"sync"
)

// rounds runs one request at a time on behalf of the callers that join
// it (group commit): a caller joins the next round, which starts as soon
// as the round in flight, if any, has ended, so every round's request
// starts after all of its callers joined, and a burst of callers costs
// one request, or two. The zero value needs run set; safe for concurrent
// use.
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

// join adds the caller, and k when not nil, to the next round, starting
// it when no round is in flight.
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
	if !g.running {
		g.running, g.next = true, nil
		go g.loop(r)
	}
	return r
}

// pend returns the round that starts next, whose request has not begun,
// making it, without keys and without starting it, when none was joined
// yet: the next caller to join, or a later kick, starts it. A caller that
// only needs some request to begin after it asked waits for that round
// instead of starting one of its own.
func (g *rounds) pend() *round {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.next == nil {
		g.next = &round{done: make(chan struct{})}
	}
	return g.next
}

// kick starts r, a round pend returned, if it has not started and no
// round is in flight; else it starts, or started, after the one in
// flight.
func (g *rounds) kick(r *round) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.next == r && !g.running {
		g.running, g.next = true, nil
		go g.loop(r)
	}
}

// loop runs r, then each round joined meanwhile, until none is.
func (g *rounds) loop(r *round) {
	for r != nil {
		r.err = g.run(r)
		close(r.done)
		g.mu.Lock()
		r, g.next = g.next, nil
		g.running = r != nil
		g.mu.Unlock()
	}
}

// wait returns the error of r's request once it ended, or ctx's when ctx
// ends first.
func (r *round) wait(ctx context.Context) error {
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

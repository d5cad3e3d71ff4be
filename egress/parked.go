package egress

import (
	"context"
	"sync"
	"time"
)

// parked is the set of a dispatcher's events waiting in memory: behind
// their key, to retry in place, for their turn to probe, or for their
// record. keepalive keeps them from being delivered again meanwhile. The
// zero value is empty; safe for concurrent use.
type parked struct {
	mu    sync.Mutex
	items map[*item]struct{}
}

// add parks it until remove.
func (p *parked) add(it *item) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.items == nil {
		p.items = map[*item]struct{}{}
	}
	p.items[it] = struct{}{}
}

// remove unparks it.
func (p *parked) remove(it *item) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.items, it)
}

// keepalive tells the broker, every interval, that the parked events are
// still being worked on, until ctx ends.
func (p *parked) keepalive(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		for it := range p.items {
			_ = it.msg.InProgress()
		}
		p.mu.Unlock()
	}
}

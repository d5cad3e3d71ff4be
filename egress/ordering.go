package egress

import "sync"

// keyed serializes the deliveries of events that share a partition key:
// while a key is busy its later events wait, in the order they arrived
// (the stream's order), and other keys go on. Safe for concurrent use.
type keyed struct {
	mu     sync.Mutex
	queues map[string][]*item // present (perhaps empty) while the key is busy
}

func newKeyed() *keyed { return &keyed{queues: map[string][]*item{}} }

// admit reports whether it may be delivered now; if its key is busy, it is
// queued behind the key's earlier events and admit returns false.
func (k *keyed) admit(key string, it *item) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	q, busy := k.queues[key]
	if !busy {
		k.queues[key] = nil
		return true
	}
	k.queues[key] = append(q, it)
	return false
}

// next returns the key's next waiting event, or nil after marking the key
// idle when none waits.
func (k *keyed) next(key string) *item {
	k.mu.Lock()
	defer k.mu.Unlock()
	q := k.queues[key]
	if len(q) == 0 {
		delete(k.queues, key)
		return nil
	}
	it := q[0]
	q[0] = nil
	k.queues[key] = q[1:]
	return it
}

package egress

import "sync"

// inflight is the set of a subscription's events (by stream sequence)
// being delivered in this sidecar, by any of its dispatchers. The broker
// redelivers an event whose ack wait passed while it waited in this
// sidecar, and the copy must not reach the app beside the first: the
// first one's settlement settles both (the broker acknowledges by stream
// sequence). The zero value is empty; it is safe for concurrent use.
type inflight struct {
	mu   sync.Mutex
	seqs map[uint64]struct{}
}

// claim adds seq and reports true, or reports false when it is in
// already.
func (f *inflight) claim(seq uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.seqs[seq]; ok {
		return false
	}
	if f.seqs == nil {
		f.seqs = map[uint64]struct{}{}
	}
	f.seqs[seq] = struct{}{}
	return true
}

// release removes seq.
func (f *inflight) release(seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.seqs, seq)
}

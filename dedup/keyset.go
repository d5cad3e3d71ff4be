package dedup

import (
	"sync"
	"time"
)

// logKeyLen is the length of a logKey: half a SHA-256, which keeps the
// chance of two events' keys colliding negligible for any number of
// events a duplicate window holds.
const logKeyLen = 16

// logKey names one event of one subscription in the delivered log: the
// first half of the SHA-256 of the three (deliveredDigest).
type logKey [logKeyLen]byte

// keySet holds the keys of the delivered log with the time each was
// recorded, for the duplicate window: a key recorded longer ago is not in
// it, and is dropped when the set is next swept (every quarter window,
// while keys are added). Safe for concurrent use.
type keySet struct {
	window time.Duration

	mu    sync.Mutex
	at    map[logKey]int64 // unix nanoseconds of the latest record
	swept time.Time
}

// add notes that k was recorded at t.
func (s *keySet) add(k logKey, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at, s.swept = map[logKey]int64{}, t
	}
	if ns := t.UnixNano(); ns > s.at[k] {
		s.at[k] = ns
	}
	if t.Sub(s.swept) > s.window/4 {
		s.sweep(t)
	}
}

// sweep drops the keys recorded a window before now; s.mu is held.
func (s *keySet) sweep(now time.Time) {
	oldest := now.Add(-s.window).UnixNano()
	for k, ns := range s.at {
		if ns <= oldest {
			delete(s.at, k)
		}
	}
	s.swept = now
}

// has reports whether k was recorded within the window before now.
func (s *keySet) has(k logKey, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns, ok := s.at[k]
	return ok && ns > now.Add(-s.window).UnixNano()
}

// len is how many keys the set holds, expired ones not yet swept
// included.
func (s *keySet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at)
}

package egress

import (
	"sync"
	"testing"
)

// TestWorkersRunEveryJobOnAtMostLimit runs jobs the way the dispatcher
// does, each holding one of limit slots, and checks that every job ran,
// that limit of them ran at once, and that no more than limit goroutines
// were started for them.
func TestWorkersRunEveryJobOnAtMostLimit(t *testing.T) {
	const limit, jobs = 3, 200
	w := newWorkers(limit)
	slots := make(chan struct{}, limit)
	var (
		mu      sync.Mutex
		ran     int
		started sync.WaitGroup // the first limit jobs, all running at once
		release = make(chan struct{})
		done    sync.WaitGroup
	)
	started.Add(limit)
	for i := range jobs {
		slots <- struct{}{}
		done.Add(1)
		w.run(func() {
			defer done.Done()
			defer func() { <-slots }()
			if i < limit {
				started.Done()
				<-release // held until all limit first jobs run together
			}
			mu.Lock()
			ran++
			mu.Unlock()
		})
		if i == limit-1 {
			started.Wait()
			close(release)
		}
	}
	done.Wait()
	w.close()
	if ran != jobs {
		t.Errorf("%d jobs ran, want %d", ran, jobs)
	}
	if w.n > limit {
		t.Errorf("%d goroutines started, want at most %d", w.n, limit)
	}
}

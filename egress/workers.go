package egress

// workers runs a dispatcher's deliveries on goroutines kept for its run,
// at most limit of them, started as the deliveries at once first need
// them: a delivery then starts on a goroutine whose stack has already
// grown, instead of a new one each time. It is used by the dispatcher's
// fetch loop alone; close it once no delivery is started any more.
type workers struct {
	jobs  chan func()
	limit int
	n     int // goroutines started
}

// newWorkers returns workers for at most limit deliveries at once.
func newWorkers(limit int) *workers {
	return &workers{jobs: make(chan func()), limit: max(limit, 1)}
}

// run runs fn on an idle worker, or on a new one while fewer than limit
// run. Past limit it waits for a worker: the caller holds one of limit
// slots for fn, so at most limit-1 others are busy and one is, or soon
// is, idle.
func (w *workers) run(fn func()) {
	if w.n < w.limit {
		select {
		case w.jobs <- fn:
		default:
			w.n++
			go w.work(fn)
		}
		return
	}
	w.jobs <- fn
}

// work runs fn, then each job handed to it, until close.
func (w *workers) work(fn func()) {
	for ok := true; ok; fn, ok = <-w.jobs {
		fn()
	}
}

// close ends the idle workers, and each busy one when its job is done.
func (w *workers) close() { close(w.jobs) }

package bench

import (
	"math"
	"runtime"
	"slices"
	"time"
)

// Result is one scenario's outcome. It is a plain value, safe to read
// concurrently.
type Result struct {
	// Key names the scenario in the JSON summary, e.g. "http_single_c64".
	Key string
	// Name describes the scenario, e.g. "HTTP single event, c=64".
	Name string
	// Concurrency is the most requests in flight at once (for the baseline,
	// outstanding acks).
	Concurrency int
	// EventsPerRequest is the number of events each request carries.
	EventsPerRequest int
	// Requests and Events count the measured ones (not the warm-up).
	Requests, Events int64
	// Elapsed is the measured time: from the end of the warm-up to the end
	// of the last measured request.
	Elapsed time.Duration
	// EventsPerSec is Events / Elapsed.
	EventsPerSec float64
	// P50 and P99 are request latencies (for the baseline, from handing a
	// message to the connection to its ack), nearest rank.
	P50, P99 time.Duration
	// Failed counts failed requests (transport errors and answers other
	// than 2xx; for the baseline, failed publishes), warm-up included.
	Failed int64
	// FirstError is the first failure's error, if any.
	FirstError string
	// Accepted counts the events of successful requests, warm-up included.
	Accepted int64
	// Stores reports whether the scenario stores events (all but the
	// trivial handler); Stored is meaningful only then.
	Stores bool
	// Stored is the number of messages in the stream after the run.
	Stored uint64
}

// Lost is the number of accepted events the stream does not hold.
func (r Result) Lost() int64 {
	if !r.Stores || uint64(r.Accepted) <= r.Stored {
		return 0
	}
	return r.Accepted - int64(r.Stored)
}

// summarize merges a measurement's samples into sc's Result.
func summarize(sc scenario, m measurement) Result {
	r := Result{
		Key: sc.key, Name: sc.name, Concurrency: sc.concurrency, EventsPerRequest: sc.perRequest,
		Stores: m.stores, Stored: m.stored,
	}
	var n int
	for _, s := range m.samples {
		n += len(s.lat)
	}
	lat := make([]time.Duration, 0, n)
	var last time.Time
	for _, s := range m.samples {
		lat = append(lat, s.lat...)
		r.Failed += s.failed
		r.Accepted += s.ok * int64(sc.perRequest)
		if r.FirstError == "" && s.firstErr != nil {
			r.FirstError = s.firstErr.Error()
		}
		if s.last.After(last) {
			last = s.last
		}
	}
	r.Requests = int64(len(lat))
	r.Events = r.Requests * int64(sc.perRequest)
	if len(lat) == 0 {
		return r
	}
	r.Elapsed = last.Sub(m.win.warmEnd)
	r.EventsPerSec = float64(r.Events) / r.Elapsed.Seconds()
	slices.Sort(lat)
	r.P50, r.P99 = percentile(lat, 0.50), percentile(lat, 0.99)
	return r
}

// percentile is the nearest-rank q-quantile of sorted, which is not empty.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// Ratio compares two scenarios' events per second. It is a plain value.
type Ratio struct {
	// Key is "<scenario key>/<scenario key>".
	Key string
	// Name is the same in words.
	Name string
	// Value is the first scenario's events/s divided by the second's; 0
	// when the second measured nothing.
	Value float64
	// Aim is the least Value the project aims for; 0 when there is none.
	Aim float64
}

// Met reports whether the ratio reaches its aim (true without one).
func (r Ratio) Met() bool { return r.Aim == 0 || r.Value >= r.Aim }

// Aims for the ratios, from the project's goals.
const (
	aimBatch  = 0.5 // batch events/s ÷ baseline events/s
	aimSingle = 0.6 // single-event requests/s ÷ trivial handler's, at the same concurrency
)

// ratios are each scenario's events/s over the baseline's, then the
// high-concurrency single-event scenario's over the trivial handler's.
func ratios(results []Result, o Options) []Ratio {
	kBase, _, kSingle, kBatch, kTrivial := o.keys()
	byKey := make(map[string]Result, len(results))
	for _, r := range results {
		byKey[r.Key] = r
	}
	var out []Ratio
	for _, r := range results {
		if r.Key == kBase {
			continue
		}
		aim := 0.0
		if r.Key == kBatch {
			aim = aimBatch
		}
		out = append(out, ratio(r, byKey[kBase], aim))
	}
	return append(out, ratio(byKey[kSingle], byKey[kTrivial], aimSingle))
}

func ratio(a, b Result, aim float64) Ratio {
	r := Ratio{Key: a.Key + "/" + b.Key, Name: a.Name + " ÷ " + b.Name, Aim: aim}
	if b.EventsPerSec > 0 {
		r.Value = a.EventsPerSec / b.EventsPerSec
	}
	return r
}

// Machine describes where the benchmark ran. It is a plain value.
type Machine struct {
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

func currentMachine() Machine {
	return Machine{
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
	}
}

package bench

import (
	"fmt"
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
	// Versus is the Key of the scenario this one is set against: for a
	// gRPC or Dapr scenario, its native HTTP or webhook counterpart; empty for the
	// others.
	Versus string
	// Delivery marks the delivery path's scenarios; the fields below say
	// what they mean for those.
	Delivery bool
	// Concurrency is the most requests in flight at once (for the baseline,
	// outstanding acks; for a delivery scenario, the subscription's
	// max_in_flight).
	Concurrency int
	// EventsPerRequest is the number of events each request carries.
	EventsPerRequest int
	// Requests and Events count the measured ones (not the warm-up). For
	// a delivery throughput scenario both count the deliveries the app
	// received (at its webhook or on its gRPC stream); for the end-to-end
	// scenario Events counts the accepted events scheduled after the
	// warm-up, Requests those of them the webhook received.
	Requests, Events int64
	// Elapsed is the measured time: from the end of the warm-up to the end
	// of the last measured request (for a delivery throughput scenario, of
	// the measured window; for the end-to-end scenario, the measured
	// duration or more when the sends fell behind the schedule). It
	// exceeds the measured duration when a load generator, or the
	// webhook, measured nothing within it and the run went on until it
	// had (see Note).
	Elapsed time.Duration
	// EventsPerSec is Events / Elapsed: for a delivery throughput scenario
	// the deliveries/s, for the end-to-end scenario the achieved rate.
	EventsPerSec float64
	// P50 and P99 are request latencies (for the baseline, from handing a
	// message to the connection to its ack), nearest rank. For a delivery
	// throughput scenario they are delivery attempt durations, estimated
	// from the eventsidecar_delivery_duration_seconds histogram; for the
	// end-to-end scenario, from the start of an event's request to its
	// arrival at the webhook.
	P50, P99 time.Duration
	// Failed counts failed requests (transport errors and answers other
	// than 2xx or, for gRPC, OK; for the baseline, failed publishes),
	// warm-up included. For a delivery scenario it also counts the
	// deliveries retried, dead-lettered, or received again by the app,
	// and a gRPC stream that ended before the app closed it.
	Failed int64
	// FirstError is the first failure's error, if any.
	FirstError string
	// Accepted counts the events of successful requests, warm-up included.
	Accepted int64
	// Stores reports whether the scenario stores events and checks them
	// against the stream (the publish scenarios but the trivial handler);
	// Stored is meaningful only then.
	Stores bool
	// Stored is the number of messages in the stream after the run.
	Stored uint64
	// Rate is, for the end-to-end scenario, the events/s it sends at; 0
	// for the others.
	Rate int
	// Undelivered counts, for the end-to-end scenario, the accepted events
	// that had not reached the webhook when, after the run, none more of
	// them had for a grace period.
	Undelivered int64
	// Note, when not empty, qualifies the figures.
	Note string
}

// Lost is the number of accepted events the stream does not hold, plus
// those never delivered.
func (r Result) Lost() int64 {
	n := r.Undelivered
	if r.Stores && uint64(r.Accepted) > r.Stored {
		n += r.Accepted - int64(r.Stored)
	}
	return n
}

// summarize merges a measurement's samples into sc's Result.
func summarize(sc scenario, m measurement) Result {
	r := Result{
		Key: sc.key, Name: sc.name, Versus: sc.versus, Concurrency: sc.concurrency, EventsPerRequest: sc.perRequest,
		Stores: m.stores, Stored: m.stored, Note: m.note(),
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
	r.P50, r.P99 = Percentile(lat, 0.50), Percentile(lat, 0.99)
	return r
}

// note says which of m's load generators (workers, or the baseline's
// publisher) measured no request within the measured duration and went on
// past it until they had; "" when none did.
func (m measurement) note() string {
	late := 0
	for i := range m.samples {
		if m.samples[i].late(m.win) {
			late++
		}
	}
	if late == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d load generators measured no request within the measured duration and went on until they had",
		late, len(m.samples))
}

// Percentile is the nearest-rank q-quantile of sorted, which is not empty.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// Ratio compares two scenarios' events per second, or holds one
// scenario's figure that has an aim. It is a plain value.
type Ratio struct {
	// Key is "<scenario key>/<scenario key>" for a ratio,
	// "<scenario key>:<figure>" for a figure.
	Key string
	// Name is the same in words.
	Name string
	// Value is the first scenario's events/s divided by the second's (0
	// when the second measured nothing), or the figure in Unit (a tracing
	// overhead in percent).
	Value float64
	// Unit is the figure's unit; "" for a ratio.
	Unit string
	// Aim is what the project aims for; 0 when there is none.
	Aim float64
	// Below makes Aim an upper bound, met when Value < Aim; otherwise it
	// is a lower bound, met when Value >= Aim.
	Below bool
	// Missing marks a value that could not be had because a scenario it
	// needs measured nothing; Value is then 0 and meets no aim.
	Missing bool
}

// Met reports whether the value reaches its aim (true without one).
func (r Ratio) Met() bool {
	switch {
	case r.Aim == 0:
		return true
	case r.Missing:
		return false
	case r.Below:
		return r.Value < r.Aim
	default:
		return r.Value >= r.Aim
	}
}

// Aims from the project's goals.
const (
	aimBatch      = 0.5   // batch events/s ÷ baseline events/s
	aimDapr       = 0.9   // a Dapr API publish's events/s ÷ its native counterpart's: the dialect costs under 10 %
	aimSingle     = 0.6   // single-event requests/s ÷ trivial handler's, at the same concurrency
	aimDeliveries = 20000 // deliveries/s at max_in_flight aimInFlight
	aimInFlight   = 64
	aimE2ERate    = 1000                  // events/s of the end-to-end aim
	aimE2EP99     = 10 * time.Millisecond // end-to-end p99 at aimE2ERate
)

// ratios are each publish scenario's events/s over the baseline's, the
// high-concurrency single-event scenario's over the trivial handler's, the
// delivery throughputs at aimInFlight (webhook, then gRPC stream) over the
// baseline's, each gRPC and Dapr scenario's over its counterpart's (Result.Versus),
// then the delivery path's figures with aims (the end-to-end p99's only at
// aimE2ERate). Only what o's scenarios measured is there.
func ratios(results []Result, o Options) []Ratio {
	kBase, _, kSingle, kBatch, kTrivial := o.keys()
	byKey := make(map[string]Result, len(results))
	for _, r := range results {
		byKey[r.Key] = r
	}
	base, hasBase := byKey[kBase]
	var out []Ratio
	for _, r := range results {
		if r.Key == kBase || r.Delivery || !hasBase {
			continue
		}
		aim := 0.0
		if r.Key == kBatch {
			aim = aimBatch
		}
		out = append(out, ratio(r, base, aim))
	}
	single, hasSingle := byKey[kSingle]
	if trivial, ok := byKey[kTrivial]; ok && hasSingle {
		out = append(out, ratio(single, trivial, aimSingle))
	}
	for _, k := range []string{deliveryKey(aimInFlight), streamKey(aimInFlight)} {
		if r, ok := byKey[k]; ok && hasBase {
			out = append(out, ratio(r, base, 0))
		}
	}
	kDaprSingle, kDaprBulk := o.daprKeys()
	for _, r := range results {
		if versus, ok := byKey[r.Versus]; ok {
			aim := 0.0
			if r.Key == kDaprSingle || r.Key == kDaprBulk {
				aim = aimDapr
			}
			out = append(out, ratio(r, versus, aim))
		}
	}
	return append(out, figures(byKey, o)...)
}

// figures are the delivery path's figures with aims: the deliveries/s at
// aimInFlight, and the end-to-end p99 (with its aim only at aimE2ERate).
func figures(byKey map[string]Result, o Options) []Ratio {
	var out []Ratio
	if deliveries, ok := byKey[deliveryKey(aimInFlight)]; ok {
		out = append(out, figure(deliveries, "events_per_sec", "deliveries/s", "deliveries/s", deliveries.EventsPerSec, aimDeliveries, false))
	}
	if e2e, ok := byKey[o.e2eKey()]; ok {
		aim := 0.0
		if o.E2ERate == aimE2ERate {
			aim = milliseconds(aimE2EP99)
		}
		p99 := figure(e2e, "p99_ms", "p99", "ms", milliseconds(e2e.P99), aim, true)
		p99.Missing = e2e.Requests == 0
		out = append(out, p99)
	}
	return out
}

func ratio(a, b Result, aim float64) Ratio {
	r := Ratio{Key: a.Key + "/" + b.Key, Name: a.Name + " ÷ " + b.Name, Aim: aim, Missing: b.EventsPerSec <= 0}
	if !r.Missing {
		r.Value = a.EventsPerSec / b.EventsPerSec
	}
	return r
}

func milliseconds(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// figure is one of r's figures with its aim.
func figure(r Result, key, name, unit string, value, aim float64, below bool) Ratio {
	return Ratio{Key: r.Key + ":" + key, Name: r.Name + ": " + name, Value: value, Unit: unit, Aim: aim, Below: below}
}

// Machine describes where the benchmark ran. It is a plain value.
type Machine struct {
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

// CurrentMachine describes the machine and the Go runtime this process
// runs on.
func CurrentMachine() Machine {
	return Machine{
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
	}
}

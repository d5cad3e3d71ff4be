package apart

import (
	"slices"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/bench"
)

// Figures are what one run of a row measured. It is a plain value.
type Figures struct {
	// Events counts the measured events: those of the load generator's
	// measured requests; for a delivery row, the distinct events the
	// webhook received in the measured time; for the end-to-end row, the
	// accepted events scheduled in it; 0 for the idle row.
	Events int64
	// EventsPerSec is Events over the time they took (for the end-to-end
	// row, the achieved rate).
	EventsPerSec float64
	// P50 and P99 are latencies: per request, from the load generator (for
	// the async baseline, from publish to ack); for a delivery row, per
	// attempt (the sidecar's eventsidecar_delivery_duration_seconds, or the
	// direct consumer's posts); for the end-to-end row, from the load
	// generator's stamp in the event's data to its arrival at the webhook.
	P50, P99 time.Duration
	// CPU is the CPU time, user and system, each part's process used in
	// the measured time, by part: "sidecar" (or the trivial handler or the
	// direct consumer in its place), "nats-server", "load", "webhook". A
	// part is there when the row ran it, and only then.
	CPU map[string]time.Duration
	// RSSStart and RSSEnd are the sidecar part's VmRSS at the start and
	// at the end of the measured time, in bytes; 0 without one.
	RSSStart, RSSEnd uint64
	// Failed counts failed requests and deliveries (retried, dead-lettered,
	// invalid or received twice), warm-up included; FirstError describes
	// the first.
	Failed     int64
	FirstError string
	// Lost counts accepted events that the stream does not hold or that
	// never reached the webhook.
	Lost int64
	// Note, when not empty, qualifies the figures.
	Note string
}

// CPUPerEvent is part's CPU time per measured event; ok is false when the
// row did not run the part or measured no event.
func (f Figures) CPUPerEvent(part string) (d time.Duration, ok bool) {
	c, ran := f.CPU[part]
	if !ran || f.Events <= 0 {
		return 0, false
	}
	return c / time.Duration(f.Events), true
}

// Row is one row of the report: every run of it. It is a plain value.
type Row struct {
	// Key names the row in the JSON summary, e.g. "http_c64"; Name
	// describes it.
	Key, Name string
	// Versus is the Key of the row it is set against (its baseline or its
	// counterpart); "" for none.
	Versus string
	// Rounds has the figures of each round, in the order run (one for the
	// rows that run once).
	Rounds []Figures
	// Median has each figure's median over the rounds.
	Median Median
}

// Median is a row's figures, each the median over its rounds. It is a
// plain value.
type Median struct {
	// EventsPerSec, P50 and P99 are as in Figures.
	EventsPerSec float64
	P50, P99     time.Duration
	// CPUPerEvent is each part's CPU time per event, by part, over the
	// rounds that measured events.
	CPUPerEvent map[string]time.Duration
	// RSSStart and RSSEnd are the sidecar part's VmRSS, as in Figures.
	RSSStart, RSSEnd uint64
	// Ratio is, for a row with a Versus, the median over the rounds of its
	// events/s divided by Versus's in the same round; 0 for the others or
	// when Versus measured nothing.
	Ratio float64
}

// Failed is the number of failed requests and deliveries plus the events
// lost, over every round.
func (r Row) Failed() int64 {
	var n int64
	for _, f := range r.Rounds {
		n += f.Failed + f.Lost
	}
	return n
}

// median computes r.Median; versus is the row r is set against, if any.
func (r *Row) median(versus *Row) {
	m := Median{CPUPerEvent: map[string]time.Duration{}}
	m.EventsPerSec = medianOf(r.Rounds, func(f Figures) (float64, bool) { return f.EventsPerSec, true })
	m.P50 = time.Duration(medianOf(r.Rounds, func(f Figures) (float64, bool) { return float64(f.P50), true }))
	m.P99 = time.Duration(medianOf(r.Rounds, func(f Figures) (float64, bool) { return float64(f.P99), true }))
	m.RSSStart = uint64(medianOf(r.Rounds, func(f Figures) (float64, bool) { return float64(f.RSSStart), true }))
	m.RSSEnd = uint64(medianOf(r.Rounds, func(f Figures) (float64, bool) { return float64(f.RSSEnd), true }))
	for _, part := range parts {
		perEvent := func(f Figures) (float64, bool) {
			d, ok := f.CPUPerEvent(part)
			return float64(d), ok
		}
		if slices.ContainsFunc(r.Rounds, func(f Figures) bool { _, ok := perEvent(f); return ok }) {
			m.CPUPerEvent[part] = time.Duration(medianOf(r.Rounds, perEvent))
		}
	}
	if versus != nil {
		var ratios []float64
		for i, f := range r.Rounds {
			if i < len(versus.Rounds) && versus.Rounds[i].EventsPerSec > 0 {
				ratios = append(ratios, f.EventsPerSec/versus.Rounds[i].EventsPerSec)
			}
		}
		if len(ratios) > 0 {
			m.Ratio = bench.Median(ratios)
		}
	}
	r.Median = m
}

// medianOf is the median of value over the figures it has one for; 0
// when none has.
func medianOf(rounds []Figures, value func(Figures) (float64, bool)) float64 {
	var v []float64
	for _, f := range rounds {
		if x, ok := value(f); ok {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return 0
	}
	return bench.Median(v)
}

// Report is a whole run of the separate-process mode: the machine, the
// settings, every row, and the figures the "Done when" names with
// their aims. Run produces it; its methods only read it and are safe for
// concurrent use.
type Report struct {
	// Machine is where it ran.
	Machine bench.Machine
	// Duration and Warmup are each row's measured and warm-up time;
	// RSSDuration the RSS row's measured time; Rounds the number of
	// interleaved rounds.
	Duration, Warmup, RSSDuration time.Duration
	Rounds                        int
	// Rows are in the order run.
	Rows []Row
	// Aims are the "Done when" figures.
	Aims []Aim
	// References set the sidecar's publish rows against direct clients
	// that publish the message it stores; see references.
	References []Reference
}

// Failed is the number of failed requests and deliveries and of lost
// events in every row: anything but 0 is a failure.
func (r *Report) Failed() int64 {
	var n int64
	for _, row := range r.Rows {
		n += row.Failed()
	}
	return n
}

// row returns the row with key.
func (r *Report) row(key string) (*Row, bool) {
	i := slices.IndexFunc(r.Rows, func(row Row) bool { return row.Key == key })
	if i < 0 {
		return nil, false
	}
	return &r.Rows[i], true
}

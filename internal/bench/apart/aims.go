package apart

import (
	"math"
	"time"
)

// Aim is one of the figures of the "Done when", with the bound
// it must keep. It is a plain value.
type Aim struct {
	// Key names it in the JSON summary, Name in words.
	Key, Name string
	// Value is the figure, in Unit ("" for a ratio).
	Value float64
	Unit  string
	// Op is how Value must compare with Bound: "<=", "<" or ">=".
	Op    string
	Bound float64
	// Missing marks a value that could not be had because a row it needs
	// measured nothing; Value is then 0 and meets no bound.
	Missing bool
}

// Met reports whether the value keeps its bound.
func (a Aim) Met() bool {
	switch {
	case a.Missing:
		return false
	case a.Op == "<=":
		return a.Value <= a.Bound
	case a.Op == "<":
		return a.Value < a.Bound
	default:
		return a.Value >= a.Bound
	}
}

// The bounds of the "Done when".
const (
	aimPublishCPU  = 35   // µs of sidecar CPU per published event at c=64
	aimPublishRate = 0.5  // HTTP publish c=64 ÷ trivial handler
	aimBatch       = 0.5  // batch of 100 ÷ direct async publish
	aimDeliveryCPU = 40   // µs of sidecar CPU per delivered event at max_in_flight 64
	aimDelivery    = 0.7  // delivery at max_in_flight 64 ÷ direct consumer
	aimMIF1        = 2600 // deliveries/s at max_in_flight 1: twice the 1,300
	aimE2EP99      = 3    // ms, end to end at aimE2ERate
	aimE2ERate     = 1000
	aimIdleRSS     = 25  // MB of the idle sidecar with its embedded broker
	aimRSSChange   = 10  // % the RSS may change over the RSS row
	aimNATSCPU     = 1.5 // nats-server CPU per event caused by the sidecar ÷ a direct client's
)

// aims are the "Done when" figures from rep's rows: those whose
// rows all ran.
func aims(rep *Report, o Options) []Aim {
	var out []Aim
	add := func(a Aim, rows ...string) {
		if rep.ran(rows...) {
			out = append(out, a)
		}
	}
	add(rep.cpuAim(keyHTTP, "HTTP publish, c=64: sidecar CPU per event", aimPublishCPU), keyHTTP)
	add(rep.ratioAim(keyHTTP, "HTTP publish, c=64 ÷ trivial handler", aimPublishRate), keyHTTP, keyTrivial)
	add(rep.ratioAim(keyBatch, "HTTP batch of 100 ÷ direct async publish", aimBatch), keyBatch, keyAsync)
	add(rep.cpuAim(keyMIF64, "delivery, max_in_flight 64: sidecar CPU per event", aimDeliveryCPU), keyMIF64)
	add(rep.ratioAim(keyMIF64, "delivery, max_in_flight 64 ÷ direct consumer", aimDelivery), keyMIF64, keyConsumer)
	add(rep.valueAim(keyMIF1, "events_per_sec", "delivery, max_in_flight 1 (twice the issue's 1,300/s)", "events/s", ">=", aimMIF1,
		func(m Median) (float64, bool) { return m.EventsPerSec, true }), keyMIF1)
	if o.E2ERate == aimE2ERate {
		add(rep.valueAim(o.e2eKey(), "p99_ms", "end to end at 1,000 events/s: p99", "ms", "<=", aimE2EP99,
			func(m Median) (float64, bool) { return float64(m.P99) / float64(time.Millisecond), m.P99 > 0 }), o.e2eKey())
	}
	add(rep.valueAim(keyIdle, "rss_mb", "idle RSS, embedded broker", "MB", "<", aimIdleRSS,
		func(m Median) (float64, bool) { return megabytes(m.RSSEnd), m.RSSEnd > 0 }), keyIdle)
	add(rep.rssChangeAim(), keyRSS)
	add(rep.natsAim(keyHTTP, keySync, "nats-server CPU per event: HTTP publish ÷ direct sync publish"), keyHTTP, keySync)
	add(rep.natsAim(keyMIF64, keyConsumer, "nats-server CPU per event: delivery, max_in_flight 64 ÷ direct consumer"), keyMIF64, keyConsumer)
	return out
}

// ran reports whether every row of keys ran.
func (rep *Report) ran(keys ...string) bool {
	for _, k := range keys {
		if _, ok := rep.row(k); !ok {
			return false
		}
	}
	return true
}

// valueAim is value of the median of the row with key; value's ok is
// false when the row measured nothing it needs.
func (rep *Report) valueAim(key, figure, name, unit, op string, bound float64, value func(Median) (float64, bool)) Aim {
	a := Aim{Key: key + ":" + figure, Name: name, Unit: unit, Op: op, Bound: bound, Missing: true}
	if row, ok := rep.row(key); ok {
		var measured bool
		a.Value, measured = value(row.Median)
		a.Missing = !measured
	}
	return a
}

// cpuAim is the sidecar's CPU per event in the row with key, in µs.
func (rep *Report) cpuAim(key, name string, bound float64) Aim {
	a := Aim{Key: key + ":sidecar_cpu_us_per_event", Name: name, Unit: "µs", Op: "<=", Bound: bound, Missing: true}
	if row, ok := rep.row(key); ok {
		d, has := row.Median.CPUPerEvent[partSidecar]
		a.Value, a.Missing = microseconds(d), !has
	}
	return a
}

// ratioAim is the ratio of the row with key to its Versus.
func (rep *Report) ratioAim(key, name string, bound float64) Aim {
	a := Aim{Name: name, Op: ">=", Bound: bound, Missing: true}
	if row, ok := rep.row(key); ok {
		a.Key = key + "/" + row.Versus
		a.Value, a.Missing = row.Median.Ratio, row.Median.Ratio == 0
	}
	return a
}

// rssChangeAim is how much the sidecar's RSS changed over the RSS row,
// in percent either way.
func (rep *Report) rssChangeAim() Aim {
	a := Aim{Key: keyRSS + ":rss_change_pct", Name: "RSS change over the full-rate publish run, either way", Unit: "%",
		Op: "<=", Bound: aimRSSChange, Missing: true}
	if row, ok := rep.row(keyRSS); ok && row.Median.RSSStart > 0 {
		start, end := float64(row.Median.RSSStart), float64(row.Median.RSSEnd)
		a.Value, a.Missing = 100*math.Abs(end-start)/start, false
	}
	return a
}

// natsAim is nats-server's CPU per event in the row with key divided by
// that in the row with direct.
func (rep *Report) natsAim(key, direct, name string) Aim {
	a := Aim{Key: key + ":nats_cpu/" + direct + ":nats_cpu", Name: name, Op: "<=", Bound: aimNATSCPU, Missing: true}
	row, ok1 := rep.row(key)
	base, ok2 := rep.row(direct)
	if !ok1 || !ok2 {
		return a
	}
	v, hasV := row.Median.CPUPerEvent[partNATS]
	b, hasB := base.Median.CPUPerEvent[partNATS]
	if hasV && hasB && b > 0 {
		a.Value, a.Missing = float64(v)/float64(b), false
	}
	return a
}

func microseconds(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func megabytes(b uint64) float64 { return float64(b) / (1 << 20) }

// Reference is a figure reported beside the aims, with no bound. It is a
// plain value.
type Reference struct {
	// Key names it in the JSON summary, Name in words.
	Key, Name string
	// Value is a ratio of two rows' medians.
	Value float64
}

// references set the sidecar's HTTP and batch publishes against direct
// clients that publish the very message the sidecar stores for each event
// (its ce- headers, Nats-Msg-Id and fingerprint) instead of the issue's
// baselines' payload with a Nats-Msg-Id: what the stored format costs the
// broker then counts on both sides, and what is left is the sidecar's
// doing. They are ratios of the rows' medians, for the rows that ran.
func references(rep *Report) []Reference {
	var out []Reference
	add := func(key, base, figure, name string, value func(Median) float64) {
		row, ok1 := rep.row(key)
		b, ok2 := rep.row(base)
		if ok1 && ok2 && value(b.Median) > 0 {
			out = append(out, Reference{Key: key + "/" + base + ":" + figure, Name: name, Value: value(row.Median) / value(b.Median)})
		}
	}
	rate := func(m Median) float64 { return m.EventsPerSec }
	natsCPU := func(m Median) float64 { return float64(m.CPUPerEvent[partNATS]) }
	add(keyBatch, keyAsyncStored, "events_per_sec", "events/s: HTTP batch of 100 ÷ direct async publish of the stored message", rate)
	add(keyHTTP, keySyncStored, "nats_cpu", "nats-server CPU per event: HTTP publish ÷ direct sync publish of the stored message", natsCPU)
	add(keyBatch, keyAsyncStored, "nats_cpu", "nats-server CPU per event: HTTP batch of 100 ÷ direct async publish of the stored message", natsCPU)
	return out
}

package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// Report is a whole run: the machine, the settings, every scenario's
// Result in the order run (the baseline first, then the rest of the
// publish path, then the delivery path), the tracing comparison's runs,
// and the ratios and aimed figures.
// Run produces it; its methods only read it and are safe for concurrent
// use.
type Report struct {
	// Machine is where it ran.
	Machine Machine
	// Duration and Warmup are the measured and warm-up time per scenario.
	Duration, Warmup time.Duration
	// Results has one entry per scenario.
	Results []Result
	// Tracing has one entry per scenario and tracing mode of the tracing
	// comparison, by scenario, then by mode ("none", "off", "on"); empty
	// when it did not run.
	Tracing []TracingRun
	// Ratios has each publish scenario's events/s over the baseline's, the
	// high-concurrency single-event scenario's over the trivial handler's,
	// the delivery throughputs at max_in_flight 64 (webhook, then gRPC
	// stream) over the baseline's, each gRPC and Dapr scenario's over its HTTP or
	// webhook counterpart's, then the delivery path's figures that have
	// aims, then the tracing overheads.
	Ratios []Ratio
}

// Failed is the number of failed requests and deliveries in every
// scenario (and every run of the tracing comparison) plus the accepted
// events lost: anything but 0 is a failure.
func (r *Report) Failed() int64 {
	var n int64
	for _, res := range r.Results {
		n += res.Failed + res.Lost()
	}
	for _, t := range r.Tracing {
		n += t.Failed()
	}
	return n
}

// AimsMet reports whether every ratio and figure reaches its aim.
func (r *Report) AimsMet() bool {
	for _, q := range r.Ratios {
		if !q.Met() {
			return false
		}
	}
	return true
}

// WriteMarkdown writes the report as Markdown: the machine, a table of the
// publish scenarios, a table of the delivery scenarios, a table setting
// the gRPC and Dapr scenarios against their HTTP and webhook counterparts, a table
// of the tracing comparison, a table of the aims, and a line per failure
// or note.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Machine: %s/%s, NumCPU %d, GOMAXPROCS %d, %s. ", m.OS, m.Arch, m.NumCPU, m.GOMAXPROCS, m.GoVersion)
	fmt.Fprintf(&b, "Each scenario on fresh servers (a new embedded broker, temporary store): %s warm-up, then %s measured.\n\n",
		r.Warmup, r.Duration)
	base := r.baseline()
	if r.has(false) {
		r.writePublish(&b, base)
		b.WriteString("\nLatency is per request (for the baseline, from publish to ack; for gRPC, per call, every call on one HTTP/2 connection); ")
		b.WriteString("failed counts requests, warm-up included. ")
		b.WriteString("The trivial handler's events/s is its requests/s.\n\n")
	}
	if r.has(true) {
		r.writeDelivery(&b, base)
		b.WriteString("\nA delivery of a backlog counts the distinct events the webhook received in the measured window (gRPC stream delivery: ")
		b.WriteString("those an app received on one Subscribe stream, acking each at once); its p50 and p99 are ")
		b.WriteString("the delivery attempt's duration (on a stream, from handing the delivery out to its ack), ")
		b.WriteString("interpolated within the buckets of eventsidecar_delivery_duration_seconds. ")
		b.WriteString("End to end, events/s is the achieved rate of accepted events, and p50 and p99 run from the start of the publish ")
		b.WriteString("request to the event's arrival at the webhook. Failed counts failed requests and deliveries retried, ")
		b.WriteString("dead-lettered or received twice, warm-up included; lost, accepted events never delivered.\n\n")
	}
	r.writeVersus(&b)
	r.writeTracing(&b)
	r.writeAims(&b)
	r.writeFailures(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

// baseline is the baseline's events/s; 0 when it did not run.
func (r *Report) baseline() float64 {
	for _, res := range r.Results {
		if !res.Delivery && res.Key == baselineKey {
			return res.EventsPerSec
		}
	}
	return 0
}

// has reports whether the report holds a scenario of the delivery path
// (delivery) or of the publish path.
func (r *Report) has(delivery bool) bool {
	for _, res := range r.Results {
		if res.Delivery == delivery {
			return true
		}
	}
	return false
}

func (r *Report) writePublish(b *strings.Builder, base float64) {
	b.WriteString("| scenario | in flight | events/request | requests | events/s | p50 | p99 | failed | ÷ baseline |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, res := range r.Results {
		if !res.Delivery {
			fmt.Fprintf(b, "| %s | %d | %d | %d | %.0f | %s | %s | %d | %s |\n",
				res.Name, res.Concurrency, res.EventsPerRequest, res.Requests, res.EventsPerSec,
				ms(res.P50), ms(res.P99), res.Failed, fraction(res.EventsPerSec, base))
		}
	}
}

func (r *Report) writeDelivery(b *strings.Builder, base float64) {
	b.WriteString("| scenario | max in flight | deliveries | events/s | p50 | p99 | failed | lost | ÷ baseline |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, res := range r.Results {
		if !res.Delivery {
			continue
		}
		ofBase := "-"
		if res.Rate == 0 {
			ofBase = fraction(res.EventsPerSec, base)
		}
		fmt.Fprintf(b, "| %s | %d | %d | %.0f | %s | %s | %d | %d | %s |\n",
			res.Name, res.Concurrency, res.Requests, res.EventsPerSec,
			ms(res.P50), ms(res.P99), res.Failed, res.Lost(), ofBase)
	}
}

// writeVersus writes the table setting each scenario that has a
// counterpart (Result.Versus) against it; nothing when none ran with its
// counterpart.
func (r *Report) writeVersus(b *strings.Builder) {
	byKey := make(map[string]Result, len(r.Results))
	for _, res := range r.Results {
		byKey[res.Key] = res
	}
	var rows strings.Builder
	for _, res := range r.Results {
		if other, ok := byKey[res.Versus]; ok {
			fmt.Fprintf(&rows, "| %s | %.0f | %s | %.0f | %s |\n",
				res.Name, res.EventsPerSec, other.Name, other.EventsPerSec, fraction(res.EventsPerSec, other.EventsPerSec))
		}
	}
	if rows.Len() == 0 {
		return
	}
	b.WriteString("| gRPC or Dapr scenario | events/s | against | events/s | ratio |\n|---|--:|---|--:|--:|\n")
	b.WriteString(rows.String())
	b.WriteString("\n")
}

func (r *Report) writeAims(b *strings.Builder) {
	b.WriteString("| ratio or figure | value | aim | met |\n|---|--:|--:|---|\n")
	for _, q := range r.Ratios {
		if q.Aim > 0 {
			op := "≥"
			if q.Below {
				op = "<"
			}
			value := amount(q.Value, q.Unit)
			if q.Missing {
				value = "nothing measured"
			}
			fmt.Fprintf(b, "| %s | %s | %s %s | %s |\n", q.Name, value, op, amount(q.Aim, q.Unit), yesNo(q.Met()))
		}
	}
}

func (r *Report) writeFailures(b *strings.Builder) {
	for _, res := range r.Results {
		writeFailure(b, res.Key, res)
	}
	for _, t := range r.Tracing {
		for i, res := range t.Rounds {
			writeFailure(b, fmt.Sprintf("%s (tracing %s, round %d)", res.Key, t.Mode, i+1), res)
		}
	}
}

// writeFailure writes a line per failure or note of res, named label.
func writeFailure(b *strings.Builder, label string, res Result) {
	if res.Failed > 0 {
		fmt.Fprintf(b, "\nFAILED %s: %d requests or deliveries; first error: %s\n", label, res.Failed, res.FirstError)
	}
	if res.Stores && uint64(res.Accepted) > res.Stored {
		fmt.Fprintf(b, "\nLOST %s: %d events accepted, the stream holds %d\n", label, res.Accepted, res.Stored)
	}
	if res.Undelivered > 0 {
		fmt.Fprintf(b, "\nLOST %s: %d of %d accepted events had not reached the webhook when none more had for %s after the run\n",
			label, res.Undelivered, res.Accepted, e2eGrace)
	}
	if res.Note != "" {
		fmt.Fprintf(b, "\nNOTE %s: %s\n", label, res.Note)
	}
}

// amount is a value with its unit: a ratio with two decimals, a
// percentage with one, a rate as a whole number, a duration in ms with
// three decimals.
func amount(v float64, unit string) string {
	switch unit {
	case "":
		return fmt.Sprintf("%.2f", v)
	case "%":
		return fmt.Sprintf("%.1f %%", v)
	case "ms":
		return fmt.Sprintf("%.3f ms", v)
	default:
		return fmt.Sprintf("%.0f %s", v, unit)
	}
}

// aimOp is how a value must compare with its aim, as the JSON summary
// says it.
func aimOp(below bool) string {
	if below {
		return "<"
	}
	return ">="
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

func fraction(v, of float64) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v/of)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// summary is the JSON form of a Report.
type summary struct {
	Machine   Machine               `json:"machine"`
	Duration  string                `json:"duration"`
	Warmup    string                `json:"warmup"`
	Scenarios []scenarioSummary     `json:"scenarios"`
	Tracing   []tracingSummary      `json:"tracing,omitempty"`
	Ratios    map[string]float64    `json:"ratios"`
	Aims      map[string]aimSummary `json:"aims"`
	AimsMet   bool                  `json:"aims_met"`
	Failed    int64                 `json:"failed"`
}

type scenarioSummary struct {
	Key              string  `json:"key"`
	Path             string  `json:"path"`
	Concurrency      int     `json:"concurrency"`
	EventsPerRequest int     `json:"events_per_request"`
	Requests         int64   `json:"requests"`
	EventsPerSec     float64 `json:"events_per_sec"`
	P50ms            float64 `json:"p50_ms"`
	P99ms            float64 `json:"p99_ms"`
	Failed           int64   `json:"failed"`
	Rate             int     `json:"rate,omitempty"`
	Lost             int64   `json:"lost,omitempty"`
	FirstError       string  `json:"first_error,omitempty"`
	Note             string  `json:"note,omitempty"`
}

// aimSummary is a ratio's or figure's value, how it must compare with the
// aim (">=" or "<"), the aim, and whether it is met.
type aimSummary struct {
	Value   float64 `json:"value"`
	Unit    string  `json:"unit,omitempty"`
	Op      string  `json:"op"`
	Aim     float64 `json:"aim"`
	Met     bool    `json:"met"`
	Missing bool    `json:"missing,omitempty"`
}

// WriteJSON writes a short JSON summary: machine, settings, per scenario
// events/s, p50, p99 and failures, the tracing comparison, the ratios, and
// every aim with its value.
func (r *Report) WriteJSON(w io.Writer) error {
	s := summary{
		Machine:  r.Machine,
		Duration: r.Duration.String(),
		Warmup:   r.Warmup.String(),
		Ratios:   make(map[string]float64, len(r.Ratios)),
		Aims:     make(map[string]aimSummary),
		AimsMet:  r.AimsMet(),
		Failed:   r.Failed(),
	}
	for _, res := range r.Results {
		path := onlyPublish
		if res.Delivery {
			path = onlyDelivery
		}
		s.Scenarios = append(s.Scenarios, scenarioSummary{
			Key: res.Key, Path: path, Concurrency: res.Concurrency, EventsPerRequest: res.EventsPerRequest,
			Requests: res.Requests, EventsPerSec: round(res.EventsPerSec, 1),
			P50ms: round(milliseconds(res.P50), 3), P99ms: round(milliseconds(res.P99), 3),
			Failed: res.Failed, Rate: res.Rate, Lost: res.Lost(), FirstError: res.FirstError, Note: res.Note,
		})
	}
	for _, q := range r.Ratios {
		if q.Unit == "" {
			s.Ratios[q.Key] = round(q.Value, 3)
		}
		if q.Aim > 0 {
			s.Aims[q.Key] = aimSummary{Value: round(q.Value, 3), Unit: q.Unit, Op: aimOp(q.Below), Aim: q.Aim, Met: q.Met(), Missing: q.Missing}
		}
	}
	s.Tracing = tracingSummaries(r.Tracing)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("bench: write json: %w", err)
	}
	return nil
}

func round(v float64, places int) float64 {
	p := math.Pow10(places)
	return math.Round(v*p) / p
}

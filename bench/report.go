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
// Result in the order run (the baseline first), and the ratios between
// them. Run produces it; its methods only read it and are safe for
// concurrent use.
type Report struct {
	// Machine is where it ran.
	Machine Machine
	// Duration and Warmup are the measured and warm-up time per scenario.
	Duration, Warmup time.Duration
	// Results has one entry per scenario.
	Results []Result
	// Ratios has each scenario's events/s over the baseline's, then the
	// high-concurrency single-event scenario's over the trivial handler's.
	Ratios []Ratio
}

// Failed is the number of failed requests in every scenario plus the
// accepted events missing from the stream: anything but 0 is a failure.
func (r *Report) Failed() int64 {
	var n int64
	for _, res := range r.Results {
		n += res.Failed + res.Lost()
	}
	return n
}

// AimsMet reports whether every ratio reaches its aim.
func (r *Report) AimsMet() bool {
	for _, q := range r.Ratios {
		if !q.Met() {
			return false
		}
	}
	return true
}

// WriteMarkdown writes the report as Markdown: the machine, a table of the
// scenarios, a table of the aims, and a line per failure.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Machine: %s/%s, NumCPU %d, GOMAXPROCS %d, %s. ", m.OS, m.Arch, m.NumCPU, m.GOMAXPROCS, m.GoVersion)
	fmt.Fprintf(&b, "Each scenario on fresh servers (a new embedded broker, temporary store): %s warm-up, then %s measured.\n\n",
		r.Warmup, r.Duration)
	r.writeResults(&b)
	b.WriteString("\nLatency is per request (for the baseline, from publish to ack); failed counts requests, warm-up included. ")
	b.WriteString("The trivial handler's events/s is its requests/s.\n\n")
	r.writeAims(&b)
	r.writeFailures(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) writeResults(b *strings.Builder) {
	b.WriteString("| scenario | in flight | events/request | requests | events/s | p50 | p99 | failed | ÷ baseline |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	var base float64
	if len(r.Results) > 0 {
		base = r.Results[0].EventsPerSec
	}
	for _, res := range r.Results {
		fmt.Fprintf(b, "| %s | %d | %d | %d | %.0f | %s | %s | %d | %s |\n",
			res.Name, res.Concurrency, res.EventsPerRequest, res.Requests, res.EventsPerSec,
			ms(res.P50), ms(res.P99), res.Failed, fraction(res.EventsPerSec, base))
	}
}

func (r *Report) writeAims(b *strings.Builder) {
	b.WriteString("| ratio | value | aim | met |\n|---|--:|--:|---|\n")
	for _, q := range r.Ratios {
		if q.Aim > 0 {
			fmt.Fprintf(b, "| %s | %.2f | ≥ %.2f | %s |\n", q.Name, q.Value, q.Aim, yesNo(q.Met()))
		}
	}
}

func (r *Report) writeFailures(b *strings.Builder) {
	for _, res := range r.Results {
		if res.Failed > 0 {
			fmt.Fprintf(b, "\nFAILED %s: %d requests; first error: %s\n", res.Key, res.Failed, res.FirstError)
		}
		if res.Lost() > 0 {
			fmt.Fprintf(b, "\nLOST %s: %d events accepted, the stream holds %d\n", res.Key, res.Accepted, res.Stored)
		}
	}
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
	Machine   Machine            `json:"machine"`
	Duration  string             `json:"duration"`
	Warmup    string             `json:"warmup"`
	Scenarios []scenarioSummary  `json:"scenarios"`
	Ratios    map[string]float64 `json:"ratios"`
	Aims      map[string]float64 `json:"aims"`
	AimsMet   bool               `json:"aims_met"`
	Failed    int64              `json:"failed"`
}

type scenarioSummary struct {
	Key              string  `json:"key"`
	Concurrency      int     `json:"concurrency"`
	EventsPerRequest int     `json:"events_per_request"`
	Requests         int64   `json:"requests"`
	EventsPerSec     float64 `json:"events_per_sec"`
	P50ms            float64 `json:"p50_ms"`
	P99ms            float64 `json:"p99_ms"`
	Failed           int64   `json:"failed"`
	Lost             int64   `json:"lost,omitempty"`
	FirstError       string  `json:"first_error,omitempty"`
}

// WriteJSON writes a short JSON summary: machine, settings, per scenario
// events/s, p50, p99 and failures, the ratios and their aims.
func (r *Report) WriteJSON(w io.Writer) error {
	s := summary{
		Machine:  r.Machine,
		Duration: r.Duration.String(),
		Warmup:   r.Warmup.String(),
		Ratios:   make(map[string]float64, len(r.Ratios)),
		Aims:     make(map[string]float64),
		AimsMet:  r.AimsMet(),
		Failed:   r.Failed(),
	}
	for _, res := range r.Results {
		s.Scenarios = append(s.Scenarios, scenarioSummary{
			Key: res.Key, Concurrency: res.Concurrency, EventsPerRequest: res.EventsPerRequest,
			Requests: res.Requests, EventsPerSec: round(res.EventsPerSec, 1),
			P50ms: round(res.P50.Seconds()*1000, 3), P99ms: round(res.P99.Seconds()*1000, 3),
			Failed: res.Failed, Lost: res.Lost(), FirstError: res.FirstError,
		})
	}
	for _, q := range r.Ratios {
		s.Ratios[q.Key] = round(q.Value, 3)
		if q.Aim > 0 {
			s.Aims[q.Key] = q.Aim
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("bench: write json: %w", err)
	}
	return nil
}

func round(v float64, places int) float64 {
	p := math.Pow10(places)
	return math.Round(v*p) / p
}

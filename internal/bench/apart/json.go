package apart

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/bench"
)

// summary is the JSON form of a Report.
type summary struct {
	Machine     bench.Machine         `json:"machine"`
	Duration    string                `json:"duration"`
	Warmup      string                `json:"warmup"`
	RSSDuration string                `json:"rss_duration"`
	Rounds      int                   `json:"rounds"`
	Rows        []rowSummary          `json:"rows"`
	Aims        map[string]aimSummary `json:"aims"`
	References  map[string]refSummary `json:"references,omitempty"`
	Failed      int64                 `json:"failed"`
}

type rowSummary struct {
	Key    string           `json:"key"`
	Name   string           `json:"name"`
	Versus string           `json:"versus,omitempty"`
	Ratio  float64          `json:"ratio,omitempty"`
	Median figuresSummary   `json:"median"`
	Rounds []figuresSummary `json:"rounds"`
	Failed int64            `json:"failed"`
}

type figuresSummary struct {
	Events        int64              `json:"events,omitempty"`
	EventsPerSec  float64            `json:"events_per_sec"`
	P50ms         float64            `json:"p50_ms"`
	P99ms         float64            `json:"p99_ms"`
	CPUusPerEvent map[string]float64 `json:"cpu_us_per_event"`
	RSSStartMB    float64            `json:"rss_start_mb,omitempty"`
	RSSEndMB      float64            `json:"rss_end_mb,omitempty"`
	Failed        int64              `json:"failed,omitempty"`
	Lost          int64              `json:"lost,omitempty"`
	FirstError    string             `json:"first_error,omitempty"`
	Note          string             `json:"note,omitempty"`
}

// aimSummary is an aim's value, how it must compare with its bound, the
// bound, and whether it is met.
type refSummary struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
}

type aimSummary struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit,omitempty"`
	Op      string  `json:"op"`
	Bound   float64 `json:"bound"`
	Met     bool    `json:"met"`
	Missing bool    `json:"missing,omitempty"`
}

// WriteJSON writes the report as JSON: the machine and settings, each
// row's medians and rounds, every aim with its value, and the references.
func (r *Report) WriteJSON(w io.Writer) error {
	s := summary{
		Machine: r.Machine, Duration: r.Duration.String(), Warmup: r.Warmup.String(),
		RSSDuration: r.RSSDuration.String(), Rounds: r.Rounds,
		Aims: make(map[string]aimSummary, len(r.Aims)), Failed: r.Failed(),
	}
	for _, row := range r.Rows {
		rs := rowSummary{Key: row.Key, Name: row.Name, Versus: row.Versus, Ratio: round(row.Median.Ratio, 3),
			Median: medianSummary(row.Median), Failed: row.Failed()}
		for _, f := range row.Rounds {
			rs.Rounds = append(rs.Rounds, roundSummary(f))
		}
		s.Rows = append(s.Rows, rs)
	}
	for _, a := range r.Aims {
		s.Aims[a.Key] = aimSummary{Name: a.Name, Value: round(a.Value, 3), Unit: a.Unit, Op: a.Op, Bound: a.Bound,
			Met: a.Met(), Missing: a.Missing}
	}
	if len(r.References) > 0 {
		s.References = make(map[string]refSummary, len(r.References))
	}
	for _, ref := range r.References {
		s.References[ref.Key] = refSummary{Name: ref.Name, Value: round(ref.Value, 3)}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("apart: write json: %w", err)
	}
	return nil
}

func medianSummary(m Median) figuresSummary {
	return figuresSummary{
		EventsPerSec: round(m.EventsPerSec, 1), P50ms: durationMS(m.P50), P99ms: durationMS(m.P99),
		CPUusPerEvent: perEventSummary(m.CPUPerEvent), RSSStartMB: round(megabytes(m.RSSStart), 1), RSSEndMB: round(megabytes(m.RSSEnd), 1),
	}
}

func roundSummary(f Figures) figuresSummary {
	perEvent := map[string]time.Duration{}
	for _, part := range parts {
		if d, ok := f.CPUPerEvent(part); ok {
			perEvent[part] = d
		}
	}
	return figuresSummary{
		Events: f.Events, EventsPerSec: round(f.EventsPerSec, 1), P50ms: durationMS(f.P50), P99ms: durationMS(f.P99),
		CPUusPerEvent: perEventSummary(perEvent), RSSStartMB: round(megabytes(f.RSSStart), 1), RSSEndMB: round(megabytes(f.RSSEnd), 1),
		Failed: f.Failed, Lost: f.Lost, FirstError: f.FirstError, Note: f.Note,
	}
}

func perEventSummary(perEvent map[string]time.Duration) map[string]float64 {
	out := make(map[string]float64, len(perEvent))
	for part, d := range perEvent {
		out[part] = round(microseconds(d), 2)
	}
	return out
}

func durationMS(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(v float64, places int) float64 {
	p := math.Pow10(places)
	return math.Round(v*p) / p
}

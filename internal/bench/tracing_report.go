package bench

import (
	"fmt"
	"strings"
)

// writeTracing writes the tracing comparison's table, a row per scenario
// and mode, and what it means; nothing when it did not run.
func (r *Report) writeTracing(b *strings.Builder) {
	if len(r.Tracing) == 0 {
		return
	}
	b.WriteString("| scenario | tracing | events/s (median) | each round's events/s | spans with ids | spans exported | failed | overhead |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|\n")
	for _, t := range r.Tracing {
		fmt.Fprintf(b, "| %s | %s | %.0f | %s | %d | %d | %d | %s |\n",
			t.Name, t.ModeName, t.EventsPerSec, roundsText(t.Rounds), t.SpansStarted, t.SpansExported, t.Failed(),
			overheadText(r.Tracing, t))
	}
	fmt.Fprintf(b, "\nTracing overhead: each scenario ran %d rounds in each mode, interleaved: in a round, a scenario runs in the "+
		"three modes back to back, each on fresh servers, in an order that rotates from round to round. ", len(r.Tracing[0].Rounds))
	b.WriteString("Events/s is the median of the rounds'; overhead = 1 − events/s ÷ events/s with no tracing. ")
	b.WriteString("No tracing: OpenTelemetry's no-op TracerProvider and propagator; off: an SDK TracerProvider that never samples, ")
	b.WriteString("with the W3C trace context and baggage propagators (OTEL_TRACES_SAMPLER=always_off); on: one that always samples, ")
	b.WriteString("with a batch span processor over an exporter that discards the spans. ")
	b.WriteString("Spans with ids are those started through the global TracerProvider with a trace id; spans exported, ")
	b.WriteString("those the exporter received. The backlog delivered is stored without trace context, so each delivery's ")
	b.WriteString("span is a root.\n\n")
}

// roundsText lists the rounds' events/s, in the order run.
func roundsText(rounds []Result) string {
	s := make([]string, len(rounds))
	for i, res := range rounds {
		s[i] = fmt.Sprintf("%.0f", res.EventsPerSec)
	}
	return strings.Join(s, ", ")
}

// overheadText is t's overhead against its scenario's run with no
// tracing; "-" for that run itself, or when it measured nothing.
func overheadText(runs []TracingRun, t TracingRun) string {
	ref, ok := reference(runs, t.Key)
	if !ok || t.Mode == modeNone {
		return "-"
	}
	pct, measured := overhead(t, ref)
	if !measured {
		return "-"
	}
	return amount(pct, "%")
}

// tracingSummary is a TracingRun in the JSON summary.
type tracingSummary struct {
	Key           string    `json:"key"`
	Mode          string    `json:"mode"`
	EventsPerSec  float64   `json:"events_per_sec"`
	Rounds        []float64 `json:"rounds_events_per_sec"`
	SpansStarted  int64     `json:"spans_started"`
	SpansExported int64     `json:"spans_exported"`
	Failed        int64     `json:"failed"`
}

func tracingSummaries(runs []TracingRun) []tracingSummary {
	var out []tracingSummary
	for _, t := range runs {
		rounds := make([]float64, len(t.Rounds))
		for i, res := range t.Rounds {
			rounds[i] = round(res.EventsPerSec, 1)
		}
		out = append(out, tracingSummary{
			Key: t.Key, Mode: t.Mode, EventsPerSec: round(t.EventsPerSec, 1), Rounds: rounds,
			SpansStarted: t.SpansStarted, SpansExported: t.SpansExported, Failed: t.Failed(),
		})
	}
	return out
}

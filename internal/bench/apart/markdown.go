package apart

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteMarkdown writes the report as Markdown: the machine and settings,
// the table of every row, how to read it, the table of the aims, that of
// the references, and a line per failure or note.
func (r *Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "Machine: %s/%s, NumCPU %d, GOMAXPROCS %d, %s. ", m.OS, m.Arch, m.NumCPU, m.GOMAXPROCS, m.GoVersion)
	fmt.Fprintf(&b, "Every part its own process (nats-server, the eventsidecar binary, the webhook, the load generator), "+
		"fresh ones for each row; %d-byte events; %s warm-up, then %s measured (the RSS row: %s); "+
		"medians of %d interleaved rounds (the idle and RSS rows run once, after them).\n\n",
		eventBytes, r.Warmup, r.Duration, r.RSSDuration, r.Rounds)
	b.WriteString("| row | events/s | p50 | p99 | ratio | CPU µs/event: sidecar | nats-server | load generator | webhook | sidecar RSS |\n")
	b.WriteString("|---|--:|--:|--:|---|--:|--:|--:|--:|--:|\n")
	for _, row := range r.Rows {
		writeRow(&b, row)
	}
	b.WriteString("\nRatio: the median over the rounds of the row's events/s ÷ those of the row named, in the same round. ")
	b.WriteString("CPU µs/event: each process's user + system CPU time (/proc/PID/stat) over the measured time ÷ the events measured; ")
	b.WriteString("the sidecar column holds the trivial handler's and the direct consumer's in their rows. ")
	b.WriteString("Latency: per request at the load generator (async publish: publish to ack); for deliveries per attempt ")
	b.WriteString("(the sidecar's eventsidecar_delivery_duration_seconds, interpolated in its buckets; the direct consumer's posts); ")
	b.WriteString("end to end from the load generator's stamp in the event's data to the webhook. ")
	b.WriteString("Delivery rows count the distinct events the webhook received in the measured time, from a stored backlog. ")
	b.WriteString("Sidecar RSS: VmRSS at the end of the measured time (the RSS row: at its start → at its end).\n\n")
	r.writeAims(&b)
	r.writeReferences(&b)
	r.writeFailures(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeRow(b *strings.Builder, row Row) {
	m := row.Median
	rate, p50, p99 := "—", "—", "—"
	if m.EventsPerSec > 0 {
		rate, p50, p99 = fmt.Sprintf("%.0f", m.EventsPerSec), ms(m.P50), ms(m.P99)
	}
	ratio := ""
	if row.Versus != "" {
		ratio = fmt.Sprintf("%.2f of %s", m.Ratio, row.Versus)
	}
	fmt.Fprintf(b, "| %s | %s | %s | %s | %s |", row.Name, rate, p50, p99, ratio)
	for _, part := range parts {
		cell := "—"
		if d, ok := m.CPUPerEvent[part]; ok {
			cell = fmt.Sprintf("%.1f", microseconds(d))
		}
		fmt.Fprintf(b, " %s |", cell)
	}
	fmt.Fprintf(b, " %s |\n", rssCell(row))
}

// rssCell is the sidecar's RSS in a row: at the end, or for the RSS row
// at the start and at the end.
func rssCell(row Row) string {
	m := row.Median
	switch {
	case m.RSSEnd == 0:
		return "—"
	case row.Key == keyRSS:
		return fmt.Sprintf("%.1f → %.1f MB", megabytes(m.RSSStart), megabytes(m.RSSEnd))
	default:
		return fmt.Sprintf("%.1f MB", megabytes(m.RSSEnd))
	}
}

func (r *Report) writeAims(b *strings.Builder) {
	b.WriteString("| Done when | value | aim | met |\n|---|--:|--:|---|\n")
	for _, a := range r.Aims {
		value := amount(a.Value, a.Unit)
		if a.Missing {
			value = "nothing measured"
		}
		met := "no"
		if a.Met() {
			met = "yes"
		}
		fmt.Fprintf(b, "| %s | %s | %s %s | %s |\n", a.Name, value, opSign[a.Op], amount(a.Bound, a.Unit), met)
	}
}

func (r *Report) writeReferences(b *strings.Builder) {
	if len(r.References) == 0 {
		return
	}
	b.WriteString("\n| For reference, against a direct client of the stored message (no aim) | value |\n|---|--:|\n")
	for _, ref := range r.References {
		fmt.Fprintf(b, "| %s | %.2f |\n", ref.Name, ref.Value)
	}
}

// opSign is how the Markdown writes an Aim's Op.
var opSign = map[string]string{"<=": "≤", "<": "<", ">=": "≥"}

func (r *Report) writeFailures(b *strings.Builder) {
	for _, row := range r.Rows {
		for i, f := range row.Rounds {
			label := row.Key
			if len(row.Rounds) > 1 {
				label = fmt.Sprintf("%s (round %d)", row.Key, i+1)
			}
			if f.Failed > 0 {
				fmt.Fprintf(b, "\nFAILED %s: %d requests or deliveries; first error: %s\n", label, f.Failed, f.FirstError)
			}
			if f.Lost > 0 {
				fmt.Fprintf(b, "\nLOST %s: %d accepted events not stored or never delivered\n", label, f.Lost)
			}
			if f.Note != "" {
				fmt.Fprintf(b, "\nNOTE %s: %s\n", label, f.Note)
			}
		}
	}
}

// amount is a value with its unit: a ratio with two decimals, a rate as
// a whole number, the rest with one decimal.
func amount(v float64, unit string) string {
	switch unit {
	case "":
		return fmt.Sprintf("%.2f", v)
	case "events/s":
		return fmt.Sprintf("%.0f %s", v, unit)
	default:
		return fmt.Sprintf("%.1f %s", v, unit)
	}
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

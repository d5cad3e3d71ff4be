package apart

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestMain plays a child's role when Run started this test binary as one.
func TestMain(m *testing.M) {
	if IsChild() {
		os.Exit(RunChild())
	}
	os.Exit(m.Run())
}

// wantParts are the parts each row runs, whose CPU time must be read.
var wantParts = map[string][]string{
	keySync:        {partNATS, partLoad},
	keyAsync:       {partNATS, partLoad},
	keySyncStored:  {partNATS, partLoad},
	keyAsyncStored: {partNATS, partLoad},
	keyTrivial:     {partSidecar, partLoad},
	keyHTTP:        {partSidecar, partNATS, partLoad},
	keyBatch:       {partSidecar, partNATS, partLoad},
	keyGRPC:        {partSidecar, partNATS, partLoad},
	keyConsumer:    {partSidecar, partNATS, partWebhook},
	keyConsumer1:   {partSidecar, partNATS, partWebhook},
	keyMIF64:       {partSidecar, partNATS, partWebhook},
	keyMIF1:        {partSidecar, partNATS, partWebhook},
	"e2e_r1000":    {partSidecar, partNATS, partLoad, partWebhook},
	keyIdle:        {partSidecar},
	keyRSS:         {partSidecar, partNATS, partLoad},
}

// TestRun runs the whole mode briefly and checks that every row ran and
// measured what it names, with nothing failed or lost and every process's
// CPU time read; it asserts no rate, latency or size.
func TestRun(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // every row's directory goes here, to check it is removed
	o := DefaultOptions()
	o.Duration, o.Warmup, o.Rounds, o.Backlog = 200*time.Millisecond, 50*time.Millisecond, 1, 2000
	rep, err := Run(t.Context(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var keys []string
	for _, row := range rep.Rows {
		keys = append(keys, row.Key)
		t.Run(row.Key, func(t *testing.T) { checkRow(t, row) })
	}
	if want := slices.Sorted(maps.Keys(wantParts)); !slices.Equal(slices.Sorted(slices.Values(keys)), want) {
		t.Errorf("rows %v, want %v", keys, want)
	}
	if left, err := os.ReadDir(tmp); err != nil || len(left) != 0 {
		t.Errorf("temporary directory holds %v (%v), want nothing", left, err)
	}
	checkOutputs(t, rep)
}

// checkRow checks that row ran once, measured events (but the idle row),
// failed and lost nothing, and read the CPU time of exactly its parts.
func checkRow(t *testing.T, row Row) {
	if len(row.Rounds) != 1 {
		t.Fatalf("%d rounds, want 1", len(row.Rounds))
	}
	f := row.Rounds[0]
	if f.Failed != 0 || f.Lost != 0 {
		t.Errorf("%d failed (first: %s), %d lost; want none", f.Failed, f.FirstError, f.Lost)
	}
	if got, want := slices.Sorted(maps.Keys(f.CPU)), slices.Sorted(slices.Values(wantParts[row.Key])); !slices.Equal(got, want) {
		t.Errorf("CPU time read of %v, want %v", got, want)
	}
	if _, ok := f.CPU[partSidecar]; ok && (f.RSSStart == 0 || f.RSSEnd == 0) {
		t.Errorf("sidecar RSS %d at the start, %d at the end; want both read", f.RSSStart, f.RSSEnd)
	}
	if row.Key == keyIdle {
		return
	}
	if f.Events <= 0 || f.EventsPerSec <= 0 || f.P50 <= 0 || f.P99 < f.P50 {
		t.Errorf("%d events at %v/s, p50 %v, p99 %v; want events, a rate and ordered latencies", f.Events, f.EventsPerSec, f.P50, f.P99)
	}
}

// checkOutputs checks that the Markdown has a line per row and the aims,
// and that the JSON summary decodes with every row and aim.
func checkOutputs(t *testing.T, rep *Report) {
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatalf("WriteMarkdown: %v", err)
	}
	for _, row := range rep.Rows {
		if !strings.Contains(md.String(), "| "+row.Name+" |") {
			t.Errorf("the Markdown has no line of %s:\n%s", row.Key, md.String())
		}
	}
	if !strings.Contains(md.String(), "| Done when | value | aim | met |") {
		t.Errorf("the Markdown has no table of aims:\n%s", md.String())
	}
	for _, ref := range rep.References {
		if !strings.Contains(md.String(), "| "+ref.Name+" |") {
			t.Errorf("the Markdown has no line of the reference %s:\n%s", ref.Key, md.String())
		}
	}
	var js bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatalf("WriteJSON: %v", err)
	}
	var s summary
	if err := json.Unmarshal(js.Bytes(), &s); err != nil {
		t.Fatalf("the JSON summary does not decode: %v\n%s", err, js.String())
	}
	if len(s.Rows) != len(rep.Rows) || len(s.Aims) != len(rep.Aims) || len(s.Aims) == 0 {
		t.Errorf("the JSON summary has %d rows and %d aims, want %d and %d", len(s.Rows), len(s.Aims), len(rep.Rows), len(rep.Aims))
	}
	if len(s.References) != len(rep.References) || len(rep.References) != 3 {
		t.Errorf("the JSON summary has %d references, the report %d, want 3", len(s.References), len(rep.References))
	}
}

func TestEventData(t *testing.T) {
	sent := time.Unix(0, 1767225600123456789)
	for name, data := range map[string][]byte{"plain": eventData, "stamped": stamped(sent)} {
		if len(data) != eventBytes || !json.Valid(data) {
			t.Errorf("%s data is %d bytes, valid JSON %v; want %d bytes of JSON", name, len(data), json.Valid(data), eventBytes)
		}
	}
	if got, ok := sentAt(stamped(sent)); !ok || !got.Equal(sent) {
		t.Errorf("sentAt(stamped(%v)) = %v, %v; want it back", sent, got, ok)
	}
	if _, ok := sentAt(eventData); ok {
		t.Error("sentAt found a stamp in unstamped data")
	}
}

func TestProcfs(t *testing.T) {
	if _, err := cpuTime(os.Getpid()); err != nil {
		t.Errorf("cpuTime: %v", err)
	}
	if n, err := rss(os.Getpid()); err != nil || n == 0 {
		t.Errorf("rss = %d, %v; want a size", n, err)
	}
	if clockTicks() == 0 {
		t.Error("clockTicks = 0")
	}
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := &lineWriter{line: func(b []byte) { got = append(got, string(b)) }}
	for _, p := range []string{"a", "b\nc", "\n\nd"} {
		if _, err := w.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"ab", "c", ""}; !slices.Equal(got, want) {
		t.Errorf("lines %q, want %q", got, want)
	}
}

func TestOnly(t *testing.T) {
	tests := []struct {
		only string
		want []string
	}{
		{"all", slices.Sorted(maps.Keys(wantParts))},
		{"publish", []string{keyBatch, keyGRPC, keyHTTP, keyAsync, keySync, keyAsyncStored, keySyncStored, keyTrivial}},
		{"delivery", []string{keyConsumer, keyConsumer1, keyMIF1, keyMIF64, "e2e_r1000"}},
	}
	for _, tt := range tests {
		t.Run(tt.only, func(t *testing.T) {
			o := DefaultOptions()
			o.Only = tt.only
			if err := o.validate(); err != nil {
				t.Fatalf("validate: %v", err)
			}
			var got []string
			for _, r := range o.rows() {
				got = append(got, r.key)
			}
			slices.Sort(got)
			if !slices.Equal(got, slices.Sorted(slices.Values(tt.want))) {
				t.Errorf("rows %v, want %v", got, tt.want)
			}
		})
	}
	o := DefaultOptions()
	o.Only = "tracing"
	if err := o.validate(); err == nil {
		t.Error("validate accepts only \"tracing\"")
	}
}

package bench

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// at is t0 plus ms milliseconds.
func at(t0 time.Time, ms int) time.Time {
	return t0.Add(time.Duration(ms) * time.Millisecond)
}

func TestGate(t *testing.T) {
	t0 := time.Now()
	win := window{warmEnd: at(t0, 1000), end: at(t0, 2000)}
	tests := []struct {
		name     string
		ended    bool  // ctx has ended
		requests []int // each request's start, in ms from t0
		want     []bool
	}{
		{"warm-up, measured, then closed at the end", false, []int{0, 1500, 2000}, []bool{true, true, false}},
		{"measured from the end of the warm-up", false, []int{1000, 2000}, []bool{true, false}},
		{"warm-up until the end, then one more", false, []int{0, 500, 2500, 2600}, []bool{true, true, true, false}},
		{"a warm-up request past the end, then one more", false, []int{0, 3000, 3100}, []bool{true, true, false}},
		{"nothing once ctx has ended", true, []int{0, 1500}, []bool{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.ended {
				cancel()
			}
			g := gate{win: win}
			var got []bool
			for _, ms := range tt.requests {
				got = append(got, g.admit(ctx, at(t0, ms)))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("admitted %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSummarizeOverrun(t *testing.T) {
	t0 := time.Now()
	win := window{warmEnd: at(t0, 1000), end: at(t0, 2000)}
	var onTime, late, failing sample
	onTime.add(at(t0, 900), at(t0, 1100), win, nil) // warm-up
	onTime.add(at(t0, 1100), at(t0, 1300), win, nil)
	late.add(at(t0, 0), at(t0, 2500), win, nil) // a warm-up request past the end
	late.add(at(t0, 2500), at(t0, 4000), win, nil)
	failing.add(at(t0, 2500), at(t0, 2600), win, errors.New("refused"))
	tests := []struct {
		name     string
		samples  []sample
		requests int64
		elapsed  time.Duration
		p50, p99 time.Duration
		note     string // a part of the note; "" for none
	}{
		{"within the window", []sample{onTime}, 1, 300 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond, ""},
		{"a worker past the end", []sample{onTime, late}, 2, 3 * time.Second, 200 * time.Millisecond, 1500 * time.Millisecond,
			"1 of 2 load generators measured no request within the measured duration"},
		{"a failure past the end", []sample{onTime, failing}, 1, 300 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond,
			"1 of 2 load generators"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := summarize(scenario{key: "k", perRequest: 10}, measurement{samples: tt.samples, win: win})
			if r.Requests != tt.requests || r.Events != 10*tt.requests || r.Elapsed != tt.elapsed {
				t.Errorf("got %d requests, %d events over %v; want %d, %d over %v",
					r.Requests, r.Events, r.Elapsed, tt.requests, 10*tt.requests, tt.elapsed)
			}
			if want := float64(r.Events) / tt.elapsed.Seconds(); r.EventsPerSec != want {
				t.Errorf("got %v events/s, want %v", r.EventsPerSec, want)
			}
			if r.P50 != tt.p50 || r.P99 != tt.p99 {
				t.Errorf("got p50 %v, p99 %v; want %v, %v", r.P50, r.P99, tt.p50, tt.p99)
			}
			if (tt.note == "") != (r.Note == "") || !strings.Contains(r.Note, tt.note) {
				t.Errorf("note %q, want one with %q", r.Note, tt.note)
			}
		})
	}
}

func TestAwait(t *testing.T) {
	run := openRun{sends: []send{{}, {err: errors.New("refused")}, {}}} // events 0 and 2 accepted
	tests := []struct {
		name    string
		arrived []uint64
		want    int64
	}{
		{"every accepted event came", []uint64{0, 2}, 0},
		{"one never comes", []uint64{2}, 1},
		{"the refused one does not count", []uint64{0, 1, 2}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newArrivals(len(run.sends))
			for _, seq := range tt.arrived {
				a.note(EventID(0, seq), time.Now())
			}
			if got := run.await(t.Context(), a, 20*time.Millisecond); got != tt.want {
				t.Errorf("await = %d missing, want %d", got, tt.want)
			}
		})
	}
}

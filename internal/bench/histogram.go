package bench

import (
	"fmt"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Histogram is a snapshot of a Prometheus histogram in seconds: the upper
// bounds of its finite buckets, the cumulative count at each, and the
// count of every observation (the +Inf bucket). It is a plain value.
type Histogram struct {
	bounds []float64
	counts []uint64
	total  uint64
}

// GatherHistogram reads the histogram family name, which must have one
// series, from g; it is empty when g has no such family.
func GatherHistogram(g prometheus.Gatherer, name string) (Histogram, error) {
	families, err := g.Gather()
	if err != nil {
		return Histogram{}, fmt.Errorf("bench: gather metrics: %w", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		if len(f.GetMetric()) != 1 {
			return Histogram{}, fmt.Errorf("bench: metric %s has %d series, want 1", name, len(f.GetMetric()))
		}
		hm := f.GetMetric()[0].GetHistogram()
		h := Histogram{total: hm.GetSampleCount()}
		for _, b := range hm.GetBucket() {
			h.bounds = append(h.bounds, b.GetUpperBound())
			h.counts = append(h.counts, b.GetCumulativeCount())
		}
		return h, nil
	}
	return Histogram{}, nil
}

// Count is the number of observations.
func (h Histogram) Count() uint64 { return h.total }

// Since is what h observed after earlier, a snapshot of the same
// histogram; earlier may be empty.
func (h Histogram) Since(earlier Histogram) Histogram {
	d := Histogram{bounds: h.bounds, counts: make([]uint64, len(h.counts)), total: h.total - earlier.total}
	for i, c := range h.counts {
		d.counts[i] = c
		if i < len(earlier.counts) {
			d.counts[i] -= earlier.counts[i]
		}
	}
	return d
}

// Quantile estimates the q-quantile as Prometheus' histogram_quantile
// does: linear interpolation within the bucket holding the rank, from 0
// for the first; the highest finite bound when the rank is beyond it; 0
// when nothing was observed.
func (h Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 || len(h.bounds) == 0 {
		return 0
	}
	rank := q * float64(h.total)
	lower, below := 0.0, uint64(0)
	for i, upper := range h.bounds {
		if float64(h.counts[i]) >= rank {
			in := float64(h.counts[i] - below)
			frac := 1.0
			if in > 0 {
				frac = (rank - float64(below)) / in
			}
			return seconds(lower + (upper-lower)*frac)
		}
		lower, below = upper, h.counts[i]
	}
	return seconds(h.bounds[len(h.bounds)-1])
}

func seconds(s float64) time.Duration {
	return time.Duration(math.Round(s * float64(time.Second)))
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// TracingRun is one scenario measured in one tracing mode, over every
// round of the tracing comparison. It is a plain value.
type TracingRun struct {
	// Mode is the tracing mode: "none" (OpenTelemetry's no-op provider
	// and propagator, the reference), "off" (an SDK provider that never
	// samples, W3C propagators) or "on" (always sample, a batch span
	// processor over an exporter that discards the spans).
	Mode string
	// ModeName describes the mode.
	ModeName string
	// Key and Name are the scenario's, as in Result.
	Key, Name string
	// Rounds holds each round's Result, in the order run.
	Rounds []Result
	// EventsPerSec is the median of the rounds' events/s.
	EventsPerSec float64
	// SpansStarted counts, over every round, the spans with trace ids
	// started through the global TracerProvider: the ingress's and the
	// egress's, and the webhook client's when it has no parent span.
	SpansStarted int64
	// SpansExported counts, over every round, the spans the discarding
	// exporter received (mode "on" only).
	SpansExported int64
}

// Failed is the number of failed requests and deliveries plus the
// accepted events lost, over every round.
func (t TracingRun) Failed() int64 {
	var n int64
	for _, res := range t.Rounds {
		n += res.Failed + res.Lost()
	}
	return n
}

// tracingScenarios are the scenarios of the tracing comparison: single
// events at o.Concurrency, batches, and delivery at aimInFlight.
func (o Options) tracingScenarios() []scenario {
	_, _, kSingle, kBatch, _ := o.keys()
	all := append(o.publishScenarios(), o.deliveryScenarios()...)
	var out []scenario
	for _, k := range []string{kSingle, kBatch, deliveryKey(aimInFlight)} {
		i := slices.IndexFunc(all, func(s scenario) bool { return s.key == k })
		out = append(out, all[i])
	}
	return out
}

// runTracing measures the tracing scenarios in every tracing mode,
// o.TracingRounds times: in each round, each scenario runs in the modes
// back to back, in an order that rotates from round to round.
func runTracing(ctx context.Context, o Options) ([]TracingRun, error) {
	scenarios := o.tracingScenarios()
	n := len(tracingModes)
	runs := make([]TracingRun, 0, len(scenarios)*n)
	for _, s := range scenarios {
		for _, m := range tracingModes {
			runs = append(runs, TracingRun{Mode: m.key, ModeName: m.name, Key: s.key, Name: s.name})
		}
	}
	for round := range o.TracingRounds {
		for i, s := range scenarios {
			for _, j := range rotation(n, round) {
				m := tracingModes[j]
				label := fmt.Sprintf("tracing round %d/%d: %s, %s", round+1, o.TracingRounds, s.name, m.name)
				if err := runs[i*n+j].measureIn(ctx, o, s, m, label); err != nil {
					return nil, fmt.Errorf("bench: %s, tracing %s: %w", s.key, m.key, err)
				}
			}
		}
	}
	for i := range runs {
		runs[i].EventsPerSec = median(runs[i].Rounds)
	}
	return runs, nil
}

// rotation is the order of n modes in round: 0, 1, ... n-1 rotated left
// by round.
func rotation(n, round int) []int {
	order := make([]int, n)
	for k := range order {
		order[k] = (round + k) % n
	}
	return order
}

// measureIn runs s once with m installed and adds its Result and spans to
// t; it fails when the spans show that the sidecar did not trace as m
// says.
func (t *TracingRun) measureIn(ctx context.Context, o Options, s scenario, m tracingMode, label string) error {
	in := m.install()
	res, err := o.runOne(ctx, s, label)
	if err = errors.Join(err, in.uninstall(ctx)); err != nil {
		return err
	}
	t.Rounds = append(t.Rounds, res)
	t.SpansStarted += in.started.Load()
	t.SpansExported += in.exported()
	return in.check(m, res.Delivery)
}

// median is the median of the rounds' events/s, which are not empty.
func median(rounds []Result) float64 {
	v := make([]float64, len(rounds))
	for i, r := range rounds {
		v[i] = r.EventsPerSec
	}
	return Median(v)
}

// Median is the median of values, which are not empty: the middle one, or
// the mean of the two in the middle. It sorts values.
func Median(values []float64) float64 {
	slices.Sort(values)
	n := len(values)
	if n%2 == 1 {
		return values[n/2]
	}
	return (values[n/2-1] + values[n/2]) / 2
}

// reference returns the no-tracing run of the scenario with key.
func reference(runs []TracingRun, key string) (TracingRun, bool) {
	i := slices.IndexFunc(runs, func(t TracingRun) bool { return t.Mode == modeNone && t.Key == key })
	if i < 0 {
		return TracingRun{}, false
	}
	return runs[i], true
}

// overhead is 1 − t's events/s ÷ ref's, in percent; ok is false when ref
// measured nothing.
func overhead(t, ref TracingRun) (pct float64, ok bool) {
	if ref.EventsPerSec <= 0 {
		return 0, false
	}
	return 100 * (1 - t.EventsPerSec/ref.EventsPerSec), true
}

// overheads are the tracing overhead figures with their aims: for each
// scenario, each mode's but the reference's.
func overheads(runs []TracingRun) []Ratio {
	var out []Ratio
	for _, t := range runs {
		i := slices.IndexFunc(tracingModes, func(m tracingMode) bool { return m.key == t.Mode })
		ref, ok := reference(runs, t.Key)
		if i < 0 || tracingModes[i].aim == 0 || !ok {
			continue
		}
		pct, measured := overhead(t, ref)
		out = append(out, Ratio{
			Key:   t.Key + ":tracing_" + t.Mode + "_overhead",
			Name:  t.Name + ": overhead, tracing " + tracingModes[i].name,
			Value: pct, Unit: "%", Aim: tracingModes[i].aim, Below: true, Missing: !measured,
		})
	}
	return out
}

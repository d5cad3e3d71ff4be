package apart

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/bench"
	"github.com/eventsidecar/eventsidecar/internal/pause"
)

const (
	// deliveryStall is how long a delivery row waits past its measured
	// time for a first delivery in it: longer than the 30s a stalled pull
	// takes to recover.
	deliveryStall = time.Minute
	// deliveryPoll is how often the webhook is asked while waiting.
	deliveryPoll = 5 * time.Millisecond
	// e2eGrace is how long, after the last answer, the webhook may go
	// without receiving any of the accepted events still missing before
	// those count as lost.
	e2eGrace = 5 * time.Second
)

// deliverer is what delivers a row's backlog to the webhook: the sidecar,
// or the direct consumer in its place.
type deliverer interface {
	// mark starts measuring the attempts' durations.
	mark(ctx context.Context) error
	// since is what the attempts since mark took and the failed
	// deliveries so far.
	since(ctx context.Context) (deliveryStats, error)
}

// deliveryStats are a deliverer's own figures.
type deliveryStats struct {
	attempts int64 // the attempts since mark
	p50, p99 time.Duration
	failed   int64
	firstErr string
}

// sidecarDeliverer has the sidecar's figures from its metrics: the
// attempts' durations from eventsidecar_delivery_duration_seconds.
type sidecarDeliverer struct {
	sc *sidecarProc
	h0 bench.Histogram
}

func (d *sidecarDeliverer) mark(context.Context) (err error) {
	d.h0, err = bench.GatherHistogram(d.sc, "eventsidecar_delivery_duration_seconds")
	return err
}

func (d *sidecarDeliverer) since(context.Context) (deliveryStats, error) {
	h1, err := bench.GatherHistogram(d.sc, "eventsidecar_delivery_duration_seconds")
	if err != nil {
		return deliveryStats{}, err
	}
	h := h1.Since(d.h0)
	st := deliveryStats{attempts: int64(h.Count()), p50: h.Quantile(0.50), p99: h.Quantile(0.99)}
	if st.failed, err = failedDeliveries(d.sc); st.failed > 0 {
		st.firstErr = fmt.Sprintf("%d delivery attempts retried, dead-lettered or found invalid", st.failed)
	}
	return st, err
}

// consumerDeliverer has the direct consumer's figures, from the consumer.
type consumerDeliverer struct{ c *child }

func (d consumerDeliverer) mark(ctx context.Context) error {
	return d.c.ask(ctx, consumedReq{Mark: true}, nil)
}

func (d consumerDeliverer) since(ctx context.Context) (deliveryStats, error) {
	var c consumed
	err := d.c.ask(ctx, consumedReq{}, &c)
	return deliveryStats{attempts: c.Posts, p50: c.P50, p99: c.P99, failed: c.Failed, firstErr: c.FirstError}, err
}

// deliveryRow measures the sidecar delivering a stored backlog to the
// webhook at max_in_flight inFlight; the default backlog lasts at
// perSecond deliveries/s.
func (o Options) deliveryRow(inFlight, perSecond int) func(context.Context, *rig) (Figures, error) {
	return func(ctx context.Context, r *rig) (Figures, error) {
		url, err := r.startNATS(ctx)
		if err != nil {
			return Figures{}, err
		}
		backlog := o.backlog(perSecond)
		wh, whURL, err := r.startWebhook(ctx, backlog)
		if err != nil {
			return Figures{}, err
		}
		cfg := sidecarConfig{natsURL: url, webhook: whURL, inFlight: inFlight}
		// A first run creates the subscription's consumer, which takes
		// the events stored from then on; the second delivers them.
		first, err := startSidecar(ctx, r.sidecar, r.dir, cfg)
		if err == nil {
			err = first.close()
		}
		if err == nil {
			err = openStream(ctx, url, backlog)
		}
		if err != nil {
			return Figures{}, err
		}
		sc, err := r.startSidecar(ctx, cfg)
		if err != nil {
			return Figures{}, err
		}
		return r.deliveries(ctx, wh, &sidecarDeliverer{sc: sc}, backlog)
	}
}

// consumerRow measures the direct consumer delivering a stored backlog
// to the webhook with workers, the delivery ceiling at that many
// deliveries at once; the default backlog lasts at perSecond deliveries/s.
func (o Options) consumerRow(workers, perSecond int) func(context.Context, *rig) (Figures, error) {
	return func(ctx context.Context, r *rig) (Figures, error) {
		url, err := r.startNATS(ctx)
		if err != nil {
			return Figures{}, err
		}
		backlog := o.backlog(perSecond)
		wh, whURL, err := r.startWebhook(ctx, backlog)
		if err == nil {
			err = openStream(ctx, url, backlog)
		}
		if err != nil {
			return Figures{}, err
		}
		c, err := r.startChild(ctx, partSidecar, roleConsumer, consumerSpec{NATS: url, Webhook: whURL, Workers: workers}, nil)
		if err != nil {
			return Figures{}, err
		}
		return r.deliveries(ctx, wh, consumerDeliverer{c}, backlog)
	}
}

// deliveries measures d's deliveries of a backlog to the webhook wh over
// a time frame that starts now, counted at the webhook; when it counts
// none in the measured time it waits on for one (see deliveryStall).
func (r *rig) deliveries(ctx context.Context, wh *child, d deliverer, backlog int) (Figures, error) {
	f := r.o.frame(r.o.Duration)
	r0, err := r.readAt(ctx, f.From)
	var a0 arrivals
	if err == nil {
		err = wh.ask(ctx, arrivalsReq{}, &a0)
	}
	if err == nil {
		err = d.mark(ctx)
	}
	if err != nil {
		return Figures{}, err
	}
	if !pause.For(ctx, time.Until(f.To)) {
		return Figures{}, ctx.Err()
	}
	a1, st, held, err := awaitDelivery(ctx, wh, d, a0)
	if err != nil {
		return Figures{}, err
	}
	r1, err := r.read()
	if err != nil {
		return Figures{}, err
	}
	fig := r0.figures(r1, a1.Received-a0.Received)
	fig.EventsPerSec = float64(fig.Events) / a1.At.Sub(a0.At).Seconds()
	fig.P50, fig.P99 = st.p50, st.p99
	fig.Failed, fig.FirstError = st.failed+a1.Duplicates, cmp.Or(st.firstErr, duplicates(a1))
	fig.Note = deliveryNote(held, a1, backlog, a1.At.Sub(a0.At))
	return fig, nil
}

// awaitDelivery asks the webhook for its arrivals and d for its figures
// until the webhook has received more than a0 had and d has timed an
// attempt since its mark, for up to deliveryStall; held reports whether
// it had to ask more than once.
func awaitDelivery(ctx context.Context, wh *child, d deliverer, a0 arrivals) (a1 arrivals, st deliveryStats, held bool, err error) {
	deadline := time.Now().Add(deliveryStall)
	for {
		if err = wh.ask(ctx, arrivalsReq{}, &a1); err == nil {
			st, err = d.since(ctx)
		}
		if err != nil || a1.Received > a0.Received && st.attempts > 0 || !a1.At.Before(deadline) {
			return a1, st, held, err
		}
		held = true
		if !pause.For(ctx, deliveryPoll) {
			return a1, st, held, ctx.Err()
		}
	}
}

// duplicates describes a's duplicate deliveries; "" when there are none.
func duplicates(a arrivals) string {
	if a.Duplicates == 0 {
		return ""
	}
	return fmt.Sprintf("%d duplicate deliveries, the first of %q", a.Duplicates, a.FirstDuplicate)
}

// deliveryNote says what qualifies a delivery row's figures: the window
// held open for a first delivery, the backlog delivered to the end.
func deliveryNote(held bool, a arrivals, backlog int, elapsed time.Duration) string {
	var notes []string
	if held {
		notes = append(notes, fmt.Sprintf("no delivery was counted within the measured duration: "+
			"the window stayed open until one was, %s in all", elapsed.Round(time.Millisecond)))
	}
	if a.Received >= int64(backlog) {
		notes = append(notes, fmt.Sprintf("the whole backlog of %d events was delivered within the window: "+
			"the rate is a lower bound (raise --backlog)", backlog))
	}
	return strings.Join(notes, "; ")
}

// endToEndRow publishes stamped single events over HTTP at o.E2ERate to
// the sidecar, which delivers them to the webhook at max_in_flight
// e2eInFlight; latencies run from the stamp to the webhook.
func (o Options) endToEndRow(ctx context.Context, r *rig) (Figures, error) {
	url, err := r.startNATS(ctx)
	if err != nil {
		return Figures{}, err
	}
	wh, whURL, err := r.startWebhook(ctx, int(float64(o.E2ERate)*(o.Warmup+o.Duration).Seconds()))
	if err != nil {
		return Figures{}, err
	}
	sc, err := r.startSidecar(ctx, sidecarConfig{natsURL: url, webhook: whURL, inFlight: e2eInFlight})
	if err != nil {
		return Figures{}, err
	}
	spec := loadSpec{Kind: loadOpen, Target: sc.publishURL(), Concurrency: e2eSenders, Rate: o.E2ERate}
	ld, err := r.startChild(ctx, partLoad, roleLoad, spec, nil)
	if err != nil {
		return Figures{}, err
	}
	f := o.frame(o.Duration)
	res, r0, r1, err := r.drive(ctx, ld, f)
	if err != nil {
		return Figures{}, err
	}
	a, err := awaitArrivals(ctx, wh, res.Accepted, f)
	if err != nil {
		return Figures{}, err
	}
	fig := r0.figures(r1, res.Events)
	fig.EventsPerSec, fig.P50, fig.P99 = res.EventsPerSec, a.P50, a.P99
	failed, err := failedDeliveries(sc)
	fig.Failed = res.Failed + failed + a.Duplicates
	fig.FirstError = cmp.Or(res.FirstError, duplicates(a))
	if failed > 0 {
		fig.FirstError = cmp.Or(fig.FirstError, fmt.Sprintf("%d delivery attempts retried, dead-lettered or found invalid", failed))
	}
	fig.Lost = max(res.Accepted-a.Received, 0)
	return fig, err
}

// awaitArrivals asks the webhook until it has received accepted events
// or none more for e2eGrace, and returns its last arrivals, with the
// latencies of the events stamped within f's measured time.
func awaitArrivals(ctx context.Context, wh *child, accepted int64, f timeFrame) (arrivals, error) {
	req := arrivalsReq{From: f.From, To: f.To}
	var a arrivals
	if err := wh.ask(ctx, req, &a); err != nil {
		return a, err
	}
	deadline := a.At.Add(e2eGrace)
	for a.Received < accepted && a.At.Before(deadline) {
		if !pause.For(ctx, deliveryPoll) {
			return a, ctx.Err()
		}
		before := a.Received
		if err := wh.ask(ctx, req, &a); err != nil {
			return a, err
		}
		if a.Received > before {
			deadline = a.At.Add(e2eGrace)
		}
	}
	return a, nil
}

// idleRow measures the sidecar with its embedded broker doing nothing.
func (o Options) idleRow(ctx context.Context, r *rig) (Figures, error) {
	if _, err := r.startSidecar(ctx, sidecarConfig{storeDir: filepath.Join(r.dir, "embedded")}); err != nil {
		return Figures{}, err
	}
	f := o.frame(o.Duration)
	r0, err := r.readAt(ctx, f.From)
	if err != nil {
		return Figures{}, err
	}
	r1, err := r.readAt(ctx, f.To)
	return r0.figures(r1, 0), err
}

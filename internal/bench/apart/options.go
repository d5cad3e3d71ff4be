package apart

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Options configure Run. Start from DefaultOptions. It is a plain value;
// Run only reads it.
type Options struct {
	// Duration is how long each row is measured. Default 5s.
	Duration time.Duration
	// Warmup is how long each row runs before it is measured. Default 1s.
	Warmup time.Duration
	// Rounds is the number of interleaved rounds: each runs every row but
	// the RSS rows in turn, and each figure reported is the median of the
	// rounds'. Default 3.
	Rounds int
	// RSSDuration is how long the RSS row publishes at full rate, measured;
	// 0, the default, is Duration. The idle and RSS rows run once, after
	// the rounds.
	RSSDuration time.Duration
	// E2ERate is the end-to-end row's events per second. Default 1000.
	E2ERate int
	// Backlog is the number of events stored before each delivery row
	// delivers them; 0, the default, sizes it to last twice the warm-up
	// and the measured duration at 20,000 deliveries/s (5,000/s at
	// max_in_flight 1).
	Backlog int
	// Only selects the rows: "" or "all" for every one; "publish" for the
	// publish rows and their baselines (direct sync and async publish, the
	// trivial handler, HTTP single and batch, gRPC); "delivery" for the
	// delivery rows, their baseline (the direct consumer) and the end-to-end
	// row. The idle and RSS rows run only with every row. The aims are those
	// of the rows run.
	Only string
	// Sidecar is the eventsidecar binary to run; "", the default, builds
	// it from this module with the go command on the PATH, which must run
	// inside the module.
	Sidecar string
	// Progress, when not nil, gets a line as each row starts.
	Progress io.Writer
}

// The values of Options.Only, and the groups of the rows.
const (
	onlyAll      = "all"
	onlyPublish  = "publish"
	onlyDelivery = "delivery"
)

// DefaultOptions returns the defaults documented on Options.
func DefaultOptions() Options {
	return Options{Duration: 5 * time.Second, Warmup: time.Second, Rounds: 3, E2ERate: 1000}
}

func (o Options) validate() error {
	switch {
	case o.Duration <= 0:
		return errors.New("apart: duration must be positive")
	case o.Warmup < 0, o.RSSDuration < 0, o.Backlog < 0:
		return errors.New("apart: warm-up, RSS duration and backlog must not be negative")
	case o.Rounds < 1:
		return errors.New("apart: rounds must be at least 1")
	case o.E2ERate < 1:
		return errors.New("apart: end-to-end rate must be at least 1 event/s")
	case !slices.Contains([]string{"", onlyAll, onlyPublish, onlyDelivery}, o.Only):
		return fmt.Errorf("apart: only %q is not %q, %q or %q", o.Only, onlyAll, onlyPublish, onlyDelivery)
	}
	return nil
}

// rssDuration is the RSS row's measured time.
func (o Options) rssDuration() time.Duration {
	if o.RSSDuration > 0 {
		return o.RSSDuration
	}
	return o.Duration
}

// backlog is the events stored before a delivery row whose deliveries
// may reach perSecond: o.Backlog, or twice what perSecond needs for the
// warm-up and the measured duration.
func (o Options) backlog(perSecond int) int {
	if o.Backlog > 0 {
		return o.Backlog
	}
	return int(2 * float64(perSecond) * (o.Warmup + o.Duration).Seconds())
}

// frame is a time frame that starts now: o.Warmup, then d measured.
func (o Options) frame(d time.Duration) timeFrame {
	now := time.Now()
	return timeFrame{Start: now, From: now.Add(o.Warmup), To: now.Add(o.Warmup + d)}
}

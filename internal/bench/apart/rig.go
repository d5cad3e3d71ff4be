package apart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/pause"
)

// The parts of a row whose processes' CPU time is measured.
const (
	// partSidecar is the sidecar, or the process in its place: the
	// trivial handler, the direct consumer.
	partSidecar = "sidecar"
	partNATS    = "nats-server"
	partLoad    = "load"
	partWebhook = "webhook"
)

// parts are the parts in the order the report shows them.
var parts = []string{partSidecar, partNATS, partLoad, partWebhook}

// rig is the processes of one run of a row and its directory. It is used
// by one goroutine; close stops every process, the last started first,
// and removes the directory.
type rig struct {
	o        Options
	sidecar  string // the eventsidecar binary
	dir      string
	stops    []func() error
	measured map[string]*process // by part
}

// newRig makes the row's directory under root.
func newRig(o Options, sidecar, root string) (*rig, error) {
	dir, err := os.MkdirTemp(root, "row-")
	if err != nil {
		return nil, fmt.Errorf("apart: row directory: %w", err)
	}
	return &rig{o: o, sidecar: sidecar, dir: dir, measured: map[string]*process{}}, nil
}

// close stops the processes, the last started first, and removes the
// directory.
func (r *rig) close() error {
	var err error
	for i := len(r.stops) - 1; i >= 0; i-- {
		err = errors.Join(err, r.stops[i]())
	}
	if rerr := os.RemoveAll(r.dir); rerr != nil {
		err = errors.Join(err, fmt.Errorf("apart: %w", rerr))
	}
	return err
}

// startNATS starts nats-server storing in the row's directory and returns
// its client URL.
func (r *rig) startNATS(ctx context.Context) (string, error) {
	var h hello
	_, err := r.startChild(ctx, partNATS, roleNATS, natsSpec{StoreDir: filepath.Join(r.dir, "nats")}, &h)
	return h.URL, err
}

// startChild starts a child in role as the row's part (see startChild).
func (r *rig) startChild(ctx context.Context, part, role string, spec, hello any) (*child, error) {
	c, err := startChild(ctx, role, spec, hello)
	if err != nil {
		return nil, err
	}
	r.stops = append(r.stops, c.close)
	r.measured[part] = c.process
	return c, nil
}

// startWebhook starts the webhook, expecting hint deliveries, and returns
// it with its URL.
func (r *rig) startWebhook(ctx context.Context, hint int) (*child, string, error) {
	var h hello
	wh, err := r.startChild(ctx, partWebhook, roleWebhook, webhookSpec{Hint: hint}, &h)
	return wh, h.URL, err
}

// startSidecar starts the sidecar with c, as the row's sidecar part, and
// waits until it is ready.
func (r *rig) startSidecar(ctx context.Context, c sidecarConfig) (*sidecarProc, error) {
	s, err := startSidecar(ctx, r.sidecar, r.dir, c)
	if err != nil {
		return nil, err
	}
	r.stops = append(r.stops, s.close)
	r.measured[partSidecar] = s.process
	return s, nil
}

// reading is what the processes of a row had used at a moment.
type reading struct {
	cpu map[string]time.Duration // CPU time so far, by part
	rss uint64                   // the sidecar part's VmRSS; 0 without one
}

// readAt waits until t, then reads every measured process's CPU time and
// the sidecar part's resident set size.
func (r *rig) readAt(ctx context.Context, t time.Time) (reading, error) {
	if !pause.For(ctx, time.Until(t)) {
		return reading{}, ctx.Err()
	}
	return r.read()
}

// read reads every measured process's CPU time and the sidecar part's
// resident set size now.
func (r *rig) read() (reading, error) {
	rd := reading{cpu: make(map[string]time.Duration, len(r.measured))}
	for part, p := range r.measured {
		if err := p.dead(); err != nil {
			return reading{}, err
		}
		c, err := cpuTime(p.pid())
		if err != nil {
			return reading{}, err
		}
		rd.cpu[part] = c
	}
	if p, ok := r.measured[partSidecar]; ok {
		var err error
		if rd.rss, err = rss(p.pid()); err != nil {
			return reading{}, err
		}
	}
	return rd, nil
}

// figures are the CPU and memory figures from r0 to r1, over events.
func (r0 reading) figures(r1 reading, events int64) Figures {
	f := Figures{Events: events, CPU: make(map[string]time.Duration, len(r1.cpu)), RSSStart: r0.rss, RSSEnd: r1.rss}
	for part, c := range r1.cpu {
		f.CPU[part] = c - r0.cpu[part]
	}
	return f
}

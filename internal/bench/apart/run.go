package apart

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/eventsidecar/eventsidecar/internal/bench"
)

// sidecarPackage is the eventsidecar command, built when Options.Sidecar
// is not set.
const sidecarPackage = "github.com/eventsidecar/eventsidecar/cmd/eventsidecar"

// Run runs every row, each on fresh processes in a temporary directory
// removed afterwards: o.Rounds interleaved rounds of all but the RSS rows,
// then those once; and reports them. Failed requests, deliveries and lost
// events do not make it fail: they are in the Report (see
// Report.Failed). It fails when a row cannot be set up, a process fails or
// ctx ends; every process it started has been stopped (or killed) when it
// returns. Each call uses the whole machine, so calls should not overlap.
// The binary must call RunChild when IsChild (see IsChild).
func Run(ctx context.Context, o Options) (rep *Report, err error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "eventsidecar-bench-apart-")
	if err != nil {
		return nil, fmt.Errorf("apart: temporary directory: %w", err)
	}
	defer func() {
		if rerr := os.RemoveAll(root); rerr != nil {
			err = errors.Join(err, fmt.Errorf("apart: %w", rerr))
		}
	}()
	sidecar := o.Sidecar
	if sidecar == "" {
		if sidecar, err = o.buildSidecar(ctx, root); err != nil {
			return nil, err
		}
	}
	rows := o.rows()
	rep = &Report{Machine: bench.CurrentMachine(), Duration: o.Duration, Warmup: o.Warmup,
		RSSDuration: o.rssDuration(), Rounds: o.Rounds, Rows: make([]Row, len(rows))}
	for round := range o.Rounds {
		if err := o.runRound(ctx, rep, rows, sidecar, root, round); err != nil {
			return nil, err
		}
	}
	if err := o.runRound(ctx, rep, rows, sidecar, root, -1); err != nil {
		return nil, err
	}
	for i := range rep.Rows {
		versus, _ := rep.row(rows[i].versus)
		rep.Rows[i].median(versus)
	}
	rep.Aims = aims(rep, o)
	rep.References = references(rep)
	return rep, nil
}

// runRound runs the rows of round (from 0), or with round -1 those that
// run once, appending their figures to rep's rows.
func (o Options) runRound(ctx context.Context, rep *Report, rows []row, sidecar, root string, round int) error {
	for i, row := range rows {
		if row.once != (round < 0) {
			continue
		}
		label := "once"
		if round >= 0 {
			label = fmt.Sprintf("round %d/%d", round+1, o.Rounds)
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "bench apart %s: %s ...\n", label, row.name)
		}
		f, err := o.runRow(ctx, row, sidecar, root)
		if err != nil {
			return fmt.Errorf("apart: %s, %s: %w", row.key, label, err)
		}
		rep.Rows[i].Key, rep.Rows[i].Name, rep.Rows[i].Versus = row.key, row.name, row.versus
		rep.Rows[i].Rounds = append(rep.Rows[i].Rounds, f)
	}
	return nil
}

// runRow runs row once on fresh processes and stops them.
func (o Options) runRow(ctx context.Context, row row, sidecar, root string) (f Figures, err error) {
	r, err := newRig(o, sidecar, root)
	if err != nil {
		return f, err
	}
	defer func() { err = errors.Join(err, r.close()) }()
	f, err = row.measure(ctx, r)
	if err == nil {
		err = ctx.Err()
	}
	return f, err
}

// buildSidecar builds the eventsidecar binary into dir.
func (o Options) buildSidecar(ctx context.Context, dir string) (string, error) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "bench apart: building %s ...\n", sidecarPackage)
	}
	bin := filepath.Join(dir, "eventsidecar")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, sidecarPackage).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("apart: go build %s (run inside the module, or give the binary with --sidecar): %w\n%s",
			sidecarPackage, err, out)
	}
	return bin, nil
}

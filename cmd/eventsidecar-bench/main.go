// Command eventsidecar-bench measures the sidecar's publish and delivery
// paths on this machine and prints Markdown tables; --json also writes a
// short JSON summary. By default everything runs in this process (see
// package internal/bench): --only runs one path's scenarios,
// --tracing-overhead adds the comparison of no tracing, tracing off and
// tracing on (--only tracing runs it alone). --apart runs every part as its
// own process instead, as users run them (see package internal/bench/apart),
// in --rounds interleaved rounds; there --only publish or delivery runs one
// path's rows and their baselines. It exits 1 when any request or delivery
// failed or an event was lost, 2 on bad flags or when the benchmark could
// not run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventsidecar/eventsidecar/internal/bench"
	"github.com/eventsidecar/eventsidecar/internal/bench/apart"
)

func main() {
	if apart.IsChild() {
		os.Exit(apart.RunChild())
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Flags that apply to one mode only.
var (
	inProcessFlags = []string{"tracing-overhead", "tracing-rounds", "batch-concurrency"}
	apartFlags     = []string{"rounds", "rss-duration", "sidecar"}
)

func run(args []string, stdout, stderr io.Writer) int {
	o, a := bench.DefaultOptions(), apart.DefaultOptions()
	fs := flag.NewFlagSet("eventsidecar-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.Duration, "duration", o.Duration, "measured time per scenario")
	fs.DurationVar(&o.Warmup, "warmup", o.Warmup, "unmeasured warm-up per scenario")
	fs.IntVar(&o.BatchConcurrency, "batch-concurrency", o.BatchConcurrency, "concurrent batch requests")
	fs.IntVar(&o.E2ERate, "e2e-rate", o.E2ERate, "events/s of the end-to-end scenario")
	fs.IntVar(&o.Backlog, "backlog", o.Backlog, "events stored before each delivery throughput scenario (0: enough for 20,000/s)")
	fs.StringVar(&o.Only, "only", "all", "scenarios to run: all, publish, delivery or tracing (the tracing comparison alone; not with --apart, where the idle and RSS rows run only with all)")
	fs.BoolVar(&o.TracingOverhead, "tracing-overhead", o.TracingOverhead,
		"also run HTTP single, HTTP batch and delivery with no tracing, tracing off and tracing on, interleaved, and report the overhead")
	fs.IntVar(&o.TracingRounds, "tracing-rounds", o.TracingRounds, "rounds of the tracing comparison; each figure is the median of the rounds")
	separate := fs.Bool("apart", false, "run nats-server, the eventsidecar binary, the webhook and the load generator as separate processes")
	fs.IntVar(&a.Rounds, "rounds", a.Rounds, "with --apart: interleaved rounds; each figure is the median of the rounds'")
	fs.DurationVar(&a.RSSDuration, "rss-duration", a.RSSDuration, "with --apart: measured time of the full-rate RSS run (0: --duration)")
	fs.StringVar(&a.Sidecar, "sidecar", a.Sidecar, "with --apart: the eventsidecar binary to run (default: build ./cmd/eventsidecar)")
	jsonPath := fs.String("json", "", "also write a JSON summary to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := checkMode(fs, *separate); err != nil {
		fmt.Fprintf(stderr, "eventsidecar-bench: %v\n", err)
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var rep report
	var err error
	if *separate {
		a.Duration, a.Warmup, a.E2ERate, a.Backlog, a.Only, a.Progress = o.Duration, o.Warmup, o.E2ERate, o.Backlog, o.Only, stderr
		rep, err = apart.Run(ctx, a)
	} else {
		o.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		o.Progress = stderr
		rep, err = bench.Run(ctx, o)
	}
	if err == nil {
		err = write(rep, stdout, *jsonPath)
	}
	if err != nil {
		fmt.Fprintf(stderr, "eventsidecar-bench: %v\n", err)
		return 2
	}
	if n := rep.Failed(); n > 0 {
		fmt.Fprintf(stderr, "eventsidecar-bench: %d failed requests or deliveries, or lost events\n", n)
		return 1
	}
	return 0
}

// checkMode fails when a flag set on fs does not apply to the mode chosen.
func checkMode(fs *flag.FlagSet, separate bool) error {
	wrong, mode := apartFlags, "without --apart"
	if separate {
		wrong, mode = inProcessFlags, "with --apart"
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		for _, name := range wrong {
			if f.Name == name && err == nil {
				err = fmt.Errorf("--%s does not apply %s", name, mode)
			}
		}
	})
	return err
}

// report is what either mode reports.
type report interface {
	WriteMarkdown(w io.Writer) error
	WriteJSON(w io.Writer) error
	Failed() int64
}

// write prints rep as Markdown to stdout and, when path is set, as JSON to
// the file at path.
func write(rep report, stdout io.Writer, path string) error {
	if err := rep.WriteMarkdown(stdout); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("json summary: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("json summary: %w", err)
	}
	return nil
}

package main

import (
	"cmp"
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/daemon"
	"github.com/eventsidecar/eventsidecar/tracing"
)

// runDaemon runs the sidecar until the first SIGINT or SIGTERM has shut it
// down.
func runDaemon(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration file (default: built-in defaults, embedded broker)")
	var o Overrides
	fs.StringVar(&o.LogLevel, "log-level", "", "debug, info, warn or error (overrides log.level)")
	fs.StringVar(&o.HealthListen, "health-listen", "", "serve /healthz and /readyz also on this address, e.g. 0.0.0.0:3609 (overrides http.health_listen)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath, o)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log.Level, stderr)
	defaultGC(os.Getenv)
	m, err := daemon.New(cfg, log)
	if err != nil {
		return err
	}
	defer m.Close()
	m.Version = version
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go handleSignals(cancel, log)
	return m.Run(ctx)
}

// gcPercent is the sidecar's GOGC when the environment sets none. Its live
// heap is a few MB, so Go's default of 100 collects many times a second
// under load, for a fifth of the sidecar's CPU; 400 collects a quarter as
// often, for a heap about 20 MB larger at full rate.
const gcPercent = 400

// defaultGC sets the garbage collector to gcPercent unless getenv gives a
// GOGC, which then stands.
func defaultGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// Overrides are the `run` flags that take precedence over the file; ""
// leaves the file's value.
type Overrides struct {
	LogLevel     string // log.level
	HealthListen string // http.health_listen
}

// loadConfig loads the configuration at path ("" for the defaults) and
// applies the overrides; daemon.New validates the result.
func loadConfig(path string, o Overrides) (config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return config.Config{}, err
	}
	cfg.Log.Level = cmp.Or(o.LogLevel, cfg.Log.Level)
	cfg.HTTP.HealthListen = cmp.Or(o.HealthListen, cfg.HTTP.HealthListen)
	return cfg, nil
}

// newLogger logs JSON lines to w at level (info when level is not one).
func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(tracing.LogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})))
}

// handleSignals starts a graceful shutdown on the first SIGINT/SIGTERM and
// exits at once on the second.
func handleSignals(shutdown context.CancelFunc, log *slog.Logger) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	sig := <-sigs
	log.Info("shutting down", "signal", sig.String())
	shutdown()
	sig = <-sigs
	log.Warn("second signal: exiting at once", "signal", sig.String())
	os.Exit(130)
}

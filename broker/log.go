package broker

import (
	"context"
	"fmt"
	"log/slog"
)

// serverLogger routes nats-server's log to slog. Its notices (the start-up
// banner and the like) go to debug: in a sidecar they are noise at info. The
// server is started with Debug and Trace off.
type serverLogger struct {
	log *slog.Logger
}

func (l serverLogger) Noticef(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l serverLogger) Warnf(format string, v ...any)   { l.logf(slog.LevelWarn, format, v) }
func (l serverLogger) Errorf(format string, v ...any)  { l.logf(slog.LevelError, format, v) }

// Fatalf logs at error level and does not exit: the embedded server's
// failure is reported to Open's caller instead.
func (l serverLogger) Fatalf(format string, v ...any) { l.logf(slog.LevelError, format, v) }
func (l serverLogger) Debugf(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }
func (l serverLogger) Tracef(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }

func (l serverLogger) logf(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, fmt.Sprintf(format, v...))
}

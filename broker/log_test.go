package broker

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestServerLoggerLevels(t *testing.T) {
	tests := []struct {
		name string
		log  func(serverLogger)
		want string
	}{
		{"notice", func(l serverLogger) { l.Noticef("n %d", 1) }, "level=DEBUG msg=\"n 1\""},
		{"warn", func(l serverLogger) { l.Warnf("w %d", 2) }, "level=WARN msg=\"w 2\""},
		{"error", func(l serverLogger) { l.Errorf("e %d", 3) }, "level=ERROR msg=\"e 3\""},
		{"fatal", func(l serverLogger) { l.Fatalf("f %d", 4) }, "level=ERROR msg=\"f 4\""},
		{"debug", func(l serverLogger) { l.Debugf("d %d", 5) }, "level=DEBUG msg=\"d 5\""},
		{"trace", func(l serverLogger) { l.Tracef("t %d", 6) }, "level=DEBUG msg=\"t 6\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(serverLogger{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			if got := buf.String(); !strings.Contains(got, tt.want) {
				t.Errorf("logged %q, want it to contain %q", got, tt.want)
			}
		})
	}
}

func TestServerLoggerFiltersByLevel(t *testing.T) {
	var buf bytes.Buffer
	l := serverLogger{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	l.Noticef("quiet")
	l.Debugf("quiet")
	if buf.Len() != 0 {
		t.Errorf("logged %q below the handler's level", buf.String())
	}
}

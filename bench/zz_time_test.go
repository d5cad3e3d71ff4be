package bench

import (
	"os"
	"testing"
	"time"
)

type tsWriter struct{ start time.Time }

func (w tsWriter) Write(p []byte) (int, error) {
	os.Stdout.WriteString(time.Since(w.start).Round(time.Millisecond).String() + " " + string(p))
	return len(p), nil
}

func TestZZTime(t *testing.T) {
	for i := 0; i < 3; i++ {
		o := DefaultOptions()
		o.Duration = 200 * time.Millisecond
		o.Warmup = 50 * time.Millisecond
		o.Backlog = 1000
		o.Progress = tsWriter{time.Now()}
		if _, err := Run(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
}

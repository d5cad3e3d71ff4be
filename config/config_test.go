package config

import "testing"

func TestLimits(t *testing.T) {
	c := Default()
	if got, want := c.Limits(), (Limits{MaxEventBytes: 1 << 20, MaxBatchEvents: 1000}); got != want {
		t.Errorf("Default().Limits() = %+v, want %+v", got, want)
	}
	c.HTTP.MaxEventBytes, c.HTTP.MaxBatchEvents = 512, 3
	if got, want := c.Limits(), (Limits{MaxEventBytes: 512, MaxBatchEvents: 3}); got != want {
		t.Errorf("Limits() = %+v, want %+v (http.max_event_bytes, http.max_batch_events)", got, want)
	}
}

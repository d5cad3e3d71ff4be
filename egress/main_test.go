package egress

import (
	"testing"

	"github.com/eventsidecar/eventsidecar/tracing/tracingtest"
)

func TestMain(m *testing.M) { tracingtest.Main(m) }

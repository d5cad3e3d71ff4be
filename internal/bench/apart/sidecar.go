package apart

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/eventsidecar/eventsidecar/internal/bench"
	"github.com/eventsidecar/eventsidecar/internal/pause"
)

const (
	// sidecarStartTimeout bounds a sidecar's start until it is ready.
	sidecarStartTimeout = time.Minute
	// readyPoll is how often GET /readyz is tried while starting.
	readyPoll = 10 * time.Millisecond
)

// sidecarConfig is what a sidecar process is configured with; the rest
// is the defaults, with both APIs on random 127.0.0.1 ports.
type sidecarConfig struct {
	natsURL  string // the external broker; "" for the embedded one
	storeDir string // the embedded broker's store
	webhook  string // the endpoint of the subscription of every event; "" for none
	inFlight int    // the subscription's max_in_flight
}

// yaml is c as the sidecar's configuration file.
func (c sidecarConfig) yaml() string {
	var b strings.Builder
	b.WriteString("app_id: bench\nhttp:\n  listen: 127.0.0.1:0\ngrpc:\n  listen: 127.0.0.1:0\nbroker:\n")
	if c.natsURL != "" {
		fmt.Fprintf(&b, "  url: %q\n", c.natsURL)
	} else {
		fmt.Fprintf(&b, "  embedded:\n    store_dir: %q\n", c.storeDir)
	}
	if c.webhook != "" {
		fmt.Fprintf(&b, "subscriptions:\n  - name: bench\n    topic: %q\n    endpoint: %q\n    max_in_flight: %d\n",
			bench.Topic, c.webhook, c.inFlight)
	}
	b.WriteString("tracing:\n  exporter: none\nlog:\n  level: info\n")
	return b.String()
}

// sidecarProc is a running eventsidecar process.
type sidecarProc struct {
	*process
	addr, grpcAddr string // its HTTP and gRPC APIs' host:port
}

// startSidecar runs `bin run --config` with c, written to a file in dir,
// and waits until it is ready (GET /readyz answers 200).
func startSidecar(ctx context.Context, bin, dir string, c sidecarConfig) (*sidecarProc, error) {
	f, err := os.CreateTemp(dir, "sidecar-*.yaml")
	if err == nil {
		_, err = f.WriteString(c.yaml())
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		return nil, fmt.Errorf("apart: sidecar config: %w", err)
	}
	s := &sidecarProc{}
	listening := make(chan struct{})
	var once sync.Once
	s.process, err = start("sidecar", exec.Command(bin, "run", "--config", f.Name()), func(line []byte) {
		var rec struct{ Msg, Addr string }
		_ = json.Unmarshal(line, &rec)
		switch rec.Msg {
		case "grpc listening":
			s.grpcAddr = rec.Addr
		case "http listening": // logged last
			once.Do(func() {
				s.addr = rec.Addr
				close(listening)
			})
		}
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, sidecarStartTimeout)
	defer cancel()
	if err := s.awaitReady(ctx, listening); err != nil {
		return nil, errors.Join(err, s.close())
	}
	return s, nil
}

// awaitReady waits until the sidecar listens, then until it is ready.
func (s *sidecarProc) awaitReady(ctx context.Context, listening <-chan struct{}) error {
	select {
	case <-listening:
	case <-s.exited:
		return s.dead()
	case <-ctx.Done():
		return fmt.Errorf("apart: sidecar does not listen: %w; its last output:\n%s", ctx.Err(), s.tail)
	}
	for {
		if s.ready(ctx) {
			return nil
		}
		if err := s.dead(); err != nil {
			return err
		}
		if !pause.For(ctx, readyPoll) {
			return fmt.Errorf("apart: sidecar not ready: %w; its last output:\n%s", ctx.Err(), s.tail)
		}
	}
}

// ready reports whether GET /readyz answers 200.
func (s *sidecarProc) ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// close stops the sidecar gracefully (SIGTERM).
func (s *sidecarProc) close() error {
	return s.stop(func() error { return s.cmd.Process.Signal(syscall.SIGTERM) })
}

// publishURL is where its HTTP API publishes to bench.Topic.
func (s *sidecarProc) publishURL() string { return publishURL(s.addr) }

// metricsFormat asks /metrics for the protobuf exposition format.
const metricsFormat = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

// Gather scrapes the sidecar's /metrics: it is a prometheus.Gatherer.
func (s *sidecarProc) Gather() ([]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/metrics", nil)
	if err != nil {
		return nil, fmt.Errorf("apart: scrape: %w", err)
	}
	req.Header.Set("Accept", metricsFormat)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("apart: scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("apart: scrape: status %d", resp.StatusCode)
	}
	var families []*dto.MetricFamily
	r := bufio.NewReader(resp.Body)
	for {
		mf := &dto.MetricFamily{}
		if err := protodelim.UnmarshalFrom(r, mf); errors.Is(err, io.EOF) {
			return families, nil
		} else if err != nil {
			return nil, fmt.Errorf("apart: scrape: %w", err)
		}
		families = append(families, mf)
	}
}

var _ prometheus.Gatherer = (*sidecarProc)(nil)

// failedOutcomes are the outcomes of eventsidecar_deliveries_total that
// are failures.
var failedOutcomes = []string{"retry", "dead_letter", "invalid"}

// failedDeliveries counts in g the delivery attempts that were retried,
// dead-lettered or found invalid, from eventsidecar_deliveries_total.
func failedDeliveries(g prometheus.Gatherer) (int64, error) {
	families, err := g.Gather()
	if err != nil {
		return 0, err
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "eventsidecar_deliveries_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && slices.Contains(failedOutcomes, l.GetValue()) {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int64(n), nil
}

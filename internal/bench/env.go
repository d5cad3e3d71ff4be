package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/daprapi"
	"github.com/eventsidecar/eventsidecar/ingress"
	"github.com/eventsidecar/eventsidecar/server"
)

// node is a fresh embedded broker storing in a temporary directory, in
// process only. The caller must Close it.
type node struct {
	cfg    config.Config
	broker *broker.Client
	dir    string
}

// openNode starts the broker with the sidecar's default configuration,
// its pending bound raised to fit o's windows.
func openNode(ctx context.Context, o Options) (*node, error) {
	dir, err := os.MkdirTemp("", "eventsidecar-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: store dir: %w", err)
	}
	cfg := config.Default()
	cfg.Broker.Embedded.StoreDir = dir
	cfg.Broker.Embedded.Listen = ""
	cfg.Broker.MaxPending = max(cfg.Broker.MaxPending, 2*o.Window, 2*o.BatchConcurrency*o.BatchSize, 2*o.Concurrency)
	b, err := broker.Open(ctx, cfg.Broker, "eventsidecar-bench", o.log())
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	return &node{cfg: cfg, broker: b, dir: dir}, nil
}

// stored is the number of messages in the events stream, read from
// JetStream.
func (n *node) stored(ctx context.Context) (uint64, error) {
	s, err := n.broker.JetStream().Stream(ctx, n.cfg.Broker.Stream)
	if err != nil {
		return 0, fmt.Errorf("bench: stream %q: %w", n.cfg.Broker.Stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("bench: stream %q info: %w", n.cfg.Broker.Stream, err)
	}
	return info.State.Msgs, nil
}

// Close stops the broker and removes its store.
func (n *node) Close() error {
	return errors.Join(n.broker.Close(), os.RemoveAll(n.dir))
}

// sidecar is the sidecar's HTTP ingress over a fresh node, served in
// process on a 127.0.0.1 TCP listener. The caller must Close it.
type sidecar struct {
	*node
	url  string // the publish URL of topic
	base string // http://host:port of its API
	stop context.CancelFunc
	done chan error
}

func startSidecar(ctx context.Context, o Options) (*sidecar, error) {
	n, err := openNode(ctx, o)
	if err != nil {
		return nil, err
	}
	srv, ln, err := listenIngress(n, nil, o.log())
	if err != nil {
		return nil, errors.Join(err, n.Close())
	}
	serveCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s := &sidecar{node: n, url: publishURL(ln), base: "http://" + ln.Addr().String(), stop: stop, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(serveCtx, ln) }()
	return s, nil
}

// Close stops serving (gracefully), then the broker.
func (s *sidecar) Close() error {
	s.stop()
	return errors.Join(<-s.done, s.node.Close())
}

// listenIngress is the sidecar's API over n, its Dapr API included, with
// the Subscribe stream of sub (nil for none), and a 127.0.0.1 TCP listener
// to serve it on.
func listenIngress(n *node, sub server.Subscriber, log *slog.Logger) (*server.Server, net.Listener, error) {
	reg := prometheus.NewRegistry()
	api, err := ingress.New(n.cfg, n.broker, reg)
	if err != nil {
		return nil, nil, err
	}
	dapr := daprapi.New(n.cfg, api, daprapi.Status{Ready: n.broker.Ready, Outbound: n.broker.Ready})
	srv := server.New(n.cfg.HTTP, server.Handlers{Publish: api, Dapr: dapr, RPC: api, Subscribe: sub, Decoder: api,
		Ready: n.broker.Ready, Rejected: api.Rejected}, reg, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("bench: listen: %w", err)
	}
	return srv, ln, nil
}

func publishURL(ln net.Listener) string {
	return "http://" + ln.Addr().String() + "/v1/publish/" + Topic
}

// trivial is a net/http server on 127.0.0.1 whose handler reads the body
// and answers 200 with a small JSON like the sidecar's. The caller must
// Close it.
type trivial struct {
	srv  *http.Server
	url  string
	done chan error
}

func startTrivial() (*trivial, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench: listen: %w", err)
	}
	h := config.Default().HTTP
	t := &trivial{
		srv: &http.Server{
			Handler:      TrivialHandler(),
			ReadTimeout:  h.ReadTimeout,
			WriteTimeout: h.WriteTimeout,
			IdleTimeout:  h.IdleTimeout,
		},
		url:  publishURL(ln),
		done: make(chan error, 1),
	}
	go func() { t.done <- t.srv.Serve(ln) }()
	return t, nil
}

// TrivialHandler reads the body and answers like the sidecar does for a
// stored single event: 200 with a small JSON receipt. It is safe for
// concurrent use.
func TrivialHandler() http.Handler {
	var seq atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		b := make([]byte, 0, 160)
		b = append(b, `{"topic":"`+Topic+`","id":`...)
		b = strconv.AppendQuote(b, r.Header.Get("Ce-Id"))
		b = append(b, `,"source":"`+eventSource+`","sequence":`...)
		b = strconv.AppendUint(b, seq.Add(1), 10)
		b = append(b, `,"duplicate":false}`...)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	})
}

// Close shuts the server down, waiting as long as the sidecar would for
// in-flight requests.
func (t *trivial) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), config.Default().HTTP.ShutdownTimeout)
	defer cancel()
	err := t.srv.Shutdown(ctx)
	if serr := <-t.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

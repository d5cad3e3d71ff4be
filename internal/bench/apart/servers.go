package apart

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/bench"
)

// natsSpec is the nats-server role's settings.
type natsSpec struct {
	StoreDir string // JetStream's file store
}

// hello is what a child that listens says first: where.
type hello struct {
	URL string
}

// natsReadyTimeout bounds nats-server's start.
const natsReadyTimeout = 30 * time.Second

// serveNATS runs nats-server with JetStream as the nats-server binary
// does (its server package, in this process), on a random 127.0.0.1 port.
func serveNATS(_ context.Context, spec []byte, l *link) error {
	var sp natsSpec
	if err := decodeSpec(spec, &sp); err != nil {
		return err
	}
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT,
		JetStream: true, StoreDir: sp.StoreDir,
		NoSigs: true, NoLog: true,
	})
	if err != nil {
		return fmt.Errorf("nats-server: %w", err)
	}
	go s.Start()
	defer func() {
		s.Shutdown()
		s.WaitForShutdown()
	}()
	if !s.ReadyForConnections(natsReadyTimeout) {
		return fmt.Errorf("nats-server: not ready within %s", natsReadyTimeout)
	}
	if err := l.send(hello{URL: s.ClientURL()}); err != nil {
		return err
	}
	l.drain()
	return nil
}

// serveTrivial serves bench.TrivialHandler on 127.0.0.1, with the
// sidecar's HTTP server timeouts: the HTTP ceiling. Its hello has the
// publish URL.
func serveTrivial(_ context.Context, _ []byte, l *link) error {
	srv, ln, err := listenHTTP(bench.TrivialHandler())
	if err != nil {
		return err
	}
	return serveHTTP(srv, ln, l, publishURL(ln.Addr().String()), func() error {
		l.drain()
		return nil
	})
}

// listenHTTP is a server of h with the sidecar's HTTP timeouts and a
// 127.0.0.1 listener to serve it on.
func listenHTTP(h http.Handler) (*http.Server, net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	c := config.Default().HTTP
	return &http.Server{Handler: h, ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout, IdleTimeout: c.IdleTimeout}, ln, nil
}

// serveHTTP serves srv on ln, says hello with url, and serves while
// answer handles l's requests; then it closes the server at once.
func serveHTTP(srv *http.Server, ln net.Listener, l *link, url string, answer func() error) error {
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	err := l.send(hello{URL: url})
	if err == nil {
		err = answer()
	}
	err = errors.Join(err, srv.Close())
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// publishURL is the sidecar's publish URL of bench.Topic at addr.
func publishURL(addr string) string {
	return "http://" + addr + "/v1/publish/" + bench.Topic
}

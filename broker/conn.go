package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/semaphore"

	"github.com/eventsidecar/eventsidecar/config"
)

const (
	// reconnectWait is the pause between reconnection attempts.
	reconnectWait = 500 * time.Millisecond
	// drainTimeout bounds draining the connection on Close.
	drainTimeout = 10 * time.Second
)

// Client is a connection to JetStream, embedded or external, with the
// events stream in place. It is safe for concurrent use; the caller owns it
// and must Close it.
type Client struct {
	cfg         config.Broker
	log         *slog.Logger
	server      *server.Server // the embedded server; nil for an external broker
	embeddedURL string
	nc          *nats.Conn
	js          jetstream.JetStream
	stream      jetstream.Stream
	slots       *semaphore.Weighted // one per event waiting for its PubAck

	closed   chan struct{}      // closed when the NATS connection has closed
	resync   chan struct{}      // asks the resync loop to ensure the stream again
	stopBG   context.CancelFunc // stops background work
	mu       sync.Mutex         // guards closing and bg.Add
	closing  bool
	bg       sync.WaitGroup // background goroutines
	closeOne sync.Once
	closeErr error
}

// Open connects to the broker described by cfg (starting the embedded
// server when cfg.URL is empty) and makes sure the events stream exists with
// the settings the sidecar owns. name is the NATS connection name, e.g.
// "eventsidecar orders"; log receives the connection's and the embedded
// server's log (slog.Default when nil). The caller must Close the returned
// Client.
func Open(ctx context.Context, cfg config.Broker, name string, log *slog.Logger) (*Client, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Client{
		cfg:    cfg,
		log:    log,
		slots:  semaphore.NewWeighted(int64(cfg.MaxPending)),
		closed: make(chan struct{}),
		resync: make(chan struct{}, 1),
	}
	if err := c.connect(ctx, name); err != nil {
		return nil, err
	}
	js, err := jetstream.New(c.nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		jetstream.WithPublishAsyncTimeout(cfg.PublishTimeout))
	if err != nil {
		c.nc.Close()
		c.stopServer()
		return nil, fmt.Errorf("broker: jetstream: %w", err)
	}
	c.js = js
	bgCtx, stop := context.WithCancel(context.Background())
	c.stopBG = stop
	c.bg.Add(1)
	go c.resyncLoop(bgCtx)
	if c.stream, err = ensureStream(ctx, js, cfg); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

func checkConfig(cfg config.Broker) error {
	switch {
	case cfg.Stream == "":
		return errors.New("broker: stream name is empty")
	case cfg.SubjectPrefix == "":
		return errors.New("broker: subject_prefix is empty")
	case cfg.MaxPending <= 0:
		return fmt.Errorf("broker: max_pending must be positive, got %d", cfg.MaxPending)
	case cfg.PublishTimeout <= 0:
		return fmt.Errorf("broker: publish_timeout must be positive, got %s", cfg.PublishTimeout)
	case cfg.URL == "" && cfg.Embedded.StoreDir == "":
		return errors.New("broker: embedded store_dir is empty")
	}
	return nil
}

// connect starts the embedded server if there is one and connects to it
// in-process, or dials the external broker.
func (c *Client) connect(ctx context.Context, name string) error {
	opts := c.connOptions(name)
	url := c.cfg.URL
	if url == "" {
		s, listenURL, err := startEmbedded(ctx, c.cfg.Embedded, c.log)
		if err != nil {
			return err
		}
		c.server, c.embeddedURL = s, listenURL
		url = s.ClientURL()
		opts = append(opts, nats.InProcessServer(s))
	} else {
		auth, err := authOptions(c.cfg)
		if err != nil {
			return err
		}
		opts = append(opts, auth...)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		c.stopServer()
		return fmt.Errorf("broker: connect: %w", err)
	}
	c.nc = nc
	return nil
}

func (c *Client) connOptions(name string) []nats.Option {
	return []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(reconnectWait),
		nats.ReconnectBufSize(-1),
		nats.RetryOnFailedConnect(false),
		nats.DrainTimeout(drainTimeout),
		nats.DisconnectErrHandler(c.onDisconnect),
		nats.ReconnectHandler(c.onReconnect),
		nats.ClosedHandler(func(*nats.Conn) { close(c.closed) }),
		nats.ErrorHandler(c.onAsyncError),
	}
}

// authOptions turns the configured credentials into connection options.
func authOptions(cfg config.Broker) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.CredentialsFile != "" {
		if err := checkCreds(cfg.CredentialsFile); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(cfg.CredentialsFile))
	}
	if cfg.NkeySeedFile != "" {
		opt, err := nats.NkeyOptionFromSeed(cfg.NkeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("broker: nkey_seed_file: %w", err)
		}
		opts = append(opts, opt)
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.TLS.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.TLS.CAFile))
	}
	if cfg.TLS.CertFile != "" || cfg.TLS.KeyFile != "" {
		opts = append(opts, nats.ClientCert(cfg.TLS.CertFile, cfg.TLS.KeyFile))
	}
	return opts, nil
}

// checkCreds refuses a credentials file without a user JWT: given a bare
// seed, nats.go would send the seed itself to the server as the JWT.
func checkCreds(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("broker: credentials_file: %w", err)
	}
	if !bytes.Contains(b, []byte("-----BEGIN NATS USER JWT-----")) {
		return fmt.Errorf("broker: credentials_file %s: no NATS user JWT in it (is it a seed? use nkey_seed_file)", path)
	}
	return nil
}

func (c *Client) onDisconnect(nc *nats.Conn, err error) {
	if c.isClosing() {
		return
	}
	c.log.Warn("broker: disconnected; reconnecting", "error", err)
}

func (c *Client) onReconnect(nc *nats.Conn) {
	c.log.Info("broker: reconnected", "url", nc.ConnectedUrlRedacted())
	c.requestResync()
}

func (c *Client) onAsyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	if sub != nil {
		c.log.Warn("broker: asynchronous error", "subject", sub.Subject, "error", err)
		return
	}
	c.log.Warn("broker: asynchronous error", "error", err)
}

func (c *Client) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// Ready returns nil when the connection is up and the stream is in place,
// else an error saying why. It is safe for concurrent use.
func (c *Client) Ready(ctx context.Context) error {
	if st := c.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("broker: not connected (%s)", st)
	}
	if _, err := c.stream.Info(ctx); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			c.requestResync()
		}
		return fmt.Errorf("broker: stream %q: %w", c.cfg.Stream, err)
	}
	return nil
}

// Conn returns the NATS connection. It is owned by the Client: do not
// close or drain it.
func (c *Client) Conn() *nats.Conn { return c.nc }

// JetStream returns the JetStream context over Conn, safe for concurrent
// use and owned by the Client.
func (c *Client) JetStream() jetstream.JetStream { return c.js }

// Stream returns the name of the stream holding every event.
func (c *Client) Stream() string { return c.cfg.Stream }

// Subject returns the NATS subject a topic is stored on:
// "<subject_prefix>.<topic>".
func (c *Client) Subject(topic string) string { return c.cfg.SubjectPrefix + "." + topic }

// EmbeddedURL returns "nats://host:port" of the embedded server's TCP
// listener, or "" when there is none (in-process only, or an external
// broker).
func (c *Client) EmbeddedURL() string { return c.embeddedURL }

// Close waits (up to the publish timeout) for the acknowledgements still
// pending, drains the connection, and then stops the embedded server and
// waits for its shutdown. It is idempotent and safe for concurrent use;
// every call returns the first call's result.
func (c *Client) Close() error {
	c.closeOne.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Client) close() error {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.stopBG()
	c.awaitPending()
	err := c.drain()
	c.bg.Wait()
	c.stopServer()
	return err
}

// awaitPending waits until every asynchronous publish has its answer,
// bounded by the publish timeout (after which the publisher has timed each
// one out anyway).
func (c *Client) awaitPending() {
	t := time.NewTimer(c.cfg.PublishTimeout)
	defer t.Stop()
	select {
	case <-c.js.PublishAsyncComplete():
	case <-t.C:
	}
}

// drain drains the connection and waits until it is closed. A connection
// that is closed or reconnecting has nothing left to drain (publishes are
// not buffered while disconnected): it is closed without an error.
func (c *Client) drain() error {
	err := c.nc.Drain()
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionReconnecting) {
		err = nil
	}
	if err != nil {
		c.nc.Close()
		err = fmt.Errorf("broker: drain: %w", err)
	}
	t := time.NewTimer(drainTimeout + time.Second)
	defer t.Stop()
	select {
	case <-c.closed:
	case <-t.C:
		c.nc.Close()
	}
	return err
}

func (c *Client) stopServer() {
	if c.server != nil {
		stopEmbedded(c.server)
	}
}

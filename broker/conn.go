package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/semaphore"

	"github.com/eventsidecar/eventsidecar/config"
)

const (
	// reconnectMinWait and reconnectMaxWait bound the backoff between
	// attempts to (re)connect: it doubles from the first to the second.
	reconnectMinWait = 250 * time.Millisecond
	reconnectMaxWait = 2 * time.Second
	// drainTimeout bounds draining the connection on Close.
	drainTimeout = 10 * time.Second
)

// Client is a connection to JetStream, embedded or external, that keeps
// the events stream (and whatever else Prepare was given) in place. It is
// safe for concurrent use; the caller owns it and must Close it.
type Client struct {
	cfg         config.Broker
	log         *slog.Logger
	url         string         // the broker's URLs without credentials, for messages
	unlock      func()         // releases the embedded store's lock; nil for an external broker
	server      *server.Server // the embedded server; nil for an external broker
	embeddedURL string
	nc          *nats.Conn
	js          jetstream.JetStream
	slots       *semaphore.Weighted // one per event waiting for its PubAck
	setup       setup
	connErr     atomic.Pointer[error] // why the last attempt to connect failed; nil once connected

	closed   chan struct{}      // closed when the NATS connection has closed
	stopBG   context.CancelFunc // stops background work
	mu       sync.Mutex         // guards closing and bg.Add
	closing  bool
	bg       sync.WaitGroup // background goroutines
	closeOne sync.Once
	closeErr error
}

// Start starts connecting to the broker described by cfg and returns at
// once, connected or not. For an embedded broker (cfg.URL empty) it first
// takes the store directory's lock, failing at once when another process
// holds it, and starts the embedded server; an external broker is dialled
// once and then, while it cannot be reached, again in the background with
// backoff, as after a lost connection. Once connected, the events stream is
// created or updated and every step given to Prepare runs; Ready reports
// nil from then on while the connection lasts. name is the NATS connection
// name, e.g. "eventsidecar orders"; log receives the connection's and the
// embedded server's log (slog.Default when nil). The caller must Close the
// returned Client.
func Start(ctx context.Context, cfg config.Broker, name string, log *slog.Logger) (*Client, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Client{
		cfg:    cfg,
		log:    log,
		url:    Redact(cfg.URL),
		slots:  semaphore.NewWeighted(int64(cfg.MaxPending)),
		setup:  newSetup(),
		closed: make(chan struct{}),
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
	go c.setupLoop(bgCtx)
	c.requestSetup()
	return c, nil
}

// Open is Start followed by waiting, bounded by ctx, until the Client is
// ready: connected, with the stream in place. The caller must Close the
// returned Client.
func Open(ctx context.Context, cfg config.Broker, name string, log *slog.Logger) (*Client, error) {
	c, err := Start(ctx, cfg, name, log)
	if err != nil {
		return nil, err
	}
	if err := c.WaitReady(ctx); err != nil {
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
// in-process, or dials the external broker, keeping on in the background
// when it cannot be reached.
func (c *Client) connect(ctx context.Context, name string) error {
	if c.cfg.URL == "" {
		return c.connectEmbedded(ctx, name)
	}
	auth, err := authOptions(c.cfg)
	if err != nil {
		return err
	}
	opts := append(c.connOptions(name), auth...)
	if c.nc, err = nats.Connect(c.cfg.URL, append(opts, nats.RetryOnFailedConnect(true))...); err != nil {
		return fmt.Errorf("broker: connect to %s: %w", c.url, err)
	}
	return nil
}

// connectEmbedded locks the store directory, starts the embedded server
// and connects to it in-process.
func (c *Client) connectEmbedded(ctx context.Context, name string) error {
	unlock, err := lockStore(c.cfg.Embedded.StoreDir)
	if err != nil {
		return err
	}
	s, listenURL, err := startEmbedded(ctx, c.cfg.Embedded, c.log)
	if err != nil {
		unlock()
		return err
	}
	c.unlock, c.server, c.embeddedURL = unlock, s, listenURL
	c.url = "embedded:" + c.cfg.Embedded.StoreDir
	if c.nc, err = nats.Connect(s.ClientURL(), append(c.connOptions(name), nats.InProcessServer(s))...); err != nil {
		c.stopServer()
		return fmt.Errorf("broker: connect to the embedded server: %w", err)
	}
	return nil
}

func (c *Client) connOptions(name string) []nats.Option {
	return []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.ReconnectBufSize(-1),
		nats.DrainTimeout(drainTimeout),
		nats.DisconnectErrHandler(c.onDisconnect),
		nats.ConnectHandler(c.onConnect), // the first connection, when made in the background
		nats.ReconnectHandler(c.onConnect),
		nats.ReconnectErrHandler(c.onConnectError),
		nats.ClosedHandler(func(*nats.Conn) { close(c.closed) }),
		nats.ErrorHandler(c.onAsyncError),
	}
}

// reconnectDelay is the pause after the attempts-th round of failed
// connection attempts: doubling from reconnectMinWait up to
// reconnectMaxWait, less up to a quarter of it at random.
func reconnectDelay(attempts int) time.Duration {
	d := reconnectMinWait << min(max(attempts-1, 0), 8)
	d = min(d, reconnectMaxWait)
	return d - time.Duration(rand.Int64N(int64(d/4)+1))
}

func (c *Client) onDisconnect(nc *nats.Conn, err error) {
	c.setup.lost()
	if c.isClosing() {
		return
	}
	c.log.Warn("broker: disconnected; reconnecting", "url", c.url, "error", err)
}

func (c *Client) onConnect(nc *nats.Conn) {
	c.connErr.Store(nil)
	url := c.url // the embedded server's in-process URL says nothing
	if c.server == nil {
		url = nc.ConnectedUrlRedacted()
	}
	c.log.Info("broker: connected", "url", url)
	c.requestSetup()
}

// onConnectError notes why an attempt to (re)connect failed, and logs the
// first failure since the connection was last up.
func (c *Client) onConnectError(_ *nats.Conn, err error) {
	if c.connErr.Swap(&err) == nil && !c.isClosing() {
		c.log.Warn("broker: cannot connect; retrying in the background", "url", c.url, "error", err)
	}
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

// Ready returns nil when the connection is up, the stream is in place and
// every Prepare step has run since the connection was made; else an error
// saying why, naming the broker. It is safe for concurrent use.
func (c *Client) Ready(ctx context.Context) error {
	if err := c.settled(); err != nil {
		return err
	}
	if _, err := c.setup.lastStream().Info(ctx); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			c.requestSetup()
		}
		return fmt.Errorf("broker %s: stream %q: %w", c.url, c.cfg.Stream, err)
	}
	return nil
}

// settled returns nil while the connection is up and set up, without
// asking the broker; else why not.
func (c *Client) settled() error {
	if err := c.connected(); err != nil {
		return err
	}
	if _, err := c.setup.done(); err != nil {
		return fmt.Errorf("broker %s: %w", c.url, err)
	}
	return nil
}

// connected returns nil while the connection is up, else an error naming
// the broker, its connection state and the last connection error.
func (c *Client) connected() error {
	st := c.nc.Status()
	if st == nats.CONNECTED {
		return nil
	}
	if err := c.connErr.Load(); err != nil {
		return fmt.Errorf("broker %s: not connected (%s): %w", c.url, st, *err)
	}
	return fmt.Errorf("broker %s: not connected (%s)", c.url, st)
}

// WaitReady waits until Ready would report nil without asking the broker
// (connected, the stream and the Prepare steps in place), or until ctx
// ends, returning then why the Client is not ready.
func (c *Client) WaitReady(ctx context.Context) error {
	select {
	case <-c.setup.ready():
		return nil
	case <-ctx.Done():
		return errors.Join(fmt.Errorf("broker %s: not ready: %w", c.url, ctx.Err()), c.connected())
	}
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
	if c.unlock != nil {
		c.unlock()
	}
}

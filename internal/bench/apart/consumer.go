package apart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/bench"
)

// consumerSpec is the direct consumer role's settings.
type consumerSpec struct {
	NATS    string // the broker's URL
	Webhook string // where to post each event
	Workers int
}

// consumedReq asks the direct consumer what it has consumed; with Mark,
// it starts timing its posts afresh after answering.
type consumedReq struct {
	Mark bool
}

// consumed is what the direct consumer has done so far; its latencies are
// those of the posts since the last mark.
type consumed struct {
	Delivered  int64
	Failed     int64
	FirstError string
	Posts      int64 // successful posts since the last mark
	P50, P99   time.Duration
}

// consumerName is the direct consumer's durable name.
const consumerName = "bench-direct"

// directConsumer is what an app without the sidecar would run: a nats.go
// pull consumer of the events stream whose workers post each event to the
// webhook in binary mode and ack it once answered 2xx (else nak it). Its
// methods are safe for concurrent use.
type directConsumer struct {
	client  *http.Client
	webhook string

	mu      sync.Mutex
	done    consumed
	latency []time.Duration
}

// serveConsumer creates the consumer, from the start of the stream, and
// delivers until its parent closes its standard input; it answers each
// request with what it has consumed.
func serveConsumer(ctx context.Context, spec []byte, l *link) error {
	var sp consumerSpec
	if err := decodeSpec(spec, &sp); err != nil {
		return err
	}
	nc, err := nats.Connect(sp.NATS, nats.Name("eventsidecar-bench direct consumer"))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer nc.Close()
	it, err := openMessages(ctx, nc, sp.Workers)
	if err != nil {
		return err
	}
	dc := &directConsumer{client: bench.NewClient(sp.Workers), webhook: sp.Webhook}
	defer dc.client.CloseIdleConnections()
	var wg sync.WaitGroup
	for range sp.Workers {
		wg.Go(func() { dc.work(ctx, it) })
	}
	err = l.send(struct{}{})
	if err == nil {
		err = answerEach(l, func(req consumedReq) any { return dc.consumed(req.Mark) })
	}
	it.Stop()
	wg.Wait()
	return err
}

// openMessages creates the durable consumer of every event in the stream
// and starts pulling its messages for workers.
func openMessages(ctx context.Context, nc *nats.Conn, workers int) (jetstream.MessagesContext, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, config.Default().Broker.Stream, jetstream.ConsumerConfig{
		Durable: consumerName, FilterSubject: subject,
		DeliverPolicy: jetstream.DeliverAllPolicy, AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("create consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(max(2*workers, 500)))
	if err != nil {
		return nil, fmt.Errorf("pull: %w", err)
	}
	return it, nil
}

// work delivers the messages of it until it is stopped.
func (dc *directConsumer) work(ctx context.Context, it jetstream.MessagesContext) {
	for {
		msg, err := it.Next()
		if err != nil {
			return
		}
		start := time.Now()
		err = dc.post(ctx, msg)
		if err == nil {
			err = msg.Ack()
		} else {
			err = errors.Join(err, msg.Nak())
		}
		dc.record(time.Since(start), err)
	}
}

// post posts msg's event to the webhook in binary mode: its ce- headers
// as they are, its datacontenttype as Content-Type, its data as the body.
func (dc *directConsumer) post(ctx context.Context, msg jetstream.Msg) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dc.webhook, bytes.NewReader(msg.Data()))
	if err != nil {
		return fmt.Errorf("new request: %w", err)
	}
	for k, v := range msg.Headers() {
		switch name := strings.ToLower(k); {
		case name == "ce-datacontenttype":
			req.Header["Content-Type"] = v
		case strings.HasPrefix(name, "ce-"):
			req.Header[http.CanonicalHeaderKey(name)] = v
		}
	}
	resp, err := dc.client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("post: read answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("post: status %d", resp.StatusCode)
	}
	return nil
}

// record notes one delivery that took d and failed with err, if not nil.
func (dc *directConsumer) record(d time.Duration, err error) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if err != nil {
		dc.done.Failed++
		if dc.done.FirstError == "" {
			dc.done.FirstError = err.Error()
		}
		return
	}
	dc.done.Delivered++
	dc.latency = append(dc.latency, d)
}

// consumed is what dc has done, with the latencies since the last mark;
// with mark, the latencies start afresh.
func (dc *directConsumer) consumed(mark bool) consumed {
	dc.mu.Lock()
	c, lat := dc.done, slices.Clone(dc.latency)
	if mark {
		dc.latency = dc.latency[:0]
	}
	dc.mu.Unlock()
	if c.Posts = int64(len(lat)); c.Posts > 0 {
		slices.Sort(lat)
		c.P50, c.P99 = bench.Percentile(lat, 0.50), bench.Percentile(lat, 0.99)
	}
	return c
}

package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/egress"
)

// measureStreamDelivery measures the deliveries of a backlog over a gRPC
// Subscribe stream at s.concurrency deliveries in flight, on a fresh node:
// the subscription (with no webhook) and its consumer are created, the
// backlog stored, the gRPC API served; then an app opens the stream, acks
// each delivery as it comes and, after the warm-up, its deliveries are
// counted for the measured duration. The backlog is topped up should it
// run low. A stream that ends before the app closes it counts as a
// failure.
func measureStreamDelivery(ctx context.Context, o Options, s scenario) (res Result, err error) {
	n, err := openNode(ctx, o)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, n.Close()) }()
	d, err := newDeliverer(ctx, n, "", s.concurrency, o.log())
	if err != nil {
		return res, err
	}
	g, err := startGRPC(ctx, n, egress.NewSubscriber(d.m), o.log())
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, g.Close()) }()
	backlog := o.backlog()
	f := &feeder{b: n.broker, data: eventData}
	if err := f.store(ctx, backlog); err != nil {
		return res, err
	}
	app, err := subscribe(ctx, g.client, s.concurrency, backlog)
	if err != nil {
		return res, err
	}
	t, err := deliverBacklog(ctx, o, d, f, app.arrivals, backlog)
	ended := app.Close()
	if err != nil {
		return res, err
	}
	res = t.result(s)
	if ended != nil {
		res.Failed++
		res.FirstError = cmp.Or(res.FirstError, ended.Error())
	}
	return res, nil
}

// streamApp is an app taking the benchmark subscription's deliveries over
// a gRPC Subscribe stream: it notes each delivery's event id in its
// arrivals and acks it at once, from the one goroutine that receives and
// sends. The caller must Close it.
type streamApp struct {
	*arrivals
	cancel context.CancelFunc
	done   chan error // why the stream ended
}

// subscribe opens a Subscribe stream on c with at most inFlight
// deliveries unanswered and, once the sidecar has answered Started, takes
// its deliveries until Close; hint is the number of deliveries expected.
// ctx only carries values.
func subscribe(ctx context.Context, c eventsidecarv1.EventSidecarClient, inFlight, hint int) (*streamApp, error) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stream, err := c.Subscribe(ctx)
	if err == nil {
		err = sendRequest(stream, &eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Start_{
			Start: &eventsidecarv1.SubscribeRequest_Start{Subscription: subscription, MaxInFlight: uint32(inFlight)}}})
	}
	var resp *eventsidecarv1.SubscribeResponse
	if err == nil {
		resp, err = stream.Recv()
	}
	if err == nil && resp.GetStarted() == nil {
		err = fmt.Errorf("the first answer is %v, not started", resp)
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("bench: gRPC Subscribe %q: %w", subscription, err)
	}
	a := &streamApp{arrivals: newArrivals(hint), cancel: cancel, done: make(chan error, 1)}
	go func() { a.done <- a.take(stream) }()
	return a, nil
}

// take notes and acks each delivery on stream until the stream ends, and
// returns why.
func (a *streamApp) take(stream eventsidecarv1.EventSidecar_SubscribeClient) error {
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		d := resp.GetDelivery()
		if d == nil {
			return fmt.Errorf("an answer that is not a delivery: %v", resp)
		}
		a.note(d.GetEvent().GetId(), time.Now())
		err = sendRequest(stream, &eventsidecarv1.SubscribeRequest{Request: &eventsidecarv1.SubscribeRequest_Ack_{
			Ack: &eventsidecarv1.SubscribeRequest_Ack{DeliveryId: d.GetDeliveryId()}}})
		if err != nil {
			return err
		}
	}
}

// sendRequest sends req on stream; when the stream has ended it returns the
// stream's status, which Recv has, instead of Send's io.EOF.
func sendRequest(stream eventsidecarv1.EventSidecar_SubscribeClient, req *eventsidecarv1.SubscribeRequest) error {
	err := stream.Send(req)
	if errors.Is(err, io.EOF) {
		_, err = stream.Recv()
	}
	return err
}

// Close ends the stream, whose unanswered deliveries go back to the
// broker, and returns why it had ended if it had before.
func (a *streamApp) Close() error {
	a.cancel()
	err := <-a.done
	switch {
	case status.Code(err) == codes.Canceled:
		return nil
	case errors.Is(err, io.EOF):
		err = errors.New("the sidecar ended it")
	}
	return fmt.Errorf("bench: gRPC Subscribe %q: %w", subscription, err)
}

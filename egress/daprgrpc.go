package egress

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/dapr"
	"github.com/eventsidecar/eventsidecar/internal/clip"
)

// daprGRPC is a Dapr app called over gRPC (dapr.app_protocol grpc), on
// one plaintext connection to app_host:app_port: AppCallback's
// ListTopicSubscriptions lists its programmatic subscriptions, and each
// delivery is an OnTopicEvent call (daprCall). Safe for concurrent use.
type daprGRPC struct {
	target   string // "<app_host>:<app_port>"
	settings config.DaprSubscription
	conn     *grpc.ClientConn
	client   runtimev1.AppCallbackClient
	log      *slog.Logger
}

// newDaprGRPC is the gRPC app of cfg's dapr block. The connection is made
// on the first call, and made again after a failure with a backoff from
// initial_backoff to max_backoff.
func newDaprGRPC(cfg config.Config, log *slog.Logger) (*daprGRPC, error) {
	d := cfg.Dapr
	target := hostPort(d.AppHost, d.AppPort)
	r := d.Subscription.Retry
	conn, err := grpc.NewClient("passthrough:///"+target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: r.InitialBackoff, Multiplier: 1.6, Jitter: 0.2, MaxDelay: r.MaxBackoff},
			MinConnectTimeout: d.Subscription.Timeout,
		}))
	if err != nil {
		return nil, fmt.Errorf("egress: the Dapr app at %s: %w", target, err)
	}
	return &daprGRPC{target: target, settings: d.Subscription, conn: conn,
		client: runtimev1.NewAppCallbackClient(conn), log: log}, nil
}

func (a *daprGRPC) endpoint() string { return "grpc://" + a.target }

func (a *daprGRPC) close() error { return a.conn.Close() }

// Subscriptions asks ListTopicSubscriptions within the subscriptions'
// timeout: Unimplemented is none; no answer (Unavailable, a timeout) is
// an error wrapping ErrAppNotUp; another error is an error. Entries it
// cannot read are logged and left out (see dapr.FromProto).
func (a *daprGRPC) Subscriptions(ctx context.Context) ([]dapr.Subscription, error) {
	cctx, cancel := context.WithTimeout(ctx, a.settings.Timeout)
	defer cancel()
	resp, err := a.client.ListTopicSubscriptions(cctx, &emptypb.Empty{})
	switch code := status.Code(err); {
	case err == nil:
	case code == codes.Unimplemented:
		return nil, nil
	case code == codes.Unavailable, code == codes.DeadlineExceeded:
		return nil, fmt.Errorf("%w: ListTopicSubscriptions: %s", ErrAppNotUp, grpcReason(err))
	default:
		return nil, fmt.Errorf("egress: ListTopicSubscriptions: %s", grpcReason(err))
	}
	subs, skipped := dapr.FromProto(resp)
	for _, e := range skipped {
		a.log.Warn("a subscription the app listed is not served", "error", e)
	}
	return subs, nil
}

// deliverer is the deliverer of the Dapr subscription ds, delivered as
// sub.
func (a *daprGRPC) deliverer(ds dapr.Subscription, sub config.Subscription) (pusher, error) {
	return &daprCall{client: a.client, ds: ds, timeout: sub.Timeout, retry: sub.Retry}, nil
}

// daprCall makes the delivery attempts of one Dapr subscription to a
// gRPC app (contract §9). Safe for concurrent use.
type daprCall struct {
	client  runtimev1.AppCallbackClient
	ds      dapr.Subscription
	timeout time.Duration
	retry   config.Retry
}

// CloseIdleConnections does nothing: the app's one connection is closed
// with the DaprApp.
func (c *daprCall) CloseIdleConnections() {}

// Attempt calls OnTopicEvent with d's event as Dapr's TopicEventRequest
// routed to d.Route, within the subscription's timeout, and returns what
// the answer means (grpcOutcome) with how long it took.
func (c *daprCall) Attempt(ctx context.Context, d Delivery) Outcome {
	start := time.Now()
	o := c.attempt(ctx, d)
	o.Took = time.Since(start)
	return o
}

func (c *daprCall) attempt(ctx context.Context, d Delivery) Outcome {
	req, err := dapr.TopicEventRequest(daprEnvelope(ctx, c.ds, d.Event), d.Event.Data(), d.Route)
	if err != nil {
		return Decide(0, nil, err, d.Attempt, c.retry, nil)
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cctx = metadata.AppendToOutgoingContext(cctx, headerPubSubName, c.ds.PubSub, headerTopic, c.ds.Topic,
		headerAttempt, strconv.Itoa(d.Attempt))
	resp, err := c.client.OnTopicEvent(cctx, req)
	if ctx.Err() != nil {
		return Outcome{Kind: Retry, Cause: CauseCancelled, Reason: reasonCancelled}
	}
	return grpcOutcome(resp, err, d.Attempt, c.retry, c.timeout)
}

// grpcOutcome maps a gRPC app's answer to attempt number attempt, resp or
// err, to its Outcome (contract §9, dapr.GRPCAnswer):
//
//   - SUCCESS: Delivered.
//   - DROP, or the error Unimplemented: Dead (Dapr drops it; here nothing
//     is lost).
//   - RETRY or a status Dapr does not know: Retry after Backoff with
//     CauseAnswer, as a 2xx RETRY of an HTTP app.
//   - the error Unavailable (the connection failed or was refused): Retry
//     with CauseUnreachable: the app is down, and the circuit holds the
//     events.
//   - another error (a timeout, an error the app's handler returned):
//     Retry after Backoff with CauseFailure.
func grpcOutcome(resp *runtimev1.TopicEventResponse, err error, attempt int, r config.Retry, timeout time.Duration) Outcome {
	v := dapr.GRPCAnswer(resp, err)
	if err == nil {
		switch v {
		case dapr.Success:
			return Outcome{Kind: Delivered, Cause: CauseAnswer, Reason: v.String()}
		case dapr.Drop:
			return Outcome{Kind: Dead, Cause: CauseAnswer, Reason: reasonDrop}
		}
		return Outcome{Kind: Retry, Cause: CauseAnswer, Delay: Backoff(attempt, r, nil),
			Reason: fmt.Sprintf("%s (status %s)", reasonRetry, resp.GetStatus())}
	}
	reason := grpcReason(err)
	switch status.Code(err) {
	case codes.Unimplemented:
		return Outcome{Kind: Dead, Cause: CauseAnswer, Reason: reason}
	case codes.Unavailable:
		return Outcome{Kind: Retry, Cause: CauseUnreachable, Delay: Backoff(attempt, r, nil), Reason: reason}
	case codes.DeadlineExceeded:
		reason = (&timeoutError{after: timeout, err: err}).Error()
	}
	return Outcome{Kind: Retry, Cause: CauseFailure, Delay: Backoff(attempt, r, nil), Reason: reason}
}

// grpcReason says in words what a gRPC error is: its code and the start
// of its message.
func grpcReason(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return describeError(err)
	}
	return fmt.Sprintf("gRPC %s: %s", st.Code(), clip.UTF8(st.Message(), answerBodyMax))
}

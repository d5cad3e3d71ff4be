package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"

	ceprotobuf "github.com/cloudevents/sdk-go/binding/format/protobuf/v2"
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/clip"
	"github.com/eventsidecar/eventsidecar/problem"
	"github.com/eventsidecar/eventsidecar/wire"
)

type subscribeStream = grpc.BidiStreamingServer[eventsidecarv1.SubscribeRequest, eventsidecarv1.SubscribeResponse]

// maxRejectReason bounds the dlqreason an app's reject gives.
const maxRejectReason = 1 << 10

// maxEchoedID bounds a delivery id echoed back in an error.
const maxEchoedID = 64

// Subscriber is the gRPC Subscribe stream (contract §6) over a Manager's
// subscriptions: the app's answers settle each delivery with the same
// retry and dead-letter rules as a webhook's. It is safe for concurrent
// use.
type Subscriber struct {
	m *Manager
}

// NewSubscriber returns the Subscribe stream over m's subscriptions; it
// logs to m's logger.
func NewSubscriber(m *Manager) *Subscriber { return &Subscriber{m: m} }

// Subscribe opens a stream on a subscription (the first message is its
// Start), sends Started, then the subscription's deliveries, and applies
// the app's answers, until the app closes its side, the stream breaks, or
// the app stops reading. Deliveries still unanswered then go back to the
// broker at once. When the stream's context ends with a *problem.Error as
// its cause (the server stopping), the stream ends with that status.
// Errors are gRPC statuses.
func (s *Subscriber) Subscribe(stream subscribeStream) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return recvStatus(ctx, err)
	}
	start := first.GetStart()
	if start == nil {
		return invalidField("start", "the first message must be a start")
	}
	spec, err := streamSpec(start)
	if err != nil {
		return problem.GRPCStatus(err)
	}
	st, err := s.m.OpenSession(ctx, spec)
	if err != nil {
		return problem.GRPCStatus(streamProblem(err))
	}
	defer st.Close()
	started := &eventsidecarv1.SubscribeResponse{Response: &eventsidecarv1.SubscribeResponse_Started_{Started: &eventsidecarv1.SubscribeResponse_Started{
		Subscription: st.Name(), MaxInFlight: uint32(st.Window())}}}
	if err := stream.Send(started); err != nil {
		return err
	}
	s.m.log.Info("stream opened", "subscription", st.Name(), "max_in_flight", st.Window())
	result := serve(ctx, st, stream)
	s.m.log.Info("stream closed", "subscription", st.Name(), "status", status.Code(result).String())
	return result
}

// serve runs st, sends its deliveries on stream and applies the app's
// answers until the stream ends; it returns the stream's status.
func serve(ctx context.Context, st *Session, stream subscribeStream) error {
	run, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- st.Run(run) }()
	go sendDeliveries(run, st, stream)
	answers := make(chan *eventsidecarv1.SubscribeRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case answers <- req:
			case <-run.Done():
				return
			}
		}
	}()
	result, runDone := serveAnswers(ctx, st, answers, recvErr, ran)
	stop()
	if !runDone {
		if err := <-ran; err != nil && result == nil {
			result = problem.GRPCStatus(streamProblem(err))
		}
	}
	return result
}

// serveAnswers applies the app's answers until the stream ends; it returns
// the stream's status, and whether it saw Run end.
func serveAnswers(ctx context.Context, st *Session, answers <-chan *eventsidecarv1.SubscribeRequest,
	recvErr <-chan error, ran <-chan error) (error, bool) {
	for {
		select {
		case req := <-answers:
			if err := answer(st, req); err != nil {
				return err, false
			}
		case err := <-recvErr:
			return recvStatus(ctx, err), false
		case err := <-ran:
			return ranStatus(ctx, err), true
		}
	}
}

// ranStatus is the status of a stream whose Run ended: OK when ctx ended
// by itself, the problem of ctx's cause when that is one (with where the
// deliveries went), else that of Run's error.
func ranStatus(ctx context.Context, err error) error {
	var cause *problem.Error
	switch {
	case err != nil:
		return problem.GRPCStatus(streamProblem(err))
	case errors.As(context.Cause(ctx), &cause):
		return problem.GRPCStatus(problem.New(cause.Code, cause.Detail+"; unanswered deliveries went back to the broker"))
	}
	return nil
}

// sendDeliveries sends the stream's deliveries until it ends or a send
// fails (the stream is broken: the receive side sees it too).
func sendDeliveries(ctx context.Context, st *Session, stream subscribeStream) {
	for {
		out, err := st.Next(ctx)
		if err != nil {
			return
		}
		ev, err := ceprotobuf.ToProto(out.Event)
		if err != nil {
			_ = st.Answer(out.ID, Answer{Kind: Dead, Reason: "not convertible to protobuf: " + err.Error()})
			continue
		}
		asText(ev)
		setTrace(ev, out.TraceParent, out.TraceState)
		resp := &eventsidecarv1.SubscribeResponse{Response: &eventsidecarv1.SubscribeResponse_Delivery_{Delivery: &eventsidecarv1.SubscribeResponse_Delivery{
			DeliveryId: out.ID, Event: ev, Attempt: uint32(min(out.Attempt, math.MaxUint32))}}}
		if err := stream.Send(resp); err != nil {
			return
		}
	}
}

// asText moves textual data (JSON or text, as the structured JSON writer
// tells them, and valid UTF-8) from binary_data to text_data, as the
// CloudEvents protobuf format requires; sdk-go's ToProto always uses
// binary_data.
func asText(ev *pb.CloudEvent) {
	bin, ok := ev.GetData().(*pb.CloudEvent_BinaryData)
	if !ok || !utf8.Valid(bin.BinaryData) {
		return
	}
	ct := ev.GetAttributes()["datacontenttype"].GetCeString()
	if wire.IsJSON(ct) || wire.IsText(ct) {
		ev.Data = &pb.CloudEvent_TextData{TextData: string(bin.BinaryData)}
	}
}

// setTrace sets an event's distributed-tracing attributes to the
// delivery's trace context.
func setTrace(ev *pb.CloudEvent, parent, state string) {
	if parent == "" {
		return
	}
	if ev.Attributes == nil {
		ev.Attributes = map[string]*pb.CloudEventAttributeValue{}
	}
	ev.Attributes["traceparent"] = pbString(parent)
	delete(ev.Attributes, "tracestate")
	if state != "" {
		ev.Attributes["tracestate"] = pbString(state)
	}
}

func pbString(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

// answer applies one of the app's answers; its error is a gRPC status.
func answer(st *Session, req *eventsidecarv1.SubscribeRequest) error {
	var id string
	var a Answer
	switch r := req.GetRequest().(type) {
	case *eventsidecarv1.SubscribeRequest_Ack_:
		id, a = r.Ack.GetDeliveryId(), Answer{Kind: Delivered}
	case *eventsidecarv1.SubscribeRequest_Retry_:
		if d := r.Retry.GetDelay(); d != nil {
			if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
				return invalidField("retry.delay", "must be a duration >= 0")
			}
			a.Delay = d.AsDuration()
		}
		id, a.Kind = r.Retry.GetDeliveryId(), Retry
	case *eventsidecarv1.SubscribeRequest_Reject_:
		id, a = r.Reject.GetDeliveryId(), Answer{Kind: Dead, Reason: clip.UTF8(r.Reject.GetReason(), maxRejectReason)}
	case *eventsidecarv1.SubscribeRequest_Start_:
		return invalidField("start", "sent twice: a stream has one subscription")
	default:
		return invalidField("request", "is empty: send ack, retry or reject")
	}
	if err := st.Answer(id, a); err != nil {
		return invalidField("delivery_id", fmt.Sprintf("%q was never sent on this stream", clip.UTF8(id, maxEchoedID)))
	}
	return nil
}

// streamSpec turns a Start into what OpenStream opens: a configured
// subscription when no topic is given, else an ad-hoc one with the
// defaults of a configured subscription for what Start leaves unset. Its
// error is a *problem.Error naming the bad fields.
func streamSpec(start *eventsidecarv1.SubscribeRequest_Start) (SessionSpec, error) {
	spec := SessionSpec{Name: start.GetSubscription(), MaxInFlight: int(min(start.GetMaxInFlight(), math.MaxInt32))}
	if start.GetTopic() == "" {
		if len(start.GetTypes()) > 0 || start.GetRetry() != nil || start.GetDeadLetterTopic() != "" || start.GetOrderedByKey() || start.GetTimeout() != nil {
			return spec, problem.Invalid(problem.Field{Name: "start.topic",
				Reason: "is required with types, retry, dead_letter_topic, ordered_by_key or timeout (they define an ad-hoc subscription)"})
		}
		return spec, nil
	}
	sub := config.DefaultSubscription()
	sub.Name, sub.Topic, sub.DeadLetterTopic, sub.OrderedByKey = start.GetSubscription(), start.GetTopic(), start.GetDeadLetterTopic(), start.GetOrderedByKey()
	if len(start.GetTypes()) > 0 {
		sub.Types = start.GetTypes()
	}
	var bad []problem.Field
	duration := func(field string, d *durationpb.Duration, into *time.Duration) {
		if d == nil {
			return
		}
		if d.CheckValid() != nil || d.AsDuration() <= 0 {
			bad = append(bad, problem.Field{Name: "start." + field, Reason: "must be a duration > 0"})
			return
		}
		*into = d.AsDuration()
	}
	duration("timeout", start.GetTimeout(), &sub.Timeout)
	if r := start.GetRetry(); r != nil {
		if r.GetMaxAttempts() > 0 {
			sub.Retry.MaxAttempts = int(min(r.GetMaxAttempts(), math.MaxInt32))
		}
		duration("retry.initial_backoff", r.GetInitialBackoff(), &sub.Retry.InitialBackoff)
		duration("retry.max_backoff", r.GetMaxBackoff(), &sub.Retry.MaxBackoff)
		if r.GetMultiplier() != 0 {
			sub.Retry.Multiplier = r.GetMultiplier()
		}
	}
	if len(bad) > 0 {
		return spec, problem.Invalid(bad...)
	}
	spec.AdHoc = &sub
	return spec, nil
}

// streamProblem is the one place a stream's errors (of OpenStream or Run)
// become API problems: a validation error names the Start's fields,
// ErrUnknownSubscription is not found, ErrConflict a subscription
// conflict, ErrSlowReader overloaded, anything else (the broker's)
// unavailable.
func streamProblem(err error) *problem.Error {
	var ve *config.ValidationError
	switch {
	case errors.As(err, &ve):
		bad := make([]problem.Field, len(ve.Problems))
		for i, p := range ve.Problems {
			field := "start." + p.Key
			if p.Key == "name" {
				field = "start.subscription"
			}
			bad[i] = problem.Field{Name: field, Reason: p.Message}
		}
		return problem.Invalid(bad...)
	case errors.Is(err, ErrUnknownSubscription):
		return problem.New(problem.CodeNotFound, err.Error())
	case errors.Is(err, ErrConflict):
		return problem.New(problem.CodeSubscriptionConflict, err.Error())
	case errors.Is(err, ErrSlowReader):
		return problem.New(problem.CodeOverloaded, err.Error()+"; the stream ended and its deliveries went back to the broker")
	}
	return problem.New(problem.CodeUnavailable, err.Error())
}

// recvStatus is the status of a stream whose receive side ended: OK when
// the app closed its side, else the stream's own end.
func recvStatus(ctx context.Context, err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	return err
}

// invalidField is an InvalidArgument status naming one field.
func invalidField(field, reason string) error {
	return problem.GRPCStatus(problem.Invalid(problem.Field{Name: field, Reason: reason}))
}

package ingress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	ceprotobuf "github.com/cloudevents/sdk-go/binding/format/protobuf/v2"
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	eventsidecarv1 "github.com/eventsidecar/eventsidecar/api/eventsidecar/v1"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/egress"
)

type subscribeStream = grpc.BidiStreamingServer[eventsidecarv1.SubscribeRequest, eventsidecarv1.SubscribeResponse]

// Subscribe opens a stream on a subscription (the first message is its
// Start), sends Started, then the subscription's deliveries, and applies
// the app's answers, until the app closes its side, the stream breaks, or
// the app stops reading. Deliveries still unanswered then go back to the
// broker at once.
func (g *grpcAPI) Subscribe(stream subscribeStream) error {
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
		return err
	}
	st, err := g.s.subs.OpenStream(ctx, spec)
	if err != nil {
		return openStatus(err)
	}
	defer st.Close()
	sub := st.Subscription()
	started := &eventsidecarv1.SubscribeResponse{Response: &eventsidecarv1.SubscribeResponse_Started_{Started: &eventsidecarv1.SubscribeResponse_Started{
		Subscription: sub.Name, MaxInFlight: uint32(sub.MaxInFlight)}}}
	if err := stream.Send(started); err != nil {
		return err
	}
	g.s.log.Info("stream opened", "subscription", sub.Name, "max_in_flight", sub.MaxInFlight)

	run, stop := context.WithCancel(ctx)
	defer stop()
	defer context.AfterFunc(g.streams, stop)()
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

	result, runDone := g.serveAnswers(ctx, st, answers, recvErr, ran)
	stop()
	if !runDone {
		if err := <-ran; err != nil && result == nil {
			result = runStatus(err)
		}
	}
	g.s.log.Info("stream closed", "subscription", sub.Name, "status", status.Code(result).String())
	return result
}

// serveAnswers applies the app's answers until the stream ends; it returns
// the stream's status, and whether it saw Run end.
func (g *grpcAPI) serveAnswers(ctx context.Context, st *egress.Stream, answers <-chan *eventsidecarv1.SubscribeRequest,
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
			if err == nil && g.streams.Err() != nil {
				return status.Error(codes.Unavailable, "the sidecar is shutting down; unanswered deliveries went back to the broker"), true
			}
			return runStatus(err), true
		}
	}
}

// sendDeliveries sends the stream's deliveries until it ends or a send
// fails (the stream is broken: the receive side sees it too).
func sendDeliveries(ctx context.Context, st *egress.Stream, stream subscribeStream) {
	for {
		out, err := st.Next(ctx)
		if err != nil {
			return
		}
		ev, err := ceprotobuf.ToProto(out.Event)
		if err != nil {
			_ = st.Answer(out.ID, egress.Answer{Kind: egress.Dead, Reason: "not convertible to protobuf: " + err.Error()})
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

// asText moves textual data (text/*, JSON or XML content types, valid
// UTF-8) from binary_data to text_data, as the CloudEvents protobuf format
// requires; sdk-go's ToProto always uses binary_data.
func asText(ev *pb.CloudEvent) {
	bin, ok := ev.GetData().(*pb.CloudEvent_BinaryData)
	if !ok || !utf8.Valid(bin.BinaryData) {
		return
	}
	mt := mediaType(ev.GetAttributes()["datacontenttype"].GetCeString())
	top, sub, _ := strings.Cut(mt, "/")
	if top == "text" || isJSON(mt) || sub == "xml" || strings.HasSuffix(sub, "+xml") {
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
	ev.Attributes["traceparent"] = ceString(parent)
	delete(ev.Attributes, "tracestate")
	if state != "" {
		ev.Attributes["tracestate"] = ceString(state)
	}
}

func ceString(s string) *pb.CloudEventAttributeValue {
	return &pb.CloudEventAttributeValue{Attr: &pb.CloudEventAttributeValue_CeString{CeString: s}}
}

// answer applies one of the app's answers.
func answer(st *egress.Stream, req *eventsidecarv1.SubscribeRequest) error {
	var id string
	var a egress.Answer
	switch r := req.GetRequest().(type) {
	case *eventsidecarv1.SubscribeRequest_Ack_:
		id, a = r.Ack.GetDeliveryId(), egress.Answer{Kind: egress.Delivered}
	case *eventsidecarv1.SubscribeRequest_Retry_:
		if d := r.Retry.GetDelay(); d != nil {
			if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
				return invalidField("retry.delay", "must be a duration >= 0")
			}
			a.Delay = d.AsDuration()
		}
		id, a.Kind = r.Retry.GetDeliveryId(), egress.Retry
	case *eventsidecarv1.SubscribeRequest_Reject_:
		id, a = r.Reject.GetDeliveryId(), egress.Answer{Kind: egress.Dead, Reason: clip(r.Reject.GetReason(), maxRejectReason)}
	case *eventsidecarv1.SubscribeRequest_Start_:
		return invalidField("start", "sent twice: a stream has one subscription")
	default:
		return invalidField("request", "is empty: send ack, retry or reject")
	}
	if err := st.Answer(id, a); err != nil {
		return invalidField("delivery_id", fmt.Sprintf("%q was never sent on this stream", clip(id, 64)))
	}
	return nil
}

// maxRejectReason bounds the dlqreason an app's reject gives.
const maxRejectReason = 1 << 10

// clip returns at most n bytes of s, cut at a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// streamSpec turns a Start into what egress opens: a configured
// subscription when no topic is given, else an ad-hoc one with the
// defaults of a configured subscription for what Start leaves unset.
func streamSpec(start *eventsidecarv1.SubscribeRequest_Start) (egress.StreamSpec, error) {
	spec := egress.StreamSpec{Name: start.GetSubscription(), MaxInFlight: int(min(start.GetMaxInFlight(), math.MaxInt32))}
	if start.GetTopic() == "" {
		if len(start.GetTypes()) > 0 || start.GetRetry() != nil || start.GetDeadLetterTopic() != "" || start.GetOrderedByKey() || start.GetTimeout() != nil {
			return spec, invalidField("start.topic",
				"is required with types, retry, dead_letter_topic, ordered_by_key or timeout (they define an ad-hoc subscription)")
		}
		return spec, nil
	}
	sub := config.DefaultSubscription()
	sub.Name, sub.Topic, sub.DeadLetterTopic, sub.OrderedByKey = start.GetSubscription(), start.GetTopic(), start.GetDeadLetterTopic(), start.GetOrderedByKey()
	if len(start.GetTypes()) > 0 {
		sub.Types = start.GetTypes()
	}
	var bad []*errdetails.BadRequest_FieldViolation
	duration := func(field string, d *durationpb.Duration, into *time.Duration) {
		if d == nil {
			return
		}
		if d.CheckValid() != nil || d.AsDuration() <= 0 {
			bad = append(bad, violation("start."+field, "must be a duration > 0"))
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
		return spec, violations(bad)
	}
	spec.AdHoc = &sub
	return spec, nil
}

// openStatus is the status of a failed OpenStream.
func openStatus(err error) error {
	var ve *config.ValidationError
	switch {
	case errors.As(err, &ve):
		bad := make([]*errdetails.BadRequest_FieldViolation, len(ve.Problems))
		for i, p := range ve.Problems {
			field := "start." + p.Key
			if p.Key == "name" {
				field = "start.subscription"
			}
			bad[i] = violation(field, p.Message)
		}
		return violations(bad)
	case errors.Is(err, egress.ErrUnknownSubscription):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, egress.ErrConflict):
		return status.Error(codes.FailedPrecondition, err.Error())
	default:
		return status.Error(codes.Unavailable, err.Error())
	}
}

// runStatus is the status of a stream whose Run ended by itself.
func runStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, egress.ErrSlowReader):
		return status.Error(codes.ResourceExhausted, err.Error()+"; the stream ended and its deliveries went back to the broker")
	default:
		return status.Error(codes.Unavailable, err.Error())
	}
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

func violation(field, reason string) *errdetails.BadRequest_FieldViolation {
	return &errdetails.BadRequest_FieldViolation{Field: field, Description: reason}
}

// violations is an InvalidArgument status naming every bad field.
func violations(bad []*errdetails.BadRequest_FieldViolation) error {
	st := status.New(codes.InvalidArgument, bad[0].GetField()+": "+bad[0].GetDescription())
	if withDetails, err := st.WithDetails(&errdetails.BadRequest{FieldViolations: bad}); err == nil {
		st = withDetails
	}
	return st.Err()
}

// invalidField is an InvalidArgument status naming one field.
func invalidField(field, reason string) error {
	return violations([]*errdetails.BadRequest_FieldViolation{violation(field, reason)})
}

package dapr

import (
	"encoding/json"
	"fmt"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// FromProto reads a gRPC app's answer to ListTopicSubscriptions as Dapr
// does (pkg/runtime/pubsub, parseRoutingRulesGRPC): routes.rules in
// order, then routes.default when set; paths as the app gave them; no
// routes at all, or none left, is one rule to the path "" (the app's
// topic handler). Metadata values are unquoted once when they arrived
// JSON-encoded twice (Unquote); bulk_subscribe.enabled sets Bulk. Entries
// without a pub/sub name or topic, or with a match that does not compile,
// are left out, each named by an error of skipped. The subscriptions are
// Programmatic; a nil resp is none.
func FromProto(resp *runtimev1.ListTopicSubscriptionsResponse) (subs []Subscription, skipped []error) {
	for i, ts := range resp.GetSubscriptions() {
		s, err := fromTopicSubscription(ts)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("dapr: subscriptions[%d]: %w", i, err))
			continue
		}
		subs = append(subs, s)
	}
	return subs, skipped
}

// fromTopicSubscription is one entry of ListTopicSubscriptions.
func fromTopicSubscription(ts *runtimev1.TopicSubscription) (Subscription, error) {
	var rules []ruleJSON
	for _, r := range ts.GetRoutes().GetRules() {
		rules = append(rules, ruleJSON{Match: r.GetMatch(), Path: r.GetPath()})
	}
	var md Metadata
	if len(ts.GetMetadata()) > 0 {
		md = make(Metadata, len(ts.GetMetadata()))
		for k, v := range ts.GetMetadata() {
			md[k] = Unquote(v)
		}
	}
	return newSubscription(spec{
		pubsub: ts.GetPubsubName(), topic: ts.GetTopic(), rules: rules, dflt: ts.GetRoutes().GetDefault(),
		deadLetter: ts.GetDeadLetterTopic(), metadata: md, bulk: ts.GetBulkSubscribe().GetEnabled(),
		kind: Programmatic, verbatim: true,
	})
}

// The members of Dapr's envelope that TopicEventRequest has fields for.
const (
	memberID              = "id"
	memberSource          = "source"
	memberType            = "type"
	memberSpecVersion     = "specversion"
	memberDataContentType = "datacontenttype"
	memberData            = "data"
	memberDataBase64      = "data_base64"
)

// TopicEventRequest is the envelope (Envelope or RawEnvelope) of an
// event with data as Dapr hands it to a gRPC app routed to path
// (postman/grpc): id, source, type, spec_version, data_content_type,
// topic and pubsub_name from its members; every member but the first
// five and the data (topic, pubsubname, traceid, traceparent, tracestate,
// time, the event's extensions) in extensions; data, the event's data as
// stored, as it is (Dapr decodes its envelope's data member, which gives
// the same bytes for JSON, text and binary data, but JSON-quoted ones
// for a +json type other than application/json). An envelope that is
// not a JSON object is an error.
func TopicEventRequest(envelope, data []byte, path string) (*runtimev1.TopicEventRequest, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(envelope, &members); err != nil {
		return nil, fmt.Errorf("dapr: envelope: %w", err)
	}
	text := func(name string) string {
		var s string
		_ = json.Unmarshal(members[name], &s)
		return s
	}
	req := &runtimev1.TopicEventRequest{
		Id: text(memberID), Source: text(memberSource), Type: text(memberType), SpecVersion: text(memberSpecVersion),
		DataContentType: text(memberDataContentType), Topic: text(memberTopic), PubsubName: text(memberPubSubName),
		Path: path, Data: data,
	}
	for _, name := range []string{memberID, memberSource, memberType, memberSpecVersion, memberDataContentType,
		memberData, memberDataBase64} {
		delete(members, name)
	}
	var err error
	if req.Extensions, err = extensions(members); err != nil {
		return nil, err
	}
	return req, nil
}

// extensions is members as a Struct.
func extensions(members map[string]json.RawMessage) (*structpb.Struct, error) {
	fields := make(map[string]any, len(members))
	for name, raw := range members {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("dapr: envelope %s: %w", name, err)
		}
		fields[name] = v
	}
	s, err := structpb.NewStruct(fields)
	if err != nil {
		return nil, fmt.Errorf("dapr: envelope extensions: %w", err)
	}
	return s, nil
}

// GRPCAnswer is the verdict of a gRPC app's answer to OnTopicEvent, resp
// or err (postman/grpc): SUCCESS (the zero status) is Success, RETRY is
// Retry, DROP is Drop, another status value is Retry; the error
// Unimplemented is Drop (Dapr drops the event; the sidecar dead-letters
// it), every other error Retry, whatever resp says. Safe for concurrent
// use.
func GRPCAnswer(resp *runtimev1.TopicEventResponse, err error) Verdict {
	if err != nil {
		if st, ok := status.FromError(err); ok && st.Code() == codes.Unimplemented {
			return Drop
		}
		return Retry
	}
	switch resp.GetStatus() {
	case runtimev1.TopicEventResponse_SUCCESS:
		return Success
	case runtimev1.TopicEventResponse_DROP:
		return Drop
	}
	return Retry
}

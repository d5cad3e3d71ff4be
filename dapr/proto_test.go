package dapr

import (
	"errors"
	"reflect"
	"testing"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// paths is the paths of rules, and whether each has a match.
func paths(rules []Rule) (out []string, matches []bool) {
	for _, r := range rules {
		out = append(out, r.Path)
		matches = append(matches, r.Match != nil)
	}
	return out, matches
}

// TestFromProto is Dapr's reading of ListTopicSubscriptions
// (parseRoutingRulesGRPC): no routes is one rule to "", rules then the
// default, paths as given; metadata unquoted; bulk flagged; bad entries
// skipped.
func TestFromProto(t *testing.T) {
	resp := &runtimev1.ListTopicSubscriptionsResponse{Subscriptions: []*runtimev1.TopicSubscription{
		{PubsubName: "pubsub", Topic: "orders", Metadata: map[string]string{"rawPayload": `"true"`}},
		{PubsubName: "pubsub", Topic: "ships", DeadLetterTopic: "dead", Routes: &runtimev1.TopicRoutes{
			Rules: []*runtimev1.TopicRule{{Match: `event.type == "fast"`, Path: "fast"}}, Default: "/slow"}},
		{PubsubName: "pubsub", Topic: "only-rules", Routes: &runtimev1.TopicRoutes{
			Rules: []*runtimev1.TopicRule{{Match: `event.type == "a"`, Path: "/a"}}}},
		{PubsubName: "pubsub", Topic: "empty-routes", Routes: &runtimev1.TopicRoutes{}},
		{PubsubName: "pubsub", Topic: "bulk", BulkSubscribe: &runtimev1.BulkSubscribeConfig{Enabled: true}},
		{PubsubName: "", Topic: "no-pubsub"},
		{PubsubName: "pubsub", Topic: "bad-match", Routes: &runtimev1.TopicRoutes{
			Rules: []*runtimev1.TopicRule{{Match: "event.type ==", Path: "/x"}}}},
	}}
	subs, skipped := FromProto(resp)
	if len(skipped) != 2 {
		t.Errorf("skipped %v, want no-pubsub and bad-match", skipped)
	}
	want := []struct {
		topic   string
		paths   []string
		matches []bool
	}{
		{"orders", []string{""}, []bool{false}},
		{"ships", []string{"fast", "/slow"}, []bool{true, false}},
		{"only-rules", []string{"/a"}, []bool{true}},
		{"empty-routes", []string{""}, []bool{false}},
		{"bulk", []string{""}, []bool{false}},
	}
	if len(subs) != len(want) {
		t.Fatalf("%d subscriptions %+v, want %d", len(subs), subs, len(want))
	}
	for i, w := range want {
		s := subs[i]
		p, m := paths(s.Rules)
		if s.Topic != w.topic || !reflect.DeepEqual(p, w.paths) || !reflect.DeepEqual(m, w.matches) || s.Kind != Programmatic {
			t.Errorf("subscription %d: %s %v %v %s, want %s %v %v PROGRAMMATIC", i, s.Topic, p, m, s.Kind, w.topic, w.paths, w.matches)
		}
	}
	if !subs[0].Raw() || subs[0].Metadata["rawPayload"] != "true" {
		t.Errorf("orders metadata %v: want rawPayload true, unquoted", subs[0].Metadata)
	}
	if subs[1].DeadLetterTopic != "dead" || subs[1].Bulk || !subs[4].Bulk {
		t.Errorf("ships dead letter %q bulk %v, bulk's bulk %v", subs[1].DeadLetterTopic, subs[1].Bulk, subs[4].Bulk)
	}
	if subs, skipped := FromProto(nil); subs != nil || skipped != nil {
		t.Errorf("FromProto(nil) = %v, %v, want none", subs, skipped)
	}
}

// TestGRPCAnswer is Dapr's table of a gRPC app's answers (design notes
// §3.7), Unimplemented dead-lettered rather than dropped.
func TestGRPCAnswer(t *testing.T) {
	resp := func(s runtimev1.TopicEventResponse_TopicEventResponseStatus) *runtimev1.TopicEventResponse {
		return &runtimev1.TopicEventResponse{Status: s}
	}
	tests := []struct {
		name string
		resp *runtimev1.TopicEventResponse
		err  error
		want Verdict
	}{
		{"SUCCESS", resp(runtimev1.TopicEventResponse_SUCCESS), nil, Success},
		{"empty answer", &runtimev1.TopicEventResponse{}, nil, Success},
		{"RETRY", resp(runtimev1.TopicEventResponse_RETRY), nil, Retry},
		{"DROP", resp(runtimev1.TopicEventResponse_DROP), nil, Drop},
		{"unknown status", resp(7), nil, Retry},
		{"Unimplemented", nil, status.Error(codes.Unimplemented, "no"), Drop},
		{"Unknown with DROP", resp(runtimev1.TopicEventResponse_DROP), status.Error(codes.Unknown, "handler failed"), Retry},
		{"Unavailable", nil, status.Error(codes.Unavailable, "connection refused"), Retry},
		{"not a status", nil, errors.New("boom"), Retry},
	}
	for _, tt := range tests {
		if got := GRPCAnswer(tt.resp, tt.err); got != tt.want {
			t.Errorf("%s: GRPCAnswer = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestTopicEventRequest: the envelope's attributes in their fields, the
// other members in extensions, the data as given.
func TestTopicEventRequest(t *testing.T) {
	env := `{"id":"x","source":"/s","type":"t.x","specversion":"1.0","datacontenttype":"application/vnd.api+json",` +
		`"data":"{\"a\":1}","topic":"orders","pubsubname":"pubsub","traceparent":"` + T + `","traceid":"` + T +
		`","tracestate":"","partitionkey":"k1","time":"2026-12-02T03:54:18Z"}`
	req, err := TopicEventRequest([]byte(env), []byte(`{"a":1}`), "/orders")
	if err != nil {
		t.Fatal(err)
	}
	if req.GetId() != "x" || req.GetSource() != "/s" || req.GetType() != "t.x" || req.GetSpecVersion() != "1.0" ||
		req.GetDataContentType() != "application/vnd.api+json" || string(req.GetData()) != `{"a":1}` ||
		req.GetTopic() != "orders" || req.GetPubsubName() != "pubsub" || req.GetPath() != "/orders" {
		t.Errorf("request %v", req)
	}
	got := req.GetExtensions().AsMap()
	want := map[string]any{"topic": "orders", "pubsubname": "pubsub", "traceparent": T, "traceid": T, "tracestate": "",
		"partitionkey": "k1", "time": "2026-12-02T03:54:18Z"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("extensions %v, want %v", got, want)
	}
	if _, err := TopicEventRequest([]byte("[1]"), nil, ""); err == nil {
		t.Error("an envelope that is not an object: no error")
	}
}

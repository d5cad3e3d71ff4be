package dapr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventsidecar/eventsidecar/problem"
)

// errorBody is Dapr's error JSON as a client reads it.
type errorBody struct {
	ErrorCode     string           `json:"errorCode"`
	Message       string           `json:"message"`
	Details       []map[string]any `json:"details"`
	FailedEntries []map[string]any `json:"failedEntries"`
}

func TestEveryCodeIsInTheTable(t *testing.T) {
	for c := CodeNotConfigured; c <= CodeUnimplemented; c++ {
		r, ok := table[c]
		if !ok || r.status == 0 || r.errorCode == "" || r.message == nil {
			t.Errorf("code %d: %+v, want a status, error code and message", c, r)
		}
	}
	if len(table) != int(CodeUnimplemented) {
		t.Errorf("table has %d codes, want %d", len(table), CodeUnimplemented)
	}
}

// The expected rows are written out here, not read from the table: they
// are Dapr 1.18's answers (pkg/api/errors/pubsub.go, pkg/messages) and the
// sidecar's own.
func TestErrorRows(t *testing.T) {
	const publishMsg = "error when publishing to topic orders in pubsub pubsub: boom"
	tests := []struct {
		code      Code
		status    int
		errorCode string
		grpc      codes.Code
		domain    string // "" = no details
		reason    string
		resource  bool
		message   string
	}{
		{CodeNotConfigured, 400, "ERR_PUBSUB_NOT_CONFIGURED", codes.FailedPrecondition, "dapr.io", "DAPR_PUBSUB_NOT_CONFIGURED", false, "pubsub pubsub is not configured"},
		{CodeNameEmpty, 404, "ERR_PUBSUB_EMPTY", codes.InvalidArgument, "dapr.io", "DAPR_PUBSUB_NAME_EMPTY", true, "pubsub name is empty"},
		{CodeNotFound, 404, "ERR_PUBSUB_NOT_FOUND", codes.InvalidArgument, "dapr.io", "DAPR_PUBSUB_NOT_FOUND", false, "pubsub pubsub is not found"},
		{CodeTopicEmpty, 404, "ERR_TOPIC_NAME_EMPTY", codes.InvalidArgument, "dapr.io", "DAPR_PUBSUB_TOPIC_NAME_EMPTY", true, "topic is empty in pubsub pubsub"},
		{CodeRequestMetadata, 400, "ERR_PUBSUB_REQUEST_METADATA", codes.InvalidArgument, "dapr.io", "DAPR_PUBSUB_METADATA_DESERIALIZATION", true, "failed deserializing metadata. Error: boom"},
		{CodeCloudEventCreation, 500, "ERR_PUBSUB_CLOUD_EVENTS_SER", codes.InvalidArgument, "dapr.io", "DAPR_PUBSUB_CLOUD_EVENT_CREATION", true, "cannot create cloudevent"},
		{CodeInvalidEvent, 400, "ERR_PUBSUB_CLOUD_EVENTS_SER", codes.InvalidArgument, "eventsidecar", "INVALID", true, "cannot create cloudevent: boom"},
		{CodeMarshalEnvelope, 400, "ERR_PUBSUB_EVENTS_SER", codes.InvalidArgument, "dapr.io", "DAPR_PUBSUB_MARSHAL_ENVELOPE", true, "error when marshalling cloud event envelope for topic orders pubsub pubsub: boom"},
		{CodeMarshalEvents, 400, "ERR_PUBSUB_EVENTS_SER", codes.InvalidArgument, "dapr.io", "DAPR_PUBSUB_MARSHAL_EVENTS", true, "error marshaling events to bytes for topic orders pubsub pubsub. error: boom"},
		{CodeUnmarshalEvents, 400, "ERR_PUBSUB_EVENTS_SER", codes.InvalidArgument, "dapr.io", "DAPR_PUBSUB_UNMARSHAL_EVENTS", true, "error when unmarshaling the request for topic orders pubsub pubsub: boom"},
		{CodeMalformedTopic, 400, "ERR_MALFORMED_REQUEST", codes.InvalidArgument, "eventsidecar", "INVALID_TOPIC", true, `invalid topic "orders" in pubsub pubsub: boom`},
		{CodeForbidden, 403, "ERR_PUBSUB_FORBIDDEN", codes.PermissionDenied, "dapr.io", "DAPR_PUBSUB_FORBIDDEN", true, "topic orders is not allowed for app id shop"},
		{CodePublish, 500, "ERR_PUBSUB_PUBLISH_MESSAGE", codes.Internal, "dapr.io", "DAPR_PUBSUB_PUBLISH_MESSAGE", true, publishMsg},
		{CodeTooLarge, 413, "ERR_PUBSUB_PUBLISH_MESSAGE", codes.ResourceExhausted, "eventsidecar", "TOO_LARGE", true, publishMsg},
		{CodeTimeout, 408, "ERR_PUBSUB_PUBLISH_MESSAGE", codes.DeadlineExceeded, "eventsidecar", "TIMEOUT", true, publishMsg},
		{CodeOverloaded, 429, "ERR_PUBSUB_PUBLISH_MESSAGE", codes.ResourceExhausted, "eventsidecar", "OVERLOADED", true, publishMsg},
		{CodeUnavailable, 503, "ERR_PUBSUB_PUBLISH_MESSAGE", codes.Unavailable, "eventsidecar", "UNAVAILABLE", true, publishMsg},
		{CodeConflict, 422, "ERR_PUBSUB_PUBLISH_MESSAGE", codes.FailedPrecondition, "eventsidecar", "IDEMPOTENCY_CONFLICT", true, publishMsg},
		{CodeHealthNotReady, 500, "ERR_HEALTH_NOT_READY", codes.Internal, "", "", false, "dapr is not ready: [boom]"},
		{CodeHealthAppIDMismatch, 500, "ERR_HEALTH_APPID_NOT_MATCH", codes.Internal, "", "", false, "dapr app-id does not match"},
		{CodeOutboundNotReady, 500, "ERR_OUTBOUND_HEALTH_NOT_READY", codes.Internal, "", "", false, "dapr outbound is not ready"},
		{CodeUnimplemented, 501, "ERR_API_UNIMPLEMENTED", codes.Unimplemented, "", "", false, "this API is currently not implemented"},
	}
	if len(tests) != len(table) {
		t.Errorf("%d rows tested, the table has %d", len(tests), len(table))
	}
	for _, tt := range tests {
		t.Run(tt.errorCode+"/"+tt.reason, func(t *testing.T) {
			e := &Error{Code: tt.code, PubSub: "pubsub", Topic: "orders", AppID: "shop", Cause: "boom"}
			body := writeError(t, e, tt.status)
			if body.ErrorCode != tt.errorCode || body.Message != tt.message {
				t.Errorf("body = %q %q, want %q %q", body.ErrorCode, body.Message, tt.errorCode, tt.message)
			}
			wantDetails(t, body.Details, tt.domain, tt.reason, tt.resource)
			st := status.Convert(e)
			if st.Code() != tt.grpc || st.Message() != tt.message {
				t.Errorf("gRPC status = %s %q, want %s %q", st.Code(), st.Message(), tt.grpc, tt.message)
			}
			wantGRPCInfo(t, st, tt.domain, tt.reason)
		})
	}
}

// writeError writes e and checks its status and Content-Type.
func writeError(t *testing.T, e *Error, wantStatus int) errorBody {
	t.Helper()
	w := httptest.NewRecorder()
	WriteJSON(w, e)
	if w.Code != wantStatus || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("answer %d %q, want %d application/json", w.Code, w.Header().Get("Content-Type"), wantStatus)
	}
	var body errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %s: %v", w.Body, err)
	}
	return body
}

// wantDetails checks the details of an HTTP answer: a ResourceInfo when
// resource, then the ErrorInfo of domain and reason with the topic and
// cause; none when domain is "".
func wantDetails(t *testing.T, details []map[string]any, domain, reason string, resource bool) {
	t.Helper()
	if domain == "" {
		if len(details) != 0 {
			t.Errorf("details = %v, want none", details)
		}
		return
	}
	if resource {
		if len(details) != 2 {
			t.Fatalf("details = %v, want a ResourceInfo and an ErrorInfo", details)
		}
		res := details[0]
		if res["@type"] != "type.googleapis.com/google.rpc.ResourceInfo" || res["resource_type"] != "pubsub" || res["resource_name"] != "pubsub" {
			t.Errorf("ResourceInfo = %v", res)
		}
		details = details[1:]
	}
	if len(details) != 1 {
		t.Fatalf("details = %v, want one ErrorInfo", details)
	}
	info := details[0]
	md, _ := info["metadata"].(map[string]any)
	if info["@type"] != "type.googleapis.com/google.rpc.ErrorInfo" || info["domain"] != domain || info["reason"] != reason ||
		md["topic"] != "orders" || md["error"] != "boom" {
		t.Errorf("ErrorInfo = %v, want domain %s, reason %s, metadata topic and error", info, domain, reason)
	}
}

// wantGRPCInfo checks the ErrorInfo of a status; none when domain is "".
func wantGRPCInfo(t *testing.T, st *status.Status, domain, reason string) {
	t.Helper()
	var infos []*errdetails.ErrorInfo
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			infos = append(infos, info)
		}
	}
	switch {
	case domain == "" && len(st.Details()) != 0:
		t.Errorf("gRPC details = %v, want none", st.Details())
	case domain != "" && (len(infos) != 1 || infos[0].GetDomain() != domain || infos[0].GetReason() != reason):
		t.Errorf("gRPC ErrorInfo = %v, want %s %s", infos, domain, reason)
	}
}

func TestRetryAfter(t *testing.T) {
	e := &Error{Code: CodeUnavailable, PubSub: "pubsub", Topic: "orders", Cause: "down", RetryAfter: 1500 * time.Millisecond}
	w := httptest.NewRecorder()
	WriteJSON(w, e)
	if got := w.Header().Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After = %q, want 2", got)
	}
	var delay time.Duration
	for _, d := range status.Convert(e).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay != 1500*time.Millisecond {
		t.Errorf("RetryInfo delay = %s, want 1.5s", delay)
	}
	w = httptest.NewRecorder()
	WriteJSON(w, &Error{Code: CodePublish})
	if got := w.Header().Get("Retry-After"); got != "" {
		t.Errorf("Retry-After = %q without a RetryAfter", got)
	}
}

func TestFailedEntriesCarryBothSpellings(t *testing.T) {
	e := &Error{Code: CodePublish, PubSub: "pubsub", Topic: "orders", Cause: "boom",
		FailedEntries: []FailedEntry{{EntryID: "e2", Error: "not stored: <down>"}}}
	body := writeError(t, e, http.StatusInternalServerError)
	want := map[string]any{"entryId": "e2", "entryID": "e2", "error": "not stored: <down>"}
	if len(body.FailedEntries) != 1 || fmt.Sprint(body.FailedEntries[0]) != fmt.Sprint(want) {
		t.Errorf("failedEntries = %v, want [%v]", body.FailedEntries, want)
	}
}

func TestFromProblem(t *testing.T) {
	tests := []struct {
		err        error
		code       Code
		retryAfter time.Duration
	}{
		{problem.New(problem.CodeInvalid, "id: is required"), CodeInvalidEvent, 0},
		{problem.New(problem.CodeTooLarge, "big"), CodeTooLarge, 0},
		{problem.New(problem.CodeForbidden, "not in scopes"), CodeForbidden, 0},
		{problem.New(problem.CodeConflict, "reused"), CodeConflict, 0},
		{&problem.Error{Code: problem.CodeOverloaded, Detail: "busy", RetryAfter: time.Second}, CodeOverloaded, time.Second},
		{&problem.Error{Code: problem.CodeUnavailable, Detail: "down", RetryAfter: time.Second}, CodeUnavailable, time.Second},
		{problem.New(problem.CodeTimeout, "slow"), CodeTimeout, 0},
		{problem.New(problem.CodeInternal, "internal error"), CodePublish, 0},
		{fmt.Errorf("wrapped: %w", problem.New(problem.CodeForbidden, "x")), CodeForbidden, 0},
		{errors.New("secret"), CodePublish, 0},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			got := FromProblem(tt.err, "pubsub", "orders", "shop")
			want := problem.From(tt.err).Detail
			if got.Code != tt.code || got.RetryAfter != tt.retryAfter || got.Cause != want ||
				got.PubSub != "pubsub" || got.Topic != "orders" || got.AppID != "shop" {
				t.Errorf("FromProblem = %+v, want code %d, retry %s, cause %q", got, tt.code, tt.retryAfter, want)
			}
			if strings.Contains(got.Message(), "secret") {
				t.Errorf("message %q shows a non-API error", got.Message())
			}
		})
	}
}

package dapr

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/eventsidecar/eventsidecar/problem"
)

// Code is one row of the error table: a Dapr error code with its HTTP
// status, gRPC status code, ErrorInfo reason and message.
type Code int

// The error codes: Dapr 1.18's for the cases Dapr has, and the sidecar's
// own (stricter checks, limits, an unavailable broker) under the nearest
// Dapr error code with an ErrorInfo of domain "eventsidecar".
const (
	CodeNotConfigured Code = iota + 1
	CodeNameEmpty
	CodeNotFound
	CodeTopicEmpty
	CodeRequestMetadata
	CodeCloudEventCreation
	CodeInvalidEvent
	CodeMarshalEnvelope
	CodeMarshalEvents
	CodeUnmarshalEvents
	CodeMalformedTopic
	CodeForbidden
	CodePublish
	CodeTooLarge
	CodeTimeout
	CodeOverloaded
	CodeUnavailable
	CodeConflict
	CodeHealthNotReady
	CodeHealthAppIDMismatch
	CodeOutboundNotReady
	CodeUnimplemented
)

// The ErrorInfo domains: Dapr's and the sidecar's.
const (
	domainDapr = "dapr.io"
	domainOurs = "eventsidecar"
)

// row is one code's answer. An empty reason means no details at all (the
// health and unimplemented answers); resource adds a ResourceInfo naming
// the pub/sub.
type row struct {
	status    int
	grpc      codes.Code
	errorCode string
	domain    string
	reason    string
	resource  bool
	message   func(e *Error) string
}

// publishMessage is Dapr's message for a publish that failed, which the
// sidecar's own publish failures share.
func publishMessage(e *Error) string {
	return fmt.Sprintf("error when publishing to topic %s in pubsub %s: %s", e.Topic, e.PubSub, e.Cause)
}

// table is the one table from Code to its answer; Dapr's rows follow
// pkg/api/errors/pubsub.go and pkg/messages of Dapr 1.18.
var table = map[Code]row{
	CodeNotConfigured: {http.StatusBadRequest, codes.FailedPrecondition, "ERR_PUBSUB_NOT_CONFIGURED", domainDapr, "DAPR_PUBSUB_NOT_CONFIGURED", false,
		func(e *Error) string { return fmt.Sprintf("pubsub %s is not configured", e.PubSub) }},
	CodeNameEmpty: {http.StatusNotFound, codes.InvalidArgument, "ERR_PUBSUB_EMPTY", domainDapr, "DAPR_PUBSUB_NAME_EMPTY", true,
		func(*Error) string { return "pubsub name is empty" }},
	CodeNotFound: {http.StatusNotFound, codes.InvalidArgument, "ERR_PUBSUB_NOT_FOUND", domainDapr, "DAPR_PUBSUB_NOT_FOUND", false,
		func(e *Error) string { return fmt.Sprintf("pubsub %s is not found", e.PubSub) }},
	CodeTopicEmpty: {http.StatusNotFound, codes.InvalidArgument, "ERR_TOPIC_NAME_EMPTY", domainDapr, "DAPR_PUBSUB_TOPIC_NAME_EMPTY", true,
		func(e *Error) string { return "topic is empty in pubsub " + e.PubSub }},
	CodeRequestMetadata: {http.StatusBadRequest, codes.InvalidArgument, "ERR_PUBSUB_REQUEST_METADATA", domainDapr, "DAPR_PUBSUB_METADATA_DESERIALIZATION", true,
		func(e *Error) string { return "failed deserializing metadata. Error: " + e.Cause }},
	CodeCloudEventCreation: {http.StatusInternalServerError, codes.InvalidArgument, "ERR_PUBSUB_CLOUD_EVENTS_SER", domainDapr, "DAPR_PUBSUB_CLOUD_EVENT_CREATION", true,
		func(*Error) string { return "cannot create cloudevent" }},
	CodeInvalidEvent: {http.StatusBadRequest, codes.InvalidArgument, "ERR_PUBSUB_CLOUD_EVENTS_SER", domainOurs, "INVALID", true,
		func(e *Error) string { return "cannot create cloudevent: " + e.Cause }},
	CodeMarshalEnvelope: {http.StatusBadRequest, codes.InvalidArgument, "ERR_PUBSUB_EVENTS_SER", domainDapr, "DAPR_PUBSUB_MARSHAL_ENVELOPE", true,
		func(e *Error) string {
			return fmt.Sprintf("error when marshalling cloud event envelope for topic %s pubsub %s: %s", e.Topic, e.PubSub, e.Cause)
		}},
	CodeMarshalEvents: {http.StatusBadRequest, codes.InvalidArgument, "ERR_PUBSUB_EVENTS_SER", domainDapr, "DAPR_PUBSUB_MARSHAL_EVENTS", true,
		func(e *Error) string {
			return fmt.Sprintf("error marshaling events to bytes for topic %s pubsub %s. error: %s", e.Topic, e.PubSub, e.Cause)
		}},
	CodeUnmarshalEvents: {http.StatusBadRequest, codes.InvalidArgument, "ERR_PUBSUB_EVENTS_SER", domainDapr, "DAPR_PUBSUB_UNMARSHAL_EVENTS", true,
		func(e *Error) string {
			return fmt.Sprintf("error when unmarshaling the request for topic %s pubsub %s: %s", e.Topic, e.PubSub, e.Cause)
		}},
	CodeMalformedTopic: {http.StatusBadRequest, codes.InvalidArgument, "ERR_MALFORMED_REQUEST", domainOurs, "INVALID_TOPIC", true,
		func(e *Error) string {
			return fmt.Sprintf("invalid topic %q in pubsub %s: %s", e.Topic, e.PubSub, e.Cause)
		}},
	CodeForbidden: {http.StatusForbidden, codes.PermissionDenied, "ERR_PUBSUB_FORBIDDEN", domainDapr, "DAPR_PUBSUB_FORBIDDEN", true,
		func(e *Error) string { return fmt.Sprintf("topic %s is not allowed for app id %s", e.Topic, e.AppID) }},
	CodePublish: {http.StatusInternalServerError, codes.Internal, "ERR_PUBSUB_PUBLISH_MESSAGE", domainDapr, "DAPR_PUBSUB_PUBLISH_MESSAGE", true,
		publishMessage},
	CodeTooLarge: {http.StatusRequestEntityTooLarge, codes.ResourceExhausted, "ERR_PUBSUB_PUBLISH_MESSAGE", domainOurs, "TOO_LARGE", true,
		publishMessage},
	CodeTimeout: {http.StatusRequestTimeout, codes.DeadlineExceeded, "ERR_PUBSUB_PUBLISH_MESSAGE", domainOurs, "TIMEOUT", true,
		publishMessage},
	CodeOverloaded: {http.StatusTooManyRequests, codes.ResourceExhausted, "ERR_PUBSUB_PUBLISH_MESSAGE", domainOurs, "OVERLOADED", true,
		publishMessage},
	CodeUnavailable: {http.StatusServiceUnavailable, codes.Unavailable, "ERR_PUBSUB_PUBLISH_MESSAGE", domainOurs, "UNAVAILABLE", true,
		publishMessage},
	CodeConflict: {http.StatusUnprocessableEntity, codes.FailedPrecondition, "ERR_PUBSUB_PUBLISH_MESSAGE", domainOurs, "IDEMPOTENCY_CONFLICT", true,
		publishMessage},
	CodeHealthNotReady: {http.StatusInternalServerError, codes.Internal, "ERR_HEALTH_NOT_READY", "", "", false,
		func(e *Error) string { return fmt.Sprintf("dapr is not ready: [%s]", e.Cause) }},
	CodeHealthAppIDMismatch: {http.StatusInternalServerError, codes.Internal, "ERR_HEALTH_APPID_NOT_MATCH", "", "", false,
		func(*Error) string { return "dapr app-id does not match" }},
	CodeOutboundNotReady: {http.StatusInternalServerError, codes.Internal, "ERR_OUTBOUND_HEALTH_NOT_READY", "", "", false,
		func(*Error) string { return "dapr outbound is not ready" }},
	CodeUnimplemented: {http.StatusNotImplemented, codes.Unimplemented, "ERR_API_UNIMPLEMENTED", "", "", false,
		func(*Error) string { return "this API is currently not implemented" }},
}

// HTTPStatus is the HTTP status the code answers with.
func (c Code) HTTPStatus() int { return table[c].status }

// GRPC is the gRPC status code the code answers with.
func (c Code) GRPC() codes.Code { return table[c].grpc }

// ErrorCode is the code's Dapr error code, the errorCode of its JSON.
func (c Code) ErrorCode() string { return table[c].errorCode }

// Reason is the reason of the code's ErrorInfo detail ("" when it has no
// details).
func (c Code) Reason() string { return table[c].reason }

// Error is an answer of the Dapr API that is not a success: its code and
// what its message and details name. Once returned it is owned by the
// caller. It implements the interface grpc-go's status.FromError looks
// for, so a gRPC method may return it as it is.
type Error struct {
	Code Code
	// PubSub is the pub/sub component's name.
	PubSub string
	// Topic is the topic, when the request named one.
	Topic string
	// AppID is the app's id, which a forbidden topic's message names.
	AppID string
	// Cause says what went wrong, in the message where Dapr says it and
	// as the ErrorInfo's "error" metadata.
	Cause string
	// RetryAfter, when positive, is sent as Retry-After (HTTP) and
	// RetryInfo (gRPC).
	RetryAfter time.Duration
	// FailedEntries are the entries of a bulk publish that were not
	// stored, sent as "failedEntries" (HTTP).
	FailedEntries []FailedEntry
}

// FailedEntry is an entry of a bulk publish that was not stored. Its JSON
// carries the entry id as both "entryId" (Dapr's) and "entryID" (what the
// JavaScript SDK reads).
type FailedEntry struct {
	// EntryID is the entry's entryId.
	EntryID string
	// Error says why it was not stored.
	Error string
}

// MarshalJSON writes {"entryId","entryID","error"}.
func (f FailedEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		EntryID    string `json:"entryId"`
		EntryIDAlt string `json:"entryID"`
		Error      string `json:"error"`
	}{f.EntryID, f.EntryID, f.Error})
}

// Error implements error.
func (e *Error) Error() string { return e.Code.ErrorCode() + ": " + e.Message() }

// Message is the error's message, as Dapr words it.
func (e *Error) Message() string { return table[e.Code].message(e) }

// errorJSON is Dapr's error body.
type errorJSON struct {
	ErrorCode     string        `json:"errorCode"`
	Message       string        `json:"message"`
	Details       []any         `json:"details,omitempty"`
	FailedEntries []FailedEntry `json:"failedEntries,omitempty"`
}

// resourceJSON and infoJSON are the details as Dapr writes them.
type resourceJSON struct {
	Type         string `json:"@type"`
	ResourceType string `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	Owner        string `json:"owner"`
	Description  string `json:"description"`
}

type infoJSON struct {
	Type     string            `json:"@type"`
	Reason   string            `json:"reason"`
	Domain   string            `json:"domain"`
	Metadata map[string]string `json:"metadata"`
}

// typePrefix starts the @type of a detail.
const typePrefix = "type.googleapis.com/"

// WriteJSON writes e as Dapr does: its status, Content-Type
// application/json, Retry-After when it has one, and the body
// {"errorCode","message","details"} with "failedEntries" for a bulk
// publish. It is the only place Dapr error JSON is written.
func WriteJSON(w http.ResponseWriter, e *Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	body := errorJSON{ErrorCode: e.Code.ErrorCode(), Message: e.Message(), FailedEntries: e.FailedEntries}
	if res := e.resourceInfo(); res != nil {
		body.Details = append(body.Details, resourceJSON{typePrefix + string(res.ProtoReflect().Descriptor().FullName()),
			res.ResourceType, res.ResourceName, res.Owner, res.Description})
	}
	if info := e.errorInfo(); info != nil {
		body.Details = append(body.Details, infoJSON{typePrefix + string(info.ProtoReflect().Descriptor().FullName()),
			info.Reason, info.Domain, info.Metadata})
	}
	problem.WriteJSON(w, e.Code.HTTPStatus(), body)
}

// GRPCStatus is e as a gRPC status: its code and message with its
// ResourceInfo, ErrorInfo and RetryInfo details.
func (e *Error) GRPCStatus() *status.Status {
	st := status.New(e.Code.GRPC(), e.Message())
	var details []protoadapt.MessageV1
	if res := e.resourceInfo(); res != nil {
		details = append(details, res)
	}
	if info := e.errorInfo(); info != nil {
		details = append(details, info)
	}
	if e.RetryAfter > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
	}
	if len(details) == 0 {
		return st
	}
	if withDetails, err := st.WithDetails(details...); err == nil {
		return withDetails
	}
	return st
}

// resourceInfo names the pub/sub, for the codes that do; else nil.
func (e *Error) resourceInfo() *errdetails.ResourceInfo {
	if !table[e.Code].resource {
		return nil
	}
	return &errdetails.ResourceInfo{ResourceType: "pubsub", ResourceName: e.PubSub, Description: e.Message()}
}

// errorInfo is the code's reason with the topic and cause as metadata;
// nil for the codes without details.
func (e *Error) errorInfo() *errdetails.ErrorInfo {
	r := table[e.Code]
	if r.reason == "" {
		return nil
	}
	md := map[string]string{}
	if e.Topic != "" {
		md["topic"] = e.Topic
	}
	if e.Cause != "" {
		md["error"] = e.Cause
	}
	return &errdetails.ErrorInfo{Reason: r.reason, Domain: r.domain, Metadata: md}
}

// fromProblemCode maps the sidecar's API error codes to Dapr's.
var fromProblemCode = map[problem.Code]Code{
	problem.CodeInvalid:     CodeInvalidEvent,
	problem.CodeTooLarge:    CodeTooLarge,
	problem.CodeForbidden:   CodeForbidden,
	problem.CodeConflict:    CodeConflict,
	problem.CodeOverloaded:  CodeOverloaded,
	problem.CodeUnavailable: CodeUnavailable,
	problem.CodeTimeout:     CodeTimeout,
}

// FromProblem is the Dapr answer of an error of the sidecar's publish
// path (a *problem.Error, see problem.From) for a publish of the app
// appID to topic in pubsub: an invalid event is ERR_PUBSUB_CLOUD_EVENTS_SER
// (400), an event or batch too large ERR_PUBSUB_PUBLISH_MESSAGE with 413,
// over capacity with 429 and an unavailable broker with 503 (both with
// RetryAfter), an idempotency key reused with another event with 422, a
// topic outside the scopes ERR_PUBSUB_FORBIDDEN (403); anything else is
// ERR_PUBSUB_PUBLISH_MESSAGE (500). The problem's detail is the Cause.
func FromProblem(err error, pubsub, topic, appID string) *Error {
	p := problem.From(err)
	code, ok := fromProblemCode[p.Code]
	if !ok {
		code = CodePublish
	}
	return &Error{Code: code, PubSub: pubsub, Topic: topic, AppID: appID, Cause: p.Detail, RetryAfter: p.RetryAfter}
}

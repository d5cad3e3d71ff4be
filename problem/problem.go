package problem

import (
	"errors"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
)

// Code classifies an API error; each maps to one HTTP status and one gRPC
// status code.
type Code int

// The API error codes.
const (
	CodeInternal Code = iota
	CodeInvalid
	CodeUnauthorized
	CodeForbidden
	CodeNotFound
	CodeMethodNotAllowed
	CodeTimeout
	CodeTooLarge
	CodeHeadersTooLarge
	CodeUnsupportedMediaType
	CodeConflict
	CodeOverloaded
	CodeUnavailable
	// CodeSubscriptionConflict: a stream's ad-hoc subscription clashes
	// with a subscription of the same name.
	CodeSubscriptionConflict
)

// codeInfo is the one table from Code to HTTP status, gRPC status code,
// problem title and slug.
var codeInfo = map[Code]struct {
	status int
	grpc   codes.Code
	slug   string
	title  string
}{
	CodeInternal:             {http.StatusInternalServerError, codes.Internal, "internal", "Internal error"},
	CodeInvalid:              {http.StatusBadRequest, codes.InvalidArgument, "invalid", "Invalid event or topic"},
	CodeUnauthorized:         {http.StatusUnauthorized, codes.Unauthenticated, "unauthorized", "Missing or bad API token"},
	CodeForbidden:            {http.StatusForbidden, codes.PermissionDenied, "forbidden", "Topic not allowed"},
	CodeNotFound:             {http.StatusNotFound, codes.NotFound, "not_found", "Not found"},
	CodeMethodNotAllowed:     {http.StatusMethodNotAllowed, codes.Unimplemented, "method_not_allowed", "Method not allowed"},
	CodeTimeout:              {http.StatusRequestTimeout, codes.DeadlineExceeded, "timeout", "Request not received in time"},
	CodeTooLarge:             {http.StatusRequestEntityTooLarge, codes.ResourceExhausted, "too_large", "Event or batch too large"},
	CodeHeadersTooLarge:      {http.StatusRequestHeaderFieldsTooLarge, codes.ResourceExhausted, "headers_too_large", "Request headers too large"},
	CodeUnsupportedMediaType: {http.StatusUnsupportedMediaType, codes.InvalidArgument, "unsupported_media_type", "Unsupported media type"},
	CodeConflict:             {http.StatusUnprocessableEntity, codes.FailedPrecondition, "idempotency_conflict", "Idempotency key reused with a different event"},
	CodeOverloaded:           {http.StatusTooManyRequests, codes.ResourceExhausted, "overloaded", "Over capacity"},
	CodeUnavailable:          {http.StatusServiceUnavailable, codes.Unavailable, "unavailable", "Broker unavailable"},
	CodeSubscriptionConflict: {http.StatusConflict, codes.FailedPrecondition, "subscription_conflict", "Subscription conflict"},
}

// GRPC is the gRPC status code the code answers with.
func (c Code) GRPC() codes.Code { return codeInfo[c].grpc }

// Slug is the code's short name, used in problem type URIs and metric labels.
func (c Code) Slug() string { return codeInfo[c].slug }

// HTTPStatus is the HTTP status the code answers with.
func (c Code) HTTPStatus() int { return codeInfo[c].status }

// DefaultRetryAfter is what the API's 429 and 503 answers ask a client to
// wait.
const DefaultRetryAfter = time.Second

// Error is an API error: a code, a detail naming the field and the reason,
// and, for batches, per-entry errors and the results of what was stored.
// Once returned it is owned by the caller.
type Error struct {
	Code   Code
	Detail string
	// Items are per-entry problems of a batch.
	Items []ItemError
	// Fields, when not empty, are the fields a CodeInvalid error names in
	// its gRPC BadRequest details (see GRPCStatus); HTTP answers leave
	// them out.
	Fields []Field
	// Results, when not nil, is what a batch stored before the failure
	// (a non-empty slice of the publish results), sent as "results".
	Results any
	// RetryAfter, when positive, is sent as Retry-After (HTTP) and
	// RetryInfo (gRPC).
	RetryAfter time.Duration
}

// ItemError is the problem with one entry of a batch.
type ItemError struct {
	Index  int    `json:"index"`
	Detail string `json:"detail"`
}

// Field is one bad field of a request and why it is bad.
type Field struct {
	Name   string
	Reason string
}

// Error implements error.
func (e *Error) Error() string { return e.Code.Slug() + ": " + e.Detail }

// New returns an *Error of code with detail.
func New(code Code, detail string) *Error { return &Error{Code: code, Detail: detail} }

// Invalid returns a CodeInvalid *Error naming every one of fields (at
// least one); its detail is the first field's "name: reason".
func Invalid(fields ...Field) *Error {
	return &Error{Code: CodeInvalid, Detail: fields[0].Name + ": " + fields[0].Reason, Fields: fields}
}

// From returns err as an *Error: err itself (or the *Error it wraps), else
// an internal error that says nothing of err.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return New(CodeInternal, "internal error")
}

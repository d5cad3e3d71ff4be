package ingress

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
)

// Code classifies an API error; each maps to one HTTP status (and, for the
// gRPC API, one status code).
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
}

// GRPC is the gRPC status code the code answers with.
func (c Code) GRPC() codes.Code { return codeInfo[c].grpc }

// Slug is the code's short name, used in problem type URIs and metric labels.
func (c Code) Slug() string { return codeInfo[c].slug }

// HTTPStatus is the HTTP status the code answers with.
func (c Code) HTTPStatus() int { return codeInfo[c].status }

// Error is an API error: a code, a detail naming the field and the reason,
// and, for batches, per-entry errors and the results of what was stored.
type Error struct {
	Code   Code
	Detail string
	// Items are per-entry problems of a batch.
	Items []ItemError
	// Results, when not nil, report what was stored before the failure.
	Results []Result
	// RetryAfter, when positive, is sent as Retry-After.
	RetryAfter time.Duration
	// counted is set once the error is in the rejection metrics.
	counted bool
}

// ItemError is the problem with one entry of a batch.
type ItemError struct {
	Index  int    `json:"index"`
	Detail string `json:"detail"`
}

// Error implements error.
func (e *Error) Error() string { return e.Code.Slug() + ": " + e.Detail }

func errorf(code Code, detail string) *Error { return &Error{Code: code, Detail: detail} }

// problem is the RFC 9457 body.
type problem struct {
	Type    string      `json:"type"`
	Title   string      `json:"title"`
	Status  int         `json:"status"`
	Detail  string      `json:"detail"`
	Errors  []ItemError `json:"errors,omitempty"`
	Results []Result    `json:"results,omitempty"`
}

// writeProblem writes err as application/problem+json; it is the only place
// problem JSON is written. An error that is not an *Error is internal.
func writeProblem(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = errorf(CodeInternal, "internal error")
	}
	info := codeInfo[e.Code]
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if e.Code == CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="eventsidecar"`)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(info.status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(problem{
		Type:    "urn:eventsidecar:problem:" + info.slug,
		Title:   info.title,
		Status:  info.status,
		Detail:  e.Detail,
		Errors:  e.Items,
		Results: e.Results,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

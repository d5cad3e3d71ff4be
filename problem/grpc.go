package problem

import (
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
)

// GRPCStatus turns err into a gRPC status error with details: a BadRequest
// naming the fields of a CodeInvalid or CodeTooLarge error, a RetryInfo
// when it has a RetryAfter. An error that is not an *Error is Internal:
// its text is not sent.
func GRPCStatus(err error) error {
	e := From(err)
	st := status.New(e.Code.GRPC(), e.Detail)
	var details []protoadapt.MessageV1
	if br := badRequest(e); br != nil {
		details = append(details, br)
	}
	if e.RetryAfter > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
	}
	if len(details) == 0 {
		return st.Err()
	}
	if withDetails, derr := st.WithDetails(details...); derr == nil {
		st = withDetails
	}
	return st.Err()
}

// badRequest names the fields a CodeInvalid or CodeTooLarge error is
// about: its Fields, else a batch's entries as "events[i]", else the field
// its detail starts with ("source: required"); nil when it names none.
func badRequest(e *Error) *errdetails.BadRequest {
	if e.Code != CodeInvalid && e.Code != CodeTooLarge {
		return nil
	}
	br := &errdetails.BadRequest{}
	for _, f := range e.Fields {
		br.FieldViolations = append(br.FieldViolations, violation(f.Name, f.Reason))
	}
	for _, it := range e.Items {
		br.FieldViolations = append(br.FieldViolations, violation(fmt.Sprintf("events[%d]", it.Index), it.Detail))
	}
	if len(br.FieldViolations) > 0 {
		return br
	}
	field, reason, ok := strings.Cut(e.Detail, ": ")
	if !ok {
		return nil
	}
	field, _, _ = strings.Cut(field, " ")
	br.FieldViolations = append(br.FieldViolations, violation(field, reason))
	return br
}

func violation(field, reason string) *errdetails.BadRequest_FieldViolation {
	return &errdetails.BadRequest_FieldViolation{Field: field, Description: reason}
}

// Package problem is the API's error model: the error codes, the one table
// from a code to its HTTP status, gRPC status code, problem type slug and
// title, the RFC 9457 problem JSON written from an *Error, and the gRPC
// status with details (BadRequest, RetryInfo) built from the same *Error.
// Every HTTP handler and gRPC method of the sidecar answers its errors
// through it, so one failure answers alike in both APIs.
package problem

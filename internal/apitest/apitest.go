// Package apitest holds what the API tests of several packages share:
// requests with headers to a test server, JSON answers, a gRPC API served
// on loopback, and the checks of HTTP statuses and gRPC status codes with
// their field violations. It is imported by tests only.
package apitest

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Do sends a request with body and the given headers ("Name: value"
// pairs) to url with c, failing t when it cannot be sent; the answer's
// body is closed when the test ends.
func Do(t testing.TB, c *http.Client, method, url, body string, hdrs ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range hdrs {
		k, v, _ := strings.Cut(kv, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// DecodeJSON decodes the answer's body as a T, failing t when it is not
// one.
func DecodeJSON[T any](t testing.TB, resp *http.Response) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("decode %s answer: %v", resp.Status, err)
	}
	return v
}

// WantStatus fails t, showing the body, unless the answer has status want.
func WantStatus(t testing.TB, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, want, body)
	}
}

// WantCode fails t unless err is a gRPC status with code; it returns the
// status.
func WantCode(t testing.TB, err error, code codes.Code) *status.Status {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("error = %v, want code %s", err, code)
	}
	return st
}

// WantField reports an error unless st's BadRequest details name field
// with a description.
func WantField(t testing.TB, st *status.Status, field string) {
	t.Helper()
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field && v.GetDescription() != "" {
					return
				}
			}
		}
	}
	t.Errorf("status %q details %v name no field %q", st.Message(), st.Details(), field)
}

// ServeGRPC runs serve (a server's ServeGRPC) on a loopback port until the
// test ends, then checks it stopped without an error; it returns a
// plaintext client connection to it.
func ServeGRPC(t testing.TB, serve func(context.Context, net.Listener) error) *grpc.ClientConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeGRPC: %v", err)
		}
	})
	return conn
}

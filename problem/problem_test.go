package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestEveryCodeIsInTheTable(t *testing.T) {
	for c := CodeInternal; c <= CodeSubscriptionConflict; c++ {
		info, ok := codeInfo[c]
		if !ok || info.status == 0 || info.slug == "" || info.title == "" {
			t.Errorf("code %d: %+v, want a status, slug and title", c, info)
		}
	}
	if len(codeInfo) != int(CodeSubscriptionConflict)+1 {
		t.Errorf("table has %d codes, want %d", len(codeInfo), CodeSubscriptionConflict+1)
	}
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		status      int
		headers     map[string]string
		wantMembers string
	}{
		{"invalid", New(CodeInvalid, "source: required"), 400, nil,
			`{"type":"urn:eventsidecar:problem:invalid","title":"Invalid event or topic","status":400,"detail":"source: required"}`},
		{"batch", &Error{Code: CodeInvalid, Detail: "batch", Items: []ItemError{{Index: 1, Detail: "x <y>"}}}, 400, nil,
			`{"type":"urn:eventsidecar:problem:invalid","title":"Invalid event or topic","status":400,"detail":"batch","errors":[{"index":1,"detail":"x <y>"}]}`},
		{"results and retry", &Error{Code: CodeUnavailable, Detail: "down", Results: []int{7}, RetryAfter: 1500 * time.Millisecond}, 503,
			map[string]string{"Retry-After": "2"},
			`{"type":"urn:eventsidecar:problem:unavailable","title":"Broker unavailable","status":503,"detail":"down","results":[7]}`},
		{"unauthorized", New(CodeUnauthorized, "token"), 401, map[string]string{"WWW-Authenticate": `Bearer realm="eventsidecar"`},
			`{"type":"urn:eventsidecar:problem:unauthorized","title":"Missing or bad API token","status":401,"detail":"token"}`},
		{"wrapped", fmt.Errorf("ctx: %w", New(CodeNotFound, "nope")), 404, nil,
			`{"type":"urn:eventsidecar:problem:not_found","title":"Not found","status":404,"detail":"nope"}`},
		{"not an API error", errors.New("secret: db password"), 500, nil,
			`{"type":"urn:eventsidecar:problem:internal","title":"Internal error","status":500,"detail":"internal error"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			Write(w, tt.err)
			if w.Code != tt.status || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("answer %d %q, want %d application/problem+json", w.Code, w.Header().Get("Content-Type"), tt.status)
			}
			for k, v := range tt.headers {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := strings.TrimSpace(w.Body.String()); got != tt.wantMembers {
				t.Errorf("body = %s\nwant   %s", got, tt.wantMembers)
			}
		})
	}
}

func TestWriteJSON(t *testing.T) {
	w := httptest.NewRecorder()
	WriteJSON(w, http.StatusAccepted, map[string]string{"a": "<&>"})
	if w.Code != http.StatusAccepted || w.Header().Get("Content-Type") != "application/json" || strings.TrimSpace(w.Body.String()) != `{"a":"<&>"}` {
		t.Errorf("answer %d %q %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
}

func TestGRPCStatus(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		code      codes.Code
		msg       string
		fields    []string
		retryInfo bool
	}{
		{"detail names a field", New(CodeInvalid, "source: required"), codes.InvalidArgument, "source: required", []string{"source"}, false},
		{"field with words", New(CodeTooLarge, "event too: big"), codes.ResourceExhausted, "event too: big", []string{"event"}, false},
		{"no field", New(CodeInvalid, "bad"), codes.InvalidArgument, "bad", nil, false},
		{"batch entries", &Error{Code: CodeInvalid, Detail: "batch", Items: []ItemError{{0, "a"}, {2, "b"}}}, codes.InvalidArgument, "batch",
			[]string{"events[0]", "events[2]"}, false},
		{"fields", Invalid(Field{"start.timeout", "must be > 0"}, Field{"start.retry.max_backoff", "must be > 0"}), codes.InvalidArgument,
			"start.timeout: must be > 0", []string{"start.timeout", "start.retry.max_backoff"}, false},
		{"retry", &Error{Code: CodeOverloaded, Detail: "busy", RetryAfter: time.Second}, codes.ResourceExhausted, "busy", nil, true},
		{"no details for other codes", New(CodeForbidden, "topic: not allowed"), codes.PermissionDenied, "topic: not allowed", nil, false},
		{"subscription conflict", New(CodeSubscriptionConflict, "x"), codes.FailedPrecondition, "x", nil, false},
		{"not an API error", errors.New("secret"), codes.Internal, "internal error", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, ok := status.FromError(GRPCStatus(tt.err))
			if !ok || st.Code() != tt.code || st.Message() != tt.msg {
				t.Fatalf("status = %v, want %s %q", st, tt.code, tt.msg)
			}
			var fields []string
			retryInfo := false
			for _, d := range st.Details() {
				switch d := d.(type) {
				case *errdetails.BadRequest:
					for _, v := range d.GetFieldViolations() {
						fields = append(fields, v.GetField())
						if v.GetDescription() == "" {
							t.Errorf("field %s without a description", v.GetField())
						}
					}
				case *errdetails.RetryInfo:
					retryInfo = d.GetRetryDelay().AsDuration() > 0
				}
			}
			if fmt.Sprint(fields) != fmt.Sprint(tt.fields) || retryInfo != tt.retryInfo {
				t.Errorf("fields %v, retry info %v; want %v, %v", fields, retryInfo, tt.fields, tt.retryInfo)
			}
		})
	}
}

// timeoutErr is a net.Error whose Timeout is true.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return false }

func TestBodyError(t *testing.T) {
	busy := &Error{Code: CodeOverloaded, Detail: "busy"}
	tests := []struct {
		name    string
		err     error
		code    Code
		mention string
	}{
		{"too large", &http.MaxBytesError{Limit: 10}, CodeTooLarge, "limit of 10 bytes"},
		{"API error", busy, CodeOverloaded, "busy"},
		{"deadline", os.ErrDeadlineExceeded, CodeTimeout, "http.read_timeout (3s)"},
		{"net timeout", fmt.Errorf("read: %w", timeoutErr{}), CodeTimeout, "http.read_timeout"},
		{"other", errors.New("unexpected EOF"), CodeInvalid, "body: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			e := From(BodyError(w, tt.err, 10, 3*time.Second))
			if e.Code != tt.code || !strings.Contains(e.Detail, tt.mention) {
				t.Errorf("error = %v, want code %s naming %q", e, tt.code.Slug(), tt.mention)
			}
			if w.Header().Get("Connection") != "close" {
				t.Error("the answer does not close the connection")
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	e := Invalid(Field{"a", "b"})
	if got := e.Error(); got != "invalid: a: b" {
		t.Errorf("Error() = %q", got)
	}
	var back *Error
	if !errors.As(fmt.Errorf("x: %w", e), &back) || back != e {
		t.Error("a wrapped *Error is not found")
	}
	if b, err := json.Marshal(ItemError{Index: 1, Detail: "d"}); err != nil || string(b) != `{"index":1,"detail":"d"}` {
		t.Errorf("ItemError JSON = %s, %v", b, err)
	}
}

package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// timeoutAnswerGrace is how long the answer to a request whose body did not
// arrive within http.read_timeout may take to write: the write deadline
// (http.write_timeout from the end of the headers) is about to pass too.
const timeoutAnswerGrace = 5 * time.Second

// body is the RFC 9457 body.
type body struct {
	Type    string      `json:"type"`
	Title   string      `json:"title"`
	Status  int         `json:"status"`
	Detail  string      `json:"detail"`
	Errors  []ItemError `json:"errors,omitempty"`
	Results any         `json:"results,omitempty"`
}

// Write writes err as application/problem+json; it is the only place
// problem JSON is written. An error that is not an *Error is internal: its
// text is not sent. A 401 says how to authenticate (WWW-Authenticate).
func Write(w http.ResponseWriter, err error) {
	e := From(err)
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
	_ = enc.Encode(body{
		Type:    "urn:eventsidecar:problem:" + info.slug,
		Title:   info.title,
		Status:  info.status,
		Detail:  e.Detail,
		Errors:  e.Items,
		Results: e.Results,
	})
}

// WriteJSON writes v as an application/json answer with status, without
// escaping <, > and &.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// BodyError turns an error reading a request body of at most limit bytes
// into its answer: 413 beyond the limit, an *Error as it is (a 429 of an
// in-flight budget), 408 when the body did not arrive within readTimeout
// (http.read_timeout; the write deadline is moved so that the answer can
// still be written), else 400. The answer closes the connection: net/http
// would otherwise read what is left of the body first, and a body that
// stalls would hold the answer until the read timeout.
func BodyError(w http.ResponseWriter, err error, limit int64, readTimeout time.Duration) error {
	w.Header().Set("Connection", "close")
	var tooLarge *http.MaxBytesError
	var apiErr *Error
	switch {
	case errors.As(err, &tooLarge):
		return New(CodeTooLarge, fmt.Sprintf("body: more than the limit of %d bytes", limit))
	case errors.As(err, &apiErr):
		return apiErr
	case isTimeout(err):
		// A ResponseWriter without deadlines keeps its own: the answer is
		// then written while it still can be.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeoutAnswerGrace))
		return New(CodeTimeout, fmt.Sprintf("body: not received within http.read_timeout (%s)", readTimeout))
	}
	return New(CodeInvalid, "body: "+err.Error())
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

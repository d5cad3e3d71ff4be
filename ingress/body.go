package ingress

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// firstBodyBuffer bounds the first buffer of a body, before any of it has
// been read; it then doubles as the body fills it.
const firstBodyBuffer = 4 << 10

// timeoutAnswerGrace is how long the answer to a request whose body did not
// arrive within http.read_timeout may take to write: the write deadline
// (http.write_timeout from the end of the headers) is about to pass too.
const timeoutAnswerGrace = 5 * time.Second

// hold is the room one request holds in the in-flight byte budget that HTTP
// and gRPC requests share (http.max_in_flight_bytes). It is not safe for
// concurrent use; release it once the request is answered.
type hold struct {
	s *Server
	n int64
}

// take holds n more bytes; without room it answers 429 (ResourceExhausted).
func (h *hold) take(n int64) error {
	if !h.s.bodies.TryAcquire(n) {
		return &Error{Code: CodeOverloaded, RetryAfter: retryAfter,
			Detail: fmt.Sprintf("more than http.max_in_flight_bytes (%d) of requests in progress", h.s.cfg.HTTP.MaxInFlightBytes)}
	}
	h.n += n
	h.s.metrics.inFlightBytes.Add(float64(n))
	return nil
}

// release gives back everything held.
func (h *hold) release() {
	h.s.bodies.Release(h.n)
	h.s.metrics.inFlightBytes.Sub(float64(h.n))
	h.n = 0
}

// readAll reads r to its end into one buffer of at most limit bytes, and
// of at most size bytes when size >= 0 (the Content-Length). The buffer
// starts at firstBodyBuffer and doubles as it fills; each buffer's room is
// held before it is allocated, so the budget holds what the body has
// brought, not what it might: a body that stalls holds at most twice what
// it sent, or firstBodyBuffer. A full buffer grows only once another byte
// has arrived. The error is r's, a *Error (429) or an *http.MaxBytesError
// once more than limit bytes came.
func (h *hold) readAll(r io.Reader, limit, size int64) ([]byte, error) {
	ceiling := limit
	if size >= 0 {
		ceiling = min(size, limit)
	}
	first := min(firstBodyBuffer, ceiling)
	err := h.take(first)
	buf := make([]byte, 0, first)
	for err == nil {
		if len(buf) == cap(buf) {
			buf, err = h.more(r, buf, ceiling, limit)
			continue
		}
		var n int
		n, err = r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
	}
	if errors.Is(err, io.EOF) {
		return buf, nil
	}
	return nil, err
}

// more waits for another byte of r once buf is full: it answers buf and
// io.EOF when r has ended, else buf grown to twice its size (at most
// ceiling) with that byte.
func (h *hold) more(r io.Reader, buf []byte, ceiling, limit int64) ([]byte, error) {
	b, err := probe(r)
	if err != nil {
		return buf, err
	}
	had := int64(cap(buf))
	n := min(max(2*had, firstBodyBuffer), ceiling)
	if n <= had {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	if err := h.take(n - had); err != nil {
		return nil, err
	}
	grown := make([]byte, len(buf), n)
	copy(grown, buf)
	return append(grown, b), nil
}

// probe reads one byte of r, to tell its end (io.EOF) from more data
// without a bigger buffer.
func probe(r io.Reader) (byte, error) {
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n == 1 {
			return one[0], nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// bodyError turns an error reading a request body of at most limit bytes
// into its answer: 413 beyond the limit, 429 without budget, 408 when the
// body did not arrive within http.read_timeout (with time to write that
// answer), else 400. The answer closes the connection: net/http would
// otherwise read what is left of the body first, and a body that stalls
// would hold the answer until http.read_timeout.
func (s *Server) bodyError(w http.ResponseWriter, err error, limit int64) error {
	w.Header().Set("Connection", "close")
	var tooLarge *http.MaxBytesError
	var apiErr *Error
	switch {
	case errors.As(err, &tooLarge):
		return errorf(CodeTooLarge, fmt.Sprintf("body: more than the limit of %d bytes", limit))
	case errors.As(err, &apiErr):
		return apiErr
	case isTimeout(err):
		if derr := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeoutAnswerGrace)); derr != nil {
			s.log.Debug("ingress: extend the write deadline for a 408", "error", derr)
		}
		return errorf(CodeTimeout, fmt.Sprintf("body: not received within http.read_timeout (%s)", s.cfg.HTTP.ReadTimeout))
	}
	return errorf(CodeInvalid, "body: "+err.Error())
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

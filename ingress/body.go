package ingress

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/eventsidecar/eventsidecar/problem"
)

// firstBodyBuffer bounds the first buffer of a body, before any of it has
// been read; it then doubles as the body fills it.
const firstBodyBuffer = 4 << 10

// hold is the room one request holds in the in-flight byte budget that HTTP
// and gRPC requests share (http.max_in_flight_bytes). It is not safe for
// concurrent use; release it once the request is answered.
type hold struct {
	s *Server
	n int64
	// one is probe's buffer.
	one [1]byte
}

// take holds n more bytes; without room it answers 429 (ResourceExhausted).
func (h *hold) take(n int64) error {
	if !h.s.bodies.TryAcquire(n) {
		return &problem.Error{Code: problem.CodeOverloaded, RetryAfter: problem.DefaultRetryAfter,
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
// has arrived. The error is r's, a *problem.Error (429) or an *http.MaxBytesError
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
	b, err := h.probe(r)
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
func (h *hold) probe(r io.Reader) (byte, error) {
	for {
		n, err := r.Read(h.one[:])
		if n == 1 {
			return h.one[0], nil
		}
		if err != nil {
			return 0, err
		}
	}
}

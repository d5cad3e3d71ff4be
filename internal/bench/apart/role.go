package apart

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// role runs one of the roles of a child process: it decodes its settings
// from spec, says hello on l, answers each request that comes on l, and
// returns once l's requests end (its parent closed its standard input).
type role func(ctx context.Context, spec []byte, l *link) error

// roles are the roles by name.
var roles = map[string]role{
	roleNATS:     serveNATS,
	roleWebhook:  serveWebhook,
	roleTrivial:  serveTrivial,
	roleConsumer: serveConsumer,
	roleLoad:     serveLoad,
}

// The roles' names.
const (
	roleNATS     = "nats-server"
	roleWebhook  = "webhook"
	roleTrivial  = "trivial"
	roleConsumer = "consumer"
	roleLoad     = "load"
)

// IsChild reports whether Run started this process as one of its child
// processes: nats-server, the webhook, the trivial handler, the direct
// consumer or a load generator. A main or TestMain that may run the
// benchmark's separate-process mode calls RunChild first when it is.
func IsChild() bool { return os.Getenv(roleEnv) != "" }

// RunChild plays this child process's role until its parent closes its
// standard input, and returns the exit code: 0, or 1 (2 for an unknown
// role) after printing why to standard error. The parent talks to it over
// standard input and output, which it must not otherwise use.
func RunChild() int {
	name := os.Getenv(roleEnv)
	r, ok := roles[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "eventsidecar-bench: unknown role %q\n", name)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := newLink(os.Stdin, os.Stdout, cancel)
	if err := r(ctx, []byte(os.Getenv(specEnv)), l); err != nil {
		fmt.Fprintf(os.Stderr, "eventsidecar-bench %s: %v\n", name, err)
		return 1
	}
	return 0
}

// link is a child's end of the exchange with its parent: requests are
// read from in, one JSON value each, and answers written to out, one a
// line. It is used by one goroutine.
type link struct {
	reqs <-chan json.RawMessage // closed when in ends
	out  *json.Encoder
}

// newLink reads requests from in until it ends, then calls ended.
func newLink(in io.Reader, out io.Writer, ended func()) *link {
	reqs := make(chan json.RawMessage)
	go func() {
		defer close(reqs)
		defer ended()
		dec := json.NewDecoder(bufio.NewReader(in))
		for {
			var req json.RawMessage
			if dec.Decode(&req) != nil {
				return
			}
			reqs <- req
		}
	}()
	return &link{reqs: reqs, out: json.NewEncoder(out)}
}

// send writes v as one line.
func (l *link) send(v any) error {
	if err := l.out.Encode(v); err != nil {
		return fmt.Errorf("answer: %w", err)
	}
	return nil
}

// next decodes the next request into v; ok is false when there are no
// more.
func (l *link) next(v any) (ok bool, err error) {
	req, ok := <-l.reqs
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(req, v); err != nil {
		return true, fmt.Errorf("request %s: %w", req, err)
	}
	return true, nil
}

// drain waits until the requests end, ignoring them.
func (l *link) drain() {
	for range l.reqs {
	}
}

// answerEach answers each request, a Req, with what reply returns for it,
// until the requests end.
func answerEach[Req any](l *link, reply func(Req) any) error {
	for {
		var req Req
		if ok, err := l.next(&req); !ok || err != nil {
			return err
		}
		if err := l.send(reply(req)); err != nil {
			return err
		}
	}
}

// decodeSpec decodes a role's settings.
func decodeSpec(spec []byte, v any) error {
	if err := json.Unmarshal(spec, v); err != nil {
		return fmt.Errorf("settings %s: %w", spec, err)
	}
	return nil
}

package graceful

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestServeFinishesRequestInFlight: once ctx ends, a request in progress
// still gets its answer, and Serve returns nil.
func TestServeFinishesRequestInFlight(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(arrived)
		<-release
		io.WriteString(w, "done")
	})}
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, time.Minute, srv.Serve, srv.Shutdown) }()
	answer := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			answer <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answer <- string(b)
	}()
	<-arrived
	cancel()
	close(release)
	if got := <-answer; got != "done" {
		t.Errorf("the request in flight got %q, want done", got)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after a graceful shutdown", err)
	}
}

// TestServeShutdownTimeout: a shutdown that outlasts the timeout is an
// error saying so.
func TestServeShutdownTimeout(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(arrived)
		<-release
	})}
	ln := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, 50*time.Millisecond, srv.Serve, srv.Shutdown) }()
	go func() {
		if resp, err := http.Get("http://" + ln.Addr().String()); err == nil {
			resp.Body.Close()
		}
	}()
	<-arrived
	cancel()
	err := <-served
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "shut down") {
		t.Errorf("Serve = %v, want a shut down error wrapping context.DeadlineExceeded", err)
	}
	srv.Close()
}

// TestServeFailure: serve failing before ctx ends is returned, naming the
// address.
func TestServeFailure(t *testing.T) {
	ln := listen(t)
	ln.Close()
	srv := &http.Server{}
	err := Serve(context.Background(), ln, time.Second, srv.Serve, srv.Shutdown)
	if err == nil || !strings.Contains(err.Error(), "serve "+ln.Addr().String()) {
		t.Errorf("Serve on a closed listener = %v, want an error naming its address", err)
	}
}

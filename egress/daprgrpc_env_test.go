package egress

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"testing"

	runtimev1 "github.com/dapr/dapr/pkg/proto/runtime/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/internal/syncbuf"
)

// grpcCall is one OnTopicEvent call a gRPC Dapr app got.
type grpcCall struct {
	req *runtimev1.TopicEventRequest
	md  metadata.MD
}

// grpcAnswer is how a test gRPC app answers one call: n counts the calls
// with the same event id, 1 for the first.
type grpcAnswer func(path string, n int) (*runtimev1.TopicEventResponse, error)

// answeringStatus always answers the status s.
func answeringStatus(s runtimev1.TopicEventResponse_TopicEventResponseStatus) grpcAnswer {
	return func(string, int) (*runtimev1.TopicEventResponse, error) {
		return &runtimev1.TopicEventResponse{Status: s}, nil
	}
}

// firstError answers the first call of each event err, the others
// SUCCESS.
func firstError(err error) grpcAnswer {
	return func(_ string, n int) (*runtimev1.TopicEventResponse, error) {
		if n == 1 {
			return nil, err
		}
		return &runtimev1.TopicEventResponse{}, nil
	}
}

// grpcApp is a Dapr app over gRPC (AppCallback): ListTopicSubscriptions
// answers subs (Unimplemented when nil), every OnTopicEvent is recorded
// and answered by answer.
type grpcApp struct {
	runtimev1.UnimplementedAppCallbackServer
	subs   []*runtimev1.TopicSubscription
	answer grpcAnswer

	mu    sync.Mutex
	calls []grpcCall
	perID map[string]int
}

func (a *grpcApp) ListTopicSubscriptions(context.Context, *emptypb.Empty) (*runtimev1.ListTopicSubscriptionsResponse, error) {
	if a.subs == nil {
		return nil, status.Error(codes.Unimplemented, "no subscriptions here")
	}
	return &runtimev1.ListTopicSubscriptionsResponse{Subscriptions: a.subs}, nil
}

func (a *grpcApp) OnTopicEvent(ctx context.Context, req *runtimev1.TopicEventRequest) (*runtimev1.TopicEventResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, grpcCall{req: req, md: md})
	if a.perID == nil {
		a.perID = map[string]int{}
	}
	a.perID[req.GetId()]++
	return a.answer(req.GetPath(), a.perID[req.GetId()])
}

func (a *grpcApp) received() []grpcCall {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]grpcCall(nil), a.calls...)
}

// serve serves a on addr (a new loopback port when "") until the test
// ends, and returns its address.
func (a *grpcApp) serve(t *testing.T, addr string) string {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	srv := grpc.NewServer()
	runtimev1.RegisterAppCallbackServer(srv, a)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-done; err != nil {
			t.Errorf("gRPC app: %v", err)
		}
	})
	return ln.Addr().String()
}

// grpcConfig is daprConfig for a gRPC app at addr.
func grpcConfig(t *testing.T, addr string) config.Config {
	t.Helper()
	cfg := daprConfig(t, addr)
	cfg.Dapr.AppProtocol = "grpc"
	return cfg
}

// closingDaprApp is newDaprApp, closed when the test ends, after what
// the test started later (a Manager) has stopped.
func closingDaprApp(t *testing.T, cfg config.Config, log *syncbuf.Buffer) *DaprApp {
	t.Helper()
	app := newDaprApp(t, cfg, log)
	t.Cleanup(func() {
		if err := app.Close(); err != nil {
			t.Errorf("DaprApp.Close: %v", err)
		}
	})
	return app
}

// startGRPCDapr runs a Manager with no configured subscriptions and
// attaches the subscriptions of the gRPC Dapr app a (served here); it
// returns once they are attached.
func (e *env) startGRPCDapr(a *grpcApp, cfgs ...func(*config.Config)) *running {
	e.t.Helper()
	cfg := grpcConfig(e.t, a.serve(e.t, ""))
	for _, f := range cfgs {
		f(&cfg)
	}
	app := closingDaprApp(e.t, cfg, &syncbuf.Buffer{})
	r := e.start()
	if err := r.RunDapr(e.t.Context(), app, nil); err != nil {
		e.t.Fatalf("RunDapr: %v", err)
	}
	return r
}

// listedDeadLetters is the dead letters of the named subscription as the
// admin API lists them.
func listedDeadLetters(e *env, r *running, name string) []deadLetter {
	e.t.Helper()
	h := serveAdmin(e, r.Manager)
	var listed struct {
		DeadLetters []deadLetter `json:"deadletters"`
	}
	resp := h.get("/v1/subscriptions/" + name + "/deadletters")
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&listed); err != nil || resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET deadletters: %d %v", resp.StatusCode, err)
	}
	return listed.DeadLetters
}

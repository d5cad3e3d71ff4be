package egress

import (
	"context"
	"io"
	"net/http"
	"testing"
)

// BenchmarkDaprAttempt makes attempts to a real loopback Dapr HTTP app
// answering 200 {"status":"SUCCESS"}, as benchAttempts does.
func BenchmarkDaprAttempt(b *testing.B) {
	srv := newServer(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"status":"SUCCESS"}`)
	}))
	benchAttempts(b, func(b *testing.B, secret string) func(context.Context) Outcome {
		p := newTestDaprPost(b, srv.URL, ordersRoutes("/orders"), secret)
		d := Delivery{Event: testEvent(), Attempt: 1, Route: "/orders"}
		return func(ctx context.Context) Outcome { return p.Attempt(ctx, d) }
	})
}

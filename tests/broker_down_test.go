package tests

import (
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// natsServer starts a JetStream server on port (0: any free port) with its
// store in dir.
func natsServer(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true})
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func TestBrokerDownAnswers503AndRecovers(t *testing.T) {
	dir := t.TempDir()
	ns := natsServer(t, 0, dir)
	port := ns.Addr().(*net.TCPAddr).Port
	const publishTimeout = time.Second
	sc := startSidecar(t, urlConfig("e2e", ns.ClientURL(), fmt.Sprintf("  publish_timeout: %s\n", publishTimeout)))
	event := func(i int) []string {
		return []string{"ce-specversion: 1.0", fmt.Sprintf("ce-id: d-%d", i), "ce-source: /shop", "ce-type: t", "Content-Type: text/plain"}
	}
	publish := func(i int) (int, http.Header, []byte) {
		return sc.post("/v1/publish/orders.created", "x", event(i)...)
	}
	sc.mustPublish("/v1/publish/orders.created", "x", event(0)...)

	ns.Shutdown()
	ns.WaitForShutdown()
	for i := 1; i <= 3; i++ {
		start := time.Now()
		code, hdr, body := publish(i)
		took := time.Since(start)
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
			t.Fatalf("publish with the broker down: %d (Retry-After %q) %s; want 503 with Retry-After", code, hdr.Get("Retry-After"), body)
		}
		if took > publishTimeout+2*time.Second {
			t.Errorf("publish with the broker down took %s, publish_timeout is %s", took, publishTimeout)
		}
	}
	if code, _ := sc.get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz with the broker down = %d, want 503", code)
	}

	natsServer(t, port, dir)
	poll.Until(t, 30*time.Second, "publish after the broker came back", func() bool {
		code, _, _ := publish(100)
		return code == http.StatusOK
	})
	poll.Until(t, 10*time.Second, "readyz after the broker came back", func() bool {
		code, _ := sc.get("/readyz")
		return code == http.StatusOK
	})
}

package tests

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// natsServerBinary is the nats-server binary built once for the tests that
// run their brokers as processes of their own.
var natsServerBinary string

// buildNATSServer builds nats-server into dir. It is a module dependency,
// so nothing is downloaded; it is built without -race.
func buildNATSServer(dir string) error {
	natsServerBinary = filepath.Join(dir, "nats-server")
	build := exec.Command("go", "build", "-o", natsServerBinary, "github.com/nats-io/nats-server/v2")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build nats-server: %w", err)
	}
	return nil
}

// Fixed ports are picked below Linux's ephemeral range (32768 and up), so
// that no :0 listener or outgoing connection takes one while its process
// is down: a restarted broker or app gets its port back.
const (
	fixedPortLow  = 20000
	fixedPortHigh = 32000
)

// fixedPorts are the ports handed out in this process.
var fixedPorts = struct {
	sync.Mutex
	taken map[int]bool
}{taken: map[int]bool{}}

// fixedPort returns a loopback port that is free now and was not handed
// out before in this process.
func fixedPort(t *testing.T) int {
	t.Helper()
	fixedPorts.Lock()
	defer fixedPorts.Unlock()
	for range 1000 {
		p := fixedPortLow + rand.IntN(fixedPortHigh-fixedPortLow)
		if fixedPorts.taken[p] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		_ = ln.Close()
		fixedPorts.taken[p] = true
		return p
	}
	t.Fatalf("no free port in [%d, %d)", fixedPortLow, fixedPortHigh)
	return 0
}

// errPortBusy says a nats-server could not listen on one of its ports.
var errPortBusy = errors.New("a port is busy")

// natsUpWithin bounds the wait for a nats-server to be up: recovered, and
// in a cluster current with its meta leader and its streams.
const natsUpWithin = 120 * time.Second

// natsNode is one nats-server process with JetStream, on fixed ports and
// a store directory that outlive the process, so that it can be killed
// and started again as the same server.
type natsNode struct {
	t                         *testing.T
	name                      string // its server_name
	port, httpPort, routePort int    // client, monitoring and cluster ports
	peers                     []*natsNode
	conf                      string // its configuration file
	dir                       string // its JetStream store

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    bytes.Buffer // what every run of it printed
}

// startNATS starts size nats-servers with JetStream, routed into one
// cluster when size > 1, and waits until every one is up. When a port
// turns out to be busy, it starts them again on other ports. The servers
// are killed at the end of the test.
func startNATS(t *testing.T, size int) []*natsNode {
	t.Helper()
	for range 3 {
		nodes := newNATSNodes(t, size)
		err := upAll(nodes)
		if err == nil {
			return nodes
		}
		for _, n := range nodes {
			n.kill()
		}
		if !errors.Is(err, errPortBusy) {
			t.Fatal(err)
		}
	}
	t.Fatal("nats-server: a port was busy three times")
	return nil
}

// newNATSNodes prepares size nodes named n1, n2, ..., each with its own
// ports and store and the others as its peers.
func newNATSNodes(t *testing.T, size int) []*natsNode {
	t.Helper()
	nodes := make([]*natsNode, size)
	for i := range nodes {
		dir := t.TempDir()
		nodes[i] = &natsNode{t: t, name: fmt.Sprintf("n%d", i+1), port: fixedPort(t), httpPort: fixedPort(t),
			routePort: fixedPort(t), conf: filepath.Join(dir, "nats.conf"), dir: filepath.Join(dir, "jetstream")}
		t.Cleanup(nodes[i].kill)
	}
	if size > 1 {
		for _, n := range nodes {
			for _, p := range nodes {
				if p != n {
					n.peers = append(n.peers, p)
				}
			}
		}
	}
	return nodes
}

// upAll launches every node and waits until each is up.
func upAll(nodes []*natsNode) error {
	for _, n := range nodes {
		if err := n.launch(); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		if err := n.waitUp(natsUpWithin); err != nil {
			return err
		}
	}
	return nil
}

// clusterURL is the sidecar's broker.url for nodes.
func clusterURL(nodes []*natsNode) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.url()
	}
	return strings.Join(urls, ",")
}

// url is the node's client URL.
func (n *natsNode) url() string {
	return fmt.Sprintf("nats://127.0.0.1:%d", n.port)
}

// config is the node's configuration file.
func (n *natsNode) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %s\nlisten: \"127.0.0.1:%d\"\nhttp: \"127.0.0.1:%d\"\njetstream {\n  store_dir: %q\n}\n",
		n.name, n.port, n.httpPort, n.dir)
	if len(n.peers) > 0 {
		routes := make([]string, len(n.peers))
		for i, p := range n.peers {
			routes[i] = fmt.Sprintf("\"nats-route://127.0.0.1:%d\"", p.routePort)
		}
		fmt.Fprintf(&b, "cluster {\n  name: chaos\n  listen: \"127.0.0.1:%d\"\n  routes: [%s]\n}\n",
			n.routePort, strings.Join(routes, ", "))
	}
	return b.String()
}

// launch starts the process on the node's ports and store.
func (n *natsNode) launch() error {
	if err := os.WriteFile(n.conf, []byte(n.config()), 0o600); err != nil {
		return fmt.Errorf("%s: write config: %w", n.name, err)
	}
	cmd := exec.Command(natsServerBinary, "-c", n.conf)
	out := &lockedWriter{mu: &n.mu, w: &n.log}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start nats-server: %w", n.name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	return nil
}

// waitUp waits until the node's health check answers 200 (in a cluster:
// current with the meta leader and with every stream and consumer it
// holds), or fails when the process exits first.
func (n *natsNode) waitUp(within time.Duration) error {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	deadline := time.After(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !n.healthy() {
		select {
		case <-exited:
			if strings.Contains(n.output(), "address already in use") {
				return fmt.Errorf("%s: %w", n.name, errPortBusy)
			}
			return fmt.Errorf("%s exited before it was up; its log:\n%s", n.name, n.output())
		case <-deadline:
			return fmt.Errorf("%s not up within %s; its log:\n%s", n.name, within, n.output())
		case <-tick.C:
		}
	}
	return nil
}

// healthy reports whether the node's /healthz answers 200.
func (n *natsNode) healthy() bool {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", n.httpPort))
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// restartPause is the pause before starting a node again when another
// process holds one of its ports.
const restartPause = 200 * time.Millisecond

// restart starts the killed node again, as the same server on the same
// ports and store, and waits until it is up. A port another process took
// meanwhile is waited out.
func (n *natsNode) restart() {
	n.t.Helper()
	deadline := time.Now().Add(natsUpWithin)
	for {
		err := n.launch()
		if err == nil {
			err = n.waitUp(time.Until(deadline))
		}
		switch {
		case err == nil:
			return
		case !errors.Is(err, errPortBusy) || time.Now().After(deadline):
			n.t.Fatalf("restart: %v", err)
		}
		<-time.After(restartPause)
	}
}

// kill ends the process at once (SIGKILL) and waits for it; a node that
// is not running is left as it is.
func (n *natsNode) kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// output is what the node's processes printed.
func (n *natsNode) output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.log.String()
}

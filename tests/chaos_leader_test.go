package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// stepDownAgain is how long a step-down may take before it is asked for
// again.
const stepDownAgain = 5 * time.Second

// clusterView asks a JetStream cluster which servers lead the stream and
// the chaos subscription's consumer, over a connection of its own.
type clusterView struct {
	t  *testing.T
	nc *nats.Conn
	s  jetstream.Stream
}

// watchCluster connects to the cluster at url, which holds the sidecar's
// stream.
func watchCluster(t *testing.T, url string) *clusterView {
	t.Helper()
	s, nc := openStream(t, url, nats.MaxReconnects(-1))
	return &clusterView{t: t, nc: nc, s: s}
}

// leaders returns the servers leading the stream and the consumer; a name
// is empty while it is being elected or cannot be asked.
func (c *clusterView) leaders() (stream, consumer string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if info, err := c.s.Info(ctx); err == nil && info.Cluster != nil {
		stream = info.Cluster.Leader
	}
	if cons, err := c.s.Consumer(ctx, chaosSub); err == nil && cons.CachedInfo().Cluster != nil {
		consumer = cons.CachedInfo().Cluster.Leader
	}
	return stream, consumer
}

// apart waits until the one to lose (the consumer when consumer is true,
// else the stream) is led by a server that leads nothing else of the two
// and is not avoid (the sidecar's server: its connection must not drop,
// so that only the broker can tell it about the loss), asking the leader
// to step down while that is not so. It returns the server leading it.
func (c *clusterView) apart(consumer bool, avoid string) string {
	c.t.Helper()
	var target, asked string
	var askedAt time.Time
	poll.Until(c.t, natsUpWithin, "the one to lose led by a server of its own", func() bool {
		var other string
		target, other = c.leaders()
		if consumer {
			target, other = other, target
		}
		switch {
		case target == "" || other == "":
			return false
		case target != other && target != avoid:
			return true
		case target != asked || time.Since(askedAt) > stepDownAgain:
			asked, askedAt = target, time.Now()
			c.stepDown(consumer)
		}
		return false
	})
	return target
}

// stepDown asks the leader of the consumer (consumer true) or of the
// stream to hand its leadership to another server. Its answer is not
// needed: apart sees the outcome in leaders, and asks again.
func (c *clusterView) stepDown(consumer bool) {
	subject := "$JS.API.STREAM.LEADER.STEPDOWN.EVENTS"
	if consumer {
		subject = "$JS.API.CONSUMER.LEADER.STEPDOWN.EVENTS." + chaosSub
	}
	_, _ = c.nc.Request(subject, nil, stepDownAgain)
}

// connectedTo returns the node the sidecar with app_id appID is
// connected to, as the nodes' /connz show its connection.
func connectedTo(t *testing.T, nodes []*natsNode, appID string) *natsNode {
	t.Helper()
	var found *natsNode
	poll.Until(t, natsUpWithin, "the sidecar's connection in a server's /connz", func() bool {
		for _, n := range nodes {
			if n.hasClient("eventsidecar " + appID) {
				found = n
				return true
			}
		}
		return false
	})
	return found
}

// hasClient reports whether a client connection named name is open on
// the node.
func (n *natsNode) hasClient(name string) bool {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/connz?limit=1024", n.httpPort))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var connz struct{ Connections []struct{ Name string } }
	if err := json.NewDecoder(resp.Body).Decode(&connz); err != nil {
		return false
	}
	for _, c := range connz.Connections {
		if c.Name == name {
			return true
		}
	}
	return false
}

// natsNodeNamed returns the node named name.
func natsNodeNamed(t *testing.T, nodes []*natsNode, name string) *natsNode {
	t.Helper()
	for _, n := range nodes {
		if n.name == name {
			return n
		}
	}
	t.Fatalf("no node %q", name)
	return nil
}

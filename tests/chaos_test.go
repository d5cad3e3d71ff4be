package tests

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// The chaos suite (issue 9): the real binary against real nats-server
// processes and a real webhook, under steady publishing, through one fault
// each. Every case counts from the producer's answers, the stream and the
// app's receipts, and logs one line (visible with -v):
//
//	chaos: case=NAME published_2xx=N stored=N delivered=N duplicates=N dead_lettered=N lost=N heal=D ...
//
// where heal is how long the system took to heal from the fault, defined
// for each case in its comment; see chaosCase.check for what is asserted.

const (
	// chaosSub is the subscription every case delivers.
	chaosSub = "chaos"
	// chaosInFlight is its max_in_flight.
	chaosInFlight = 16
	// busyAppDelay makes the app slower than the producer (max_in_flight
	// answers per 500ms is 32 events/s, against about 130 published, or
	// 32 when each publish took 200ms): every delivery slot is soon busy, the
	// worst moment for a fault.
	busyAppDelay = 500 * time.Millisecond
)

// chaosSubscription is the subscription chaosSub on chaos.> delivered to
// endpoint. Its max_attempts is small on purpose: were the attempts an
// outage fails counted, its events would be dead-lettered within a second.
func chaosSubscription(endpoint string) string {
	return fmt.Sprintf(`subscriptions:
  - name: %s
    topic: "chaos.>"
    endpoint: %s
    max_in_flight: %d
    timeout: 2s
    retry: {max_attempts: 3, initial_backoff: 50ms, max_backoff: 1s, multiplier: 2}
`, chaosSub, endpoint, chaosInFlight)
}

// chaosConfig is a sidecar with app_id appID on the broker at natsURL,
// keeping replicas copies of its stream, delivering chaosSub to endpoint.
func chaosConfig(appID, natsURL string, replicas int, endpoint string) string {
	return urlConfig(appID, natsURL, fmt.Sprintf("  replicas: %d\n  publish_timeout: 1s\n", replicas)+chaosSubscription(endpoint))
}

// TestChaosSidecarKill9 kills the sidecar (SIGKILL) while a publish and
// max_in_flight deliveries are in flight, and starts it again: with the
// embedded broker, whose store dies with the process, and with an
// external one. heal: from the restart (the new process is started as
// soon as the old one is dead) until the app's first 2xx answer after it.
func TestChaosSidecarKill9(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		external bool
	}{{"embedded", false}, {"external", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := newChaosApp(t)
			cfg := embeddedConfig(t.TempDir(), chaosSubscription(app.endpoint("/events")))
			natsURL := ""
			if tc.external {
				natsURL = startNATS(t, 1)[0].url()
				cfg = chaosConfig("chaos", natsURL, 1, app.endpoint("/events"))
			}
			first := startSidecar(t, cfg)
			p := startProducer(t, "kill-"+tc.name, first.url(""))
			steady(t, p, app, "before the kill")
			saturate(t, app, "/events", func() bool { return p.inFlight.Load() > 0 })
			first.kill()
			app.setDelay(0)
			restarted := time.Now()
			sc := startSidecar(t, cfg)
			p.setTargets(sc.url(""))
			c := chaosCase{name: "sidecar_kill9_" + tc.name, p: p, app: app, natsURL: natsURL, dupAllowed: chaosInFlight,
				sidecars: []*sidecar{first, sc}}
			if !tc.external {
				c.natsURL = sc.natsURL
			}
			c.heal = healed(t, app, restarted, "after the restart")
			steady(t, p, app, "after the restart")
			c.check(t)
		})
	}
}

// brokerOutage is how long the broker stays killed.
const brokerOutage = 5 * time.Second

// TestChaosBrokerSIGKILL5s kills the external nats-server (SIGKILL) under
// publish load, with max_in_flight deliveries in flight, and starts it
// again on the same port and store after 5s. The app must not get an
// event again that it answered 2xx for (contract §5). heal: from the
// broker up again until delivery resumed (healedBeyond); publish_heal:
// until the first publish answered 2xx after it.
func TestChaosBrokerSIGKILL5s(t *testing.T) {
	t.Parallel()
	broker := startNATS(t, 1)[0]
	app := newChaosApp(t)
	sc := startSidecar(t, chaosConfig("chaos", broker.url(), 1, app.endpoint("/events")))
	p := startProducer(t, "broker", sc.url(""))
	steady(t, p, app, "before the kill")
	saturate(t, app, "/events", noCondition)
	broker.kill()
	app.setDelay(0)
	<-time.After(brokerOutage) // the outage itself
	broker.restart()
	back := time.Now()
	c := chaosCase{name: "broker_sigkill_5s", p: p, app: app, natsURL: broker.url(), sidecars: []*sidecar{sc}}
	c.heal = healedBeyond(t, app, back, "after the broker came back")
	c.extra = " publish_heal=" + formatHeal(healedPublish(t, p, back, "after the broker came back"))
	steady(t, p, app, "after the broker came back")
	c.check(t)
}

// saturate slows the app down until every delivery slot of the sidecar
// delivering to path is in flight (and cond holds), for the fault to hit
// then; the caller speeds the app up again once the fault is in place.
func saturate(t *testing.T, app *chaosApp, path string, cond func() bool) {
	t.Helper()
	app.setDelay(busyAppDelay)
	poll.Until(t, chaosDeadline, "every delivery slot in flight", func() bool {
		return app.inFlightOn(path) == chaosInFlight && cond()
	})
}

// noCondition is a saturate condition that always holds.
func noCondition() bool { return true }

// healedPublish returns how long after from a publish was first answered
// 2xx; noHeal (failing the test, which goes on) when none is within
// chaosDeadline.
func healedPublish(t *testing.T, p *producer, from time.Time, what string) time.Duration {
	t.Helper()
	if !waitWithin(chaosDeadline, func() bool { return len(p.ackedWhen(from, false)) > 0 }) {
		t.Errorf("%s: no publish answered 2xx within %s (%s)", what, chaosDeadline, p.answers())
		return noHeal
	}
	acked := p.ackedSnapshot()
	first := time.Time{}
	for _, id := range p.ackedWhen(from, false) {
		if at := acked[id].at; first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first.Sub(from)
}

// TestChaosClusterLeaderLoss runs the sidecar on a three-node JetStream
// cluster (broker.replicas: 3) and kills (SIGKILL) the server leading the
// stream, or separately the one leading the subscription's consumer, under
// load with every delivery slot in flight; then starts it again. The
// server killed leads the one alone, and is not the one the sidecar is
// connected to: the sidecar's connection stays up, and only the broker can
// tell it about the loss. Delivery must resume by itself, without a
// sidecar restart. heal: from the kill until delivery resumed
// (healedBeyond); rejoin_heal: the same from the killed server up again.
func TestChaosClusterLeaderLoss(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		consumer bool
	}{{"stream_leader", false}, {"consumer_leader", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nodes := startNATS(t, 3)
			url := clusterURL(nodes)
			app := newChaosApp(t)
			sc := startSidecar(t, chaosConfig("chaos", url, 3, app.endpoint("/events")))
			view := watchCluster(t, url)
			connected := connectedTo(t, nodes, "chaos")
			victim := natsNodeNamed(t, nodes, view.apart(tc.consumer, connected.name))
			p := startProducer(t, "cluster-"+tc.name, sc.url(""))
			steady(t, p, app, "before the kill")
			saturate(t, app, "/events", noCondition)
			victim.kill()
			killed := time.Now()
			app.setDelay(0)
			c := chaosCase{name: "cluster_" + tc.name + "_loss", p: p, app: app, natsURL: url, sidecars: []*sidecar{sc}}
			c.heal = healedBeyond(t, app, killed, "with the "+tc.name+" killed")
			leaderNow, consumerLeaderNow := view.leaders()
			victim.restart()
			rejoined := time.Now()
			rejoinHeal := healedBeyond(t, app, rejoined, "after the killed server came back")
			c.extra = fmt.Sprintf(" killed=%s sidecar_server=%s stream_leader_after=%s consumer_leader_after=%s rejoin_heal=%s",
				victim.name, connected.name, leaderNow, consumerLeaderNow, formatHeal(rejoinHeal))
			steady(t, p, app, "after the killed server came back")
			c.check(t)
		})
	}
}

// appOutage is how long the app is down or answers 503.
const appOutage = 30 * time.Second

// TestChaosAppOutage30s takes the app down (its port closed: connections
// refused) for 30s, or has it answer 503 for 30s, during steady
// publishing. Without the subscription's circuit, max_attempts 3 would
// dead-letter every event of the outage. heal: from the app back until
// its first 2xx answer after.
func TestChaosAppOutage30s(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// fault starts the outage and returns what ends it.
		fault func(*chaosApp) func()
	}{
		{"app_down_30s", func(a *chaosApp) func() { a.stop(); return a.start }},
		{"app_503_30s", func(a *chaosApp) func() {
			a.status.Store(http.StatusServiceUnavailable)
			return func() { a.status.Store(http.StatusOK) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			broker := startNATS(t, 1)[0]
			app := newChaosApp(t)
			sc := startSidecar(t, chaosConfig("chaos", broker.url(), 1, app.endpoint("/events")))
			p := startProducer(t, tc.name, sc.url(""))
			steady(t, p, app, "before the outage")
			end := tc.fault(app)
			<-time.After(appOutage) // the outage itself
			end()
			back := time.Now()
			c := chaosCase{name: tc.name, p: p, app: app, natsURL: broker.url(), sidecars: []*sidecar{sc}}
			c.heal = healed(t, app, back, "after the app came back")
			steady(t, p, app, "after the app came back")
			c.check(t)
		})
	}
}

// TestChaosTwoSidecarsOneKilled runs two sidecars sharing the
// subscription (each delivering to a path of its own on the app), both
// published to, and kills one (SIGKILL) while every one of its delivery
// slots is in flight; it is not started again, so the other must take
// over its events (the broker redelivers them after the ack wait). heal:
// from the kill until the app had answered 2xx for every event published
// before it.
func TestChaosTwoSidecarsOneKilled(t *testing.T) {
	t.Parallel()
	broker := startNATS(t, 1)[0]
	app := newChaosApp(t)
	killed := startSidecar(t, chaosConfig("chaos-a", broker.url(), 1, app.endpoint("/a")))
	survivor := startSidecar(t, chaosConfig("chaos-b", broker.url(), 1, app.endpoint("/b")))
	p := startProducer(t, "two", killed.url(""), survivor.url(""))
	steady(t, p, app, "before the kill")
	saturate(t, app, "/a", func() bool { return app.inFlightOn("/b") > 0 })
	killed.kill()
	at := time.Now()
	app.setDelay(0)
	p.setTargets(survivor.url(""))
	c := chaosCase{name: "two_sidecars_one_killed", p: p, app: app, natsURL: broker.url(), dupAllowed: chaosInFlight,
		sidecars: []*sidecar{killed, survivor}}
	c.heal = healedAll(t, app, p.ackedWhen(at, true), at, "after the kill")
	steady(t, p, app, "after the kill")
	c.check(t)
}

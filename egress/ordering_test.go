package egress

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventsidecar/eventsidecar/internal/poll"
)

// concurrency tracks how many requests a receiver handles at once, overall
// and per partition key.
type concurrency struct {
	mu     sync.Mutex
	now    int
	peak   int
	perKey map[string]int
	broken string
}

func (c *concurrency) enter(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now++
	c.peak = max(c.peak, c.now)
	if key != "" {
		c.perKey[key]++
		if c.perKey[key] > 1 && c.broken == "" {
			c.broken = "two deliveries in flight for key " + key
		}
	}
}

func (c *concurrency) leave(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now--
	if key != "" {
		c.perKey[key]--
	}
}

func TestMaxInFlightBoundsConcurrency(t *testing.T) {
	e := newEnv(t)
	c := &concurrency{perKey: map[string]int{}}
	release := make(chan struct{})
	rc := newReceiver(t, func(_ int, r *http.Request) int {
		if r.Header.Get("ce-id") == "first" {
			return 200
		}
		c.enter("")
		defer c.leave("")
		<-release
		return 200
	})
	sub := testSub("s", "orders.>", rc.URL)
	sub.MaxInFlight = 4
	e.start(sub)
	e.publish("orders.a", newEvent("first")) // answered at once: delivery starts
	e.settled("s")
	for i := range 20 {
		e.publish("orders.a", newEvent(fmt.Sprint(i)))
	}
	poll.Until(t, 10*time.Second, "4 deliveries in flight", func() bool { return rc.count() == 1+4 })
	close(release)
	e.settled("s")
	if c.peak != 4 || rc.count() != 1+20 {
		t.Errorf("peak concurrency %d and %d deliveries, want 4 and 1+20", c.peak, rc.count())
	}
}

func TestOrderedByKey(t *testing.T) {
	e := newEnv(t)
	c := &concurrency{perKey: map[string]int{}}
	var mu sync.Mutex
	got := map[string][]int{}
	rnd := rand.New(rand.NewPCG(1, 2))
	rc := newReceiver(t, func(_ int, r *http.Request) int {
		key := r.Header.Get("ce-partitionkey")
		c.enter(key)
		defer c.leave(key)
		mu.Lock()
		fail, delay := rnd.IntN(5) == 0, time.Duration(rnd.IntN(3))*time.Millisecond
		mu.Unlock()
		time.Sleep(delay)
		if fail {
			return http.StatusServiceUnavailable
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(r.Header.Get("ce-id"), key+"-"))
		mu.Lock()
		got[key] = append(got[key], n)
		mu.Unlock()
		return 200
	})
	sub := testSub("s", "orders.>", rc.URL)
	sub.OrderedByKey, sub.MaxInFlight = true, 8
	sub.Retry.MaxAttempts = 100
	e.start(sub)
	keys := []string{"a", "b", "c"}
	const perKey = 30
	for i := range perKey {
		for _, k := range keys {
			e.publish("orders.a", newEvent(fmt.Sprintf("%s-%d", k, i), "partitionkey", k))
		}
	}
	e.settled("s")
	if c.broken != "" {
		t.Error(c.broken)
	}
	for _, k := range keys {
		if len(got[k]) != perKey {
			t.Errorf("key %s: %d delivered, want %d", k, len(got[k]), perKey)
			continue
		}
		for i, n := range got[k] {
			if n != i {
				t.Errorf("key %s delivered out of order: %v", k, got[k])
				break
			}
		}
	}
	if c.peak < 2 {
		t.Errorf("peak concurrency %d: keys did not proceed in parallel", c.peak)
	}
}

func TestOrderedSubscriptionSharedBySidecars(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	got := map[string][]int{}
	delivered := 0
	rc := newReceiver(t, func(_ int, r *http.Request) int {
		key := r.Header.Get("ce-partitionkey")
		n, _ := strconv.Atoi(strings.TrimPrefix(r.Header.Get("ce-id"), key+"-"))
		mu.Lock()
		got[key] = append(got[key], n)
		delivered++
		mu.Unlock()
		return 200
	})
	sub := testSub("s", "orders.>", rc.URL)
	sub.OrderedByKey, sub.MaxInFlight = true, 8
	e.start(sub)
	e.start(sub)
	const perKey = 40
	for i := range perKey {
		for _, k := range []string{"a", "b"} {
			e.publish("orders.a", newEvent(fmt.Sprintf("%s-%d", k, i), "partitionkey", k))
		}
	}
	e.settled("s")
	mu.Lock()
	defer mu.Unlock()
	if delivered != 2*perKey {
		t.Errorf("%d deliveries, want %d", delivered, 2*perKey)
	}
	for k, ns := range got {
		for i, n := range ns {
			if n != i {
				t.Errorf("key %s delivered out of order across sidecars: %v", k, ns)
				break
			}
		}
	}
}

// TestSteadyFlowAtMaxInFlightOne guards against a stall of nats.go's pull
// iterator (pending events, no pull request out) that showed most at
// max_in_flight 1 and lasted until its 30s heartbeat check.

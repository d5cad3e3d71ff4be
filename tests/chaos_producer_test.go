package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	// chaosTopic is the topic the chaos suite publishes to.
	chaosTopic = "chaos.e"
	// producerWorkers publish at once, each one request per producerTick.
	producerWorkers = 4
	producerTick    = 50 * time.Millisecond
	// Every batchEvery-th request of a worker is a batch of batchSize
	// events; the others are single events in binary mode.
	batchEvery = 5
	batchSize  = 4
)

// producer publishes steadily through the sidecars it targets and records
// every answer. A request without a 2xx answer is sent again, unchanged,
// on the worker's next tick: the idempotency key (source and id) makes
// that safe, as a real producer would rely on.
type producer struct {
	prefix    string // starts every event id
	eventTime string // every event's time attribute, so that a resent event is the same event
	client    *http.Client
	targets   atomic.Pointer[[]string] // sidecar base URLs; worker w uses the (w mod n)-th
	inFlight  atomic.Int64             // requests sent and not answered yet
	cancel    context.CancelFunc
	done      sync.WaitGroup
	stopOnce  sync.Once

	mu       sync.Mutex
	acked    map[string]ack    // by event id: its first 2xx answer
	claimed  map[string]uint64 // by event id: the sequence a non-2xx answer reported it stored at (0: not said)
	refused  map[int]int       // non-2xx answers by status
	noAnswer int               // requests that got no answer (connection refused or reset, timeout)
	faults   []string          // answers that break the contract, described
}

// ack is an event's first 2xx answer: the sequence it was stored at, and
// when the answer came.
type ack struct {
	seq uint64
	at  time.Time
}

// publishResult is one event's entry in a publish answer (ingress.Result).
type publishResult struct {
	ID       string `json:"id"`
	Sequence uint64 `json:"sequence"`
	Error    string `json:"error"`
}

// startProducer starts publishing events with ids starting with prefix to
// the sidecars at targets, until stop or the end of the test.
func startProducer(t *testing.T, prefix string, targets ...string) *producer {
	t.Helper()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = producerWorkers
	p := &producer{prefix: prefix, eventTime: time.Now().UTC().Format(time.RFC3339Nano),
		client: &http.Client{Transport: transport, Timeout: 30 * time.Second},
		acked:  map[string]ack{}, claimed: map[string]uint64{}, refused: map[int]int{}}
	p.setTargets(targets...)
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for w := range producerWorkers {
		p.done.Add(1)
		go p.work(ctx, w)
	}
	t.Cleanup(p.stop)
	return p
}

// setTargets makes the workers publish to the sidecars at urls from their
// next request on.
func (p *producer) setTargets(urls ...string) {
	p.targets.Store(&urls)
}

// stop ends the publishing and waits for the requests in progress to be
// answered. It is idempotent.
func (p *producer) stop() {
	p.stopOnce.Do(func() {
		p.cancel()
		p.done.Wait()
		p.client.CloseIdleConnections()
	})
}

// work sends worker w's requests, one per tick, until ctx ends.
func (p *producer) work(ctx context.Context, w int) {
	defer p.done.Done()
	tick := time.NewTicker(producerTick)
	defer tick.Stop()
	var pending []string // the ids of the request to send, or send again
	for r := 0; ; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if pending == nil {
			pending = p.ids(w, r)
			r++
		}
		if p.send(w, pending) {
			pending = nil
		}
	}
}

// ids are the event ids of worker w's request r.
func (p *producer) ids(w, r int) []string {
	n := 1
	if r%batchEvery == batchEvery-1 {
		n = batchSize
	}
	ids := make([]string, n)
	for k := range ids {
		ids[k] = fmt.Sprintf("%s-%d-%d-%d", p.prefix, w, r, k)
	}
	return ids
}

// send publishes the events ids through worker w's target, records the
// answer, and reports whether it was a 2xx.
func (p *producer) send(w int, ids []string) bool {
	targets := *p.targets.Load()
	req, err := p.request(targets[w%len(targets)], ids)
	if err != nil {
		p.fault(fmt.Sprintf("build request: %v", err))
		return false
	}
	p.inFlight.Add(1)
	resp, err := p.client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
	}
	p.inFlight.Add(-1)
	if err != nil {
		p.mu.Lock()
		p.noAnswer++
		p.mu.Unlock()
		return false
	}
	return p.record(ids, resp.StatusCode, resp.Header.Get("Content-Type"), body)
}

// request is the publish request for ids: one event in binary mode, or a
// batch of structured events.
func (p *producer) request(base string, ids []string) (*http.Request, error) {
	url := base + "/v1/publish/" + chaosTopic
	if len(ids) == 1 {
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(ids[0]))
		if err != nil {
			return nil, err
		}
		for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": ids[0], "ce-source": "/chaos",
			"ce-type": "chaos.test", "ce-time": p.eventTime, "Content-Type": "text/plain"} {
			req.Header.Set(k, v)
		}
		return req, nil
	}
	events := make([]map[string]string, len(ids))
	for i, id := range ids {
		events[i] = map[string]string{"specversion": "1.0", "id": id, "source": "/chaos", "type": "chaos.test",
			"time": p.eventTime, "datacontenttype": "text/plain", "data": id}
	}
	body, err := json.Marshal(events)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/cloudevents-batch+json")
	return req, nil
}

// record notes the answer to the request for ids and reports whether it
// was a 2xx.
func (p *producer) record(ids []string, status int, contentType string, body []byte) bool {
	now := time.Now()
	if status/100 != 2 {
		p.recordRefusal(ids, status, contentType, body)
		return false
	}
	results, err := parseResults(ids, body)
	if err != nil {
		p.fault(fmt.Sprintf("%d answer %s: %v", status, body, err))
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range results {
		prev, ok := p.acked[r.ID]
		switch {
		case !ok:
			p.acked[r.ID] = ack{seq: r.Sequence, at: now}
		case prev.seq != r.Sequence:
			p.faults = append(p.faults, fmt.Sprintf("%s answered 2xx with sequence %d, then %d", r.ID, prev.seq, r.Sequence))
		}
	}
	return true
}

// parseResults reads a 2xx answer to the request for ids: each entry must
// name its event, in request order, with the sequence it is stored at.
func parseResults(ids []string, body []byte) ([]publishResult, error) {
	var results []publishResult
	if len(ids) == 1 {
		var r publishResult
		err := json.Unmarshal(body, &r)
		results = []publishResult{r}
		if err != nil {
			return nil, err
		}
	} else {
		var batch struct{ Results []publishResult }
		if err := json.Unmarshal(body, &batch); err != nil {
			return nil, err
		}
		results = batch.Results
	}
	if len(results) != len(ids) {
		return nil, fmt.Errorf("%d results for %d events", len(results), len(ids))
	}
	for i, r := range results {
		if r.ID != ids[i] || r.Sequence == 0 || r.Error != "" {
			return nil, fmt.Errorf("entry %d is %+v; want %s stored", i, r, ids[i])
		}
	}
	return results, nil
}

// recordRefusal notes a non-2xx answer: it must be problem JSON with its
// status, and what it reports stored (a batch's results without an error)
// is remembered, to be looked for in the stream.
func (p *producer) recordRefusal(ids []string, status int, contentType string, body []byte) {
	var problem struct {
		Status   int
		Sequence uint64
		Results  []publishResult
	}
	err := json.Unmarshal(body, &problem)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refused[status]++
	if !strings.HasPrefix(contentType, "application/problem+json") || err != nil || problem.Status != status {
		p.faults = append(p.faults, fmt.Sprintf("%d answer is not problem JSON of that status: %s %s", status, contentType, body))
	}
	if problem.Sequence != 0 {
		p.claimed[ids[0]] = problem.Sequence
	}
	for _, r := range problem.Results {
		if r.Error == "" {
			p.claimed[r.ID] = r.Sequence
		}
	}
}

func (p *producer) fault(what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, what)
}

// ackedCount counts the events answered 2xx.
func (p *producer) ackedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

// ackedSnapshot returns a copy of the events answered 2xx.
func (p *producer) ackedSnapshot() map[string]ack {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]ack, len(p.acked))
	for id, a := range p.acked {
		out[id] = a
	}
	return out
}

// ackedWhen returns the ids first answered 2xx before (before true) or
// after t0.
func (p *producer) ackedWhen(t0 time.Time, before bool) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for id, a := range p.acked {
		if a.at.Before(t0) == before {
			ids = append(ids, id)
		}
	}
	return ids
}

// answers describes the answers without a 2xx, e.g. "refused=429:1,503:12
// no_answer=3".
func (p *producer) answers() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	statuses := make([]int, 0, len(p.refused))
	for s := range p.refused {
		statuses = append(statuses, s)
	}
	sort.Ints(statuses)
	parts := make([]string, len(statuses))
	for i, s := range statuses {
		parts[i] = fmt.Sprintf("%d:%d", s, p.refused[s])
	}
	refused := "none"
	if len(parts) > 0 {
		refused = strings.Join(parts, ",")
	}
	return fmt.Sprintf("refused=%s no_answer=%d", refused, p.noAnswer)
}

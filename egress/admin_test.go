package egress

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/eventsidecar/eventsidecar/internal/apitest"
)

func TestListSubscriptions(t *testing.T) {
	tests := []struct {
		name string
		h    func(*testing.T) *adminHarness
		want []string
	}{
		{"none configured", newPlainAdminHarness, []string{}},
		{"configured", newAdminHarness, []string{"orders", "audit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.h(t).get("/v1/subscriptions")
			apitest.WantStatus(t, resp, http.StatusOK)
			got := apitest.DecodeJSON[map[string][]Stats](t, resp)
			subs, ok := got["subscriptions"]
			if !ok || subs == nil {
				t.Fatalf("answer %v: want a subscriptions list", got)
			}
			names := []string{}
			for _, s := range subs {
				names = append(names, s.Name)
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("names = %v, want %v", names, tt.want)
			}
			if len(subs) > 0 && (subs[0].Topic != "orders.>" || subs[0].Pending != 1 || subs[0].Delivered != 7) {
				t.Errorf("first = %+v, want the fixed stats of orders", subs[0])
			}
		})
	}
}

func TestDeadLetterListingNames(t *testing.T) {
	h := newAdminHarness(t)
	h.storeDead()
	resp := h.get("/v1/subscriptions/orders/deadletters?limit=1")
	apitest.WantStatus(t, resp, http.StatusOK)
	list := apitest.DecodeJSON[map[string][]map[string]json.RawMessage](t, resp)["deadletters"]
	if len(list) != 1 {
		t.Fatalf("listing = %v, want one dead letter", list)
	}
	want := map[string]string{
		"sequence": "1", "dlqreason": `"HTTP 400"`, "dlqstatus": "400", "dlqbody": `"bad order a"`,
		"dlqattempts": "3", "dlqsubscription": `"orders"`, "dlqtime": `"2024-05-06T07:08:09Z"`,
	}
	got := map[string]string{}
	for name, raw := range list[0] {
		if name != "event" {
			got[name] = string(raw)
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("listing members = %v, want event and %v", got, want)
	}
}

func TestListDeadLetters(t *testing.T) {
	h := newAdminHarness(t)
	want := h.storeDead()
	tests := []struct {
		name, query string
		ids         []string
	}{
		{"default limit", "", []string{"a", "b", "c"}},
		{"limit", "?limit=2", []string{"a", "b"}},
		{"largest limit", "?limit=1000", []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.get("/v1/subscriptions/orders/deadletters" + tt.query)
			apitest.WantStatus(t, resp, http.StatusOK)
			list := apitest.DecodeJSON[deadLetterList](t, resp).DeadLetters
			if len(list) != len(tt.ids) {
				t.Fatalf("got %d dead letters, want %v", len(list), tt.ids)
			}
			for i, d := range list {
				if i > 0 && d.Sequence <= list[i-1].Sequence {
					t.Errorf("sequence %d after %d: not oldest first", d.Sequence, list[i-1].Sequence)
				}
				checkDeadLetter(t, d, want[tt.ids[i]])
			}
		})
	}
}

// checkDeadLetter compares a listed dead letter with the event stored.
func checkDeadLetter(t *testing.T, d deadLetter, want *event.Event) {
	t.Helper()
	fields := d
	fields.Event = nil
	wantFields := deadLetter{Sequence: d.Sequence, Reason: "HTTP 400", Status: 400,
		Body: "bad order " + want.ID(), Attempts: 3, Subscription: "orders", Time: "2024-05-06T07:08:09Z"}
	if !reflect.DeepEqual(fields, wantFields) {
		t.Errorf("dead letter = %+v, want %+v", fields, wantFields)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(d.Event, &members); err != nil {
		t.Fatalf("event %s: %v", d.Event, err)
	}
	for name := range members {
		if strings.HasPrefix(name, "dlq") {
			t.Errorf("event has %q: %s", name, d.Event)
		}
	}
	var got event.Event
	if err := json.Unmarshal(d.Event, &got); err != nil {
		t.Fatalf("sdk-go reads event %s: %v", d.Event, err)
	}
	if got.ID() != want.ID() || got.Source() != want.Source() || got.Type() != want.Type() ||
		!got.Time().Equal(want.Time()) || got.DataContentType() != want.DataContentType() {
		t.Errorf("event = %s, want the attributes of %s", got, want)
	}
	if !bytes.Equal(got.Data(), want.Data()) {
		t.Errorf("event data = %q, want %q (event %s)", got.Data(), want.Data(), d.Event)
	}
	if pk := got.Extensions()["partitionkey"]; pk != "customer-"+want.ID() {
		t.Errorf("partitionkey = %v, want customer-%s", pk, want.ID())
	}
}

func TestDeadLetterEventJSON(t *testing.T) {
	tests := []struct {
		name, ct string
		data     []byte
		want     string
	}{
		{"json", "application/json", []byte(`{"a": 1}`), `"data":{"a": 1}`},
		{"json suffix", "application/vnd.x+json; charset=utf-8", []byte(`[1]`), `"data":[1]`},
		{"no content type, json", "", []byte(`"s"`), `"data":"s"`},
		{"no content type, not json", "", []byte(`s`), `"data_base64":"cw=="`},
		{"json type, not json", "application/json", []byte(`{`), `"data_base64":"ew=="`},
		{"text", "text/plain", []byte("a\nb"), `"data":"a\nb"`},
		{"text, not utf-8", "text/plain", []byte{0xff}, `"data_base64":"/w=="`},
		{"binary", "application/octet-stream", []byte("hi"), `"data_base64":"aGk="`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := deadEvent(t, "orders", "1", tt.ct, tt.data)
			ev.SetExtension("count", int32(5))
			ev.SetExtension("flag", true)
			got := string(newDeadLetter(DeadLetter{Event: *ev}).Event)
			if !strings.Contains(got, tt.want) || !strings.Contains(got, `"count":5`) || !strings.Contains(got, `"flag":true`) {
				t.Errorf("event = %s, want %s and typed count and flag", got, tt.want)
			}
			if !strings.HasPrefix(got, `{"specversion":"1.0","id":"1",`) || strings.Contains(got, "dlq") {
				t.Errorf("event = %s, want specversion and id first, no dlq* extensions", got)
			}
		})
	}
}

func TestReplayDeadLetters(t *testing.T) {
	h := newAdminHarness(t)
	h.storeDead()
	steps := []struct {
		name, body   string
		wantReplayed int
		wantLeft     []string
		wantOnTopic  []string
	}{
		{"empty ids", `{"ids":[]}`, 0, []string{"a", "b", "c"}, nil},
		{"by id", `{"ids":["b","nope"]}`, 1, []string{"a", "c"}, []string{"b"}},
		{"all", `{}`, 2, nil, []string{"b", "a", "c"}},
		{"none left", ``, 0, nil, []string{"b", "a", "c"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			resp := h.post("/v1/subscriptions/orders/deadletters/replay", st.body, "Content-Type: application/json")
			apitest.WantStatus(t, resp, http.StatusOK)
			if got := apitest.DecodeJSON[map[string]int](t, resp); got["replayed"] != st.wantReplayed || len(got) != 1 {
				t.Errorf("answer = %v, want replayed %d", got, st.wantReplayed)
			}
			if got := h.deadIDs("orders"); !slices.Equal(got, st.wantLeft) {
				t.Errorf("dead letters left = %v, want %v", got, st.wantLeft)
			}
			if got := h.replayed("orders"); !slices.Equal(got, st.wantOnTopic) {
				t.Errorf("replayed = %v, want %v", got, st.wantOnTopic)
			}
		})
	}
	if got := h.deadIDs("audit"); !slices.Equal(got, []string{"x"}) {
		t.Errorf("audit's dead letters = %v, want [x] untouched", got)
	}
}

func TestPurgeDeadLetters(t *testing.T) {
	h := newAdminHarness(t)
	h.storeDead()
	steps := []struct {
		name, query string
		wantPurged  int
		wantLeft    []string
	}{
		{"by id", "?id=a&id=c&id=nope", 2, []string{"b"}},
		{"all", "", 1, nil},
		{"none left", "", 0, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			resp := h.do(http.MethodDelete, "/v1/subscriptions/orders/deadletters"+st.query, "")
			apitest.WantStatus(t, resp, http.StatusOK)
			if got := apitest.DecodeJSON[map[string]int](t, resp); got["purged"] != st.wantPurged || len(got) != 1 {
				t.Errorf("answer = %v, want purged %d", got, st.wantPurged)
			}
			if got := h.deadIDs("orders"); !slices.Equal(got, st.wantLeft) {
				t.Errorf("dead letters left = %v, want %v", got, st.wantLeft)
			}
		})
	}
	if got := h.replayed("orders"); len(got) != 0 {
		t.Errorf("purge replayed %v", got)
	}
	if got := h.deadIDs("audit"); !slices.Equal(got, []string{"x"}) {
		t.Errorf("audit's dead letters = %v, want [x] untouched", got)
	}
}

// problemOf checks resp is a problem with status want whose detail
// mentions mention, and returns it.
func problemOf(t *testing.T, resp *http.Response, want int, mention string) problemBody {
	t.Helper()
	apitest.WantStatus(t, resp, want)
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	p := apitest.DecodeJSON[problemBody](t, resp)
	if p.Status != want || !strings.Contains(p.Detail, mention) {
		t.Errorf("problem = %+v, want status %d and a detail naming %q", p, want, mention)
	}
	return p
}

func TestDeadLetterErrors(t *testing.T) {
	h := newAdminHarness(t)
	plain := newPlainAdminHarness(t)
	h.storeDead()
	tests := []struct {
		name         string
		h            *adminHarness
		method, path string
		body         string
		want         int
		mention      string
	}{
		{"list unknown", h, http.MethodGet, "/v1/subscriptions/nope/deadletters", "", 404, `"nope"`},
		{"replay unknown", h, http.MethodPost, "/v1/subscriptions/nope/deadletters/replay", "{}", 404, `"nope"`},
		{"purge unknown", h, http.MethodDelete, "/v1/subscriptions/nope/deadletters", "", 404, `"nope"`},
		{"no subscriptions", plain, http.MethodGet, "/v1/subscriptions/orders/deadletters", "", 404, `"orders"`},
		{"limit 0", h, http.MethodGet, "/v1/subscriptions/orders/deadletters?limit=0", "", 400, "limit"},
		{"limit 1001", h, http.MethodGet, "/v1/subscriptions/orders/deadletters?limit=1001", "", 400, "limit"},
		{"limit -1", h, http.MethodGet, "/v1/subscriptions/orders/deadletters?limit=-1", "", 400, "limit"},
		{"limit text", h, http.MethodGet, "/v1/subscriptions/orders/deadletters?limit=ten", "", 400, "limit"},
		{"limit empty", h, http.MethodGet, "/v1/subscriptions/orders/deadletters?limit=", "", 400, "limit"},
		{"limit fraction", h, http.MethodGet, "/v1/subscriptions/orders/deadletters?limit=1.5", "", 400, "limit"},
		{"unknown field", h, http.MethodPost, "/v1/subscriptions/orders/deadletters/replay", `{"idz":["a"]}`, 400, "idz"},
		{"not json", h, http.MethodPost, "/v1/subscriptions/orders/deadletters/replay", `ids=a`, 400, "body"},
		{"ids not strings", h, http.MethodPost, "/v1/subscriptions/orders/deadletters/replay", `{"ids":[1]}`, 400, "body"},
		{"empty id", h, http.MethodPost, "/v1/subscriptions/orders/deadletters/replay", `{"ids":["a",""]}`, 400, "ids[1]"},
		{"trailing data", h, http.MethodPost, "/v1/subscriptions/orders/deadletters/replay", `{} {}`, 400, "after"},
		{"too large", h, http.MethodPost, "/v1/subscriptions/orders/deadletters/replay", `{"ids":["` + strings.Repeat("a", maxAdminBody) + `"]}`, 413, "body"},
		{"purge empty id", h, http.MethodDelete, "/v1/subscriptions/orders/deadletters?id=", "", 400, "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problemOf(t, tt.h.do(tt.method, tt.path, tt.body), tt.want, tt.mention)
		})
	}
	if got := h.deadIDs("orders"); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("dead letters after refused requests = %v, want all three", got)
	}
}

func TestDeadLettersBrokerDown(t *testing.T) {
	h := newAdminHarness(t)
	h.storeDead()
	if err := h.b.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, body string
	}{
		{"list", http.MethodGet, "/v1/subscriptions/orders/deadletters", ""},
		{"replay", http.MethodPost, "/v1/subscriptions/orders/deadletters/replay", "{}"},
		{"purge", http.MethodDelete, "/v1/subscriptions/orders/deadletters", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := h.do(tt.method, tt.path, tt.body)
			problemOf(t, resp, http.StatusServiceUnavailable, `"orders"`)
			if resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
}

// TestDeadLetterJSONNames pins the names of a listed dead letter's
// attributes to the ExtDLQ* constants.
func TestDeadLetterJSONNames(t *testing.T) {
	d := deadLetter{Sequence: 7, Event: json.RawMessage(`{}`), Reason: "r", Status: 500, Body: "b",
		Attempts: 3, Subscription: "s", Time: "2024-05-06T07:08:09Z"}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"sequence": 7.0, "event": map[string]any{},
		ExtDLQReason: "r", ExtDLQStatus: 500.0, ExtDLQBody: "b", ExtDLQAttempts: 3.0,
		ExtDLQSubscription: "s", ExtDLQTime: "2024-05-06T07:08:09Z"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("dead letter JSON = %s, want the members %v", b, want)
	}
}

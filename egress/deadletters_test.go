package egress_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventsidecar/eventsidecar/broker"
	"github.com/eventsidecar/eventsidecar/config"
	"github.com/eventsidecar/eventsidecar/egress"
	"github.com/eventsidecar/eventsidecar/wire"
)

func TestDeadLettersList(t *testing.T) {
	b := dlFixture(t)
	tests := []struct {
		name  string
		sub   config.Subscription
		limit int
		want  []string
	}{
		{"default limit", dlSub("orders", false), 0, []string{"o1", "o2", "o3", "o4", "o5"}},
		{"negative limit", dlSub("orders", false), -1, []string{"o1", "o2", "o3", "o4", "o5"}},
		{"limit", dlSub("orders", false), 2, []string{"o1", "o2"}},
		{"shared topic, first subscription", dlSub("a", true), 0, []string{"a1", "a2"}},
		{"shared topic, second subscription", dlSub("b", true), 0, []string{"b1"}},
		{"none", dlSub("empty", false), 0, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dls := dlList(t, egress.NewDeadLetters(b, tt.sub), tt.limit)
			if got := dlIDs(dls); !slices.Equal(got, tt.want) {
				t.Fatalf("ids = %q, want %q", got, tt.want)
			}
			for i, dl := range dls {
				if i > 0 && dl.Sequence <= dls[i-1].Sequence {
					t.Errorf("sequence %d after %d: not oldest first", dl.Sequence, dls[i-1].Sequence)
				}
				want := dlEvent(t, tt.sub.Name, dl.Event.ID())
				if got, wantAttrs := attrs(&dl.Event), attrs(want); !slices.Equal(got, wantAttrs) {
					t.Errorf("attributes = %q, want %q", got, wantAttrs)
				}
				if string(dl.Event.Data()) != string(want.Data()) {
					t.Errorf("data = %s, want %s", dl.Event.Data(), want.Data())
				}
			}
		})
	}
}

func TestDeadLettersListLimits(t *testing.T) {
	b := dlBroker(t)
	sub := dlSub("many", false)
	dlDead(t, b, sub, dlSeq("m", 1001)...)
	d := egress.NewDeadLetters(b, sub)
	tests := []struct {
		name  string
		limit int
		want  int
	}{
		{"default", 0, 100},
		{"at the maximum", 1000, 1000},
		{"above the maximum", 5000, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dlIDs(dlList(t, d, tt.limit))
			if want := dlSeq("m", tt.want); !slices.Equal(got, want) {
				t.Errorf("List(%d) returned %d dead letters, want the first %d", tt.limit, len(got), tt.want)
			}
		})
	}
}

// attrs lists an event's attributes as sorted name=value pairs.
func attrs(ev *event.Event) []string {
	out := []string{"id=" + ev.ID(), "source=" + ev.Source(), "type=" + ev.Type(), "datacontenttype=" + ev.DataContentType()}
	for name, value := range ev.Extensions() {
		out = append(out, fmt.Sprintf("%s=%v", name, value))
	}
	slices.Sort(out)
	return out
}

// checkReplayed checks that the events on the replay topic of name are the
// dead letters with ids, in order, without their dlq* extensions.
func checkReplayed(t *testing.T, b *broker.Client, name string, ids ...string) {
	t.Helper()
	msgs := dlStored(t, b, egress.ReplayTopic(name))
	got := make([]string, len(msgs))
	for i, m := range msgs {
		ev, err := wire.DecodeNATS(m.Header, m.Data)
		if err != nil {
			t.Fatalf("decode replayed event: %v", err)
		}
		got[i] = ev.ID()
		want := dlEvent(t, name, ev.ID())
		for ext := range want.Extensions() {
			if strings.HasPrefix(ext, "dlq") {
				want.SetExtension(ext, nil)
			}
		}
		if g, w := attrs(&ev), attrs(want); !slices.Equal(g, w) {
			t.Errorf("replayed attributes = %q, want %q", g, w)
		}
		if string(ev.Data()) != string(want.Data()) {
			t.Errorf("replayed data = %s, want %s", ev.Data(), want.Data())
		}
	}
	if !slices.Equal(got, ids) {
		t.Errorf("replayed ids = %q, want %q", got, ids)
	}
}

func TestDeadLettersReplay(t *testing.T) {
	b := dlFixture(t)
	orders := egress.NewDeadLetters(b, dlSub("orders", false))
	steps := []struct {
		name      string
		d         *egress.DeadLetters
		ids       []string
		want      int
		left      []string
		replayed  []string
		replayFor string
	}{
		{"by id", orders, []string{"o3", "o1", "missing", "a1"}, 2, []string{"o2", "o4", "o5"}, []string{"o1", "o3"}, "orders"},
		{"all", orders, nil, 3, []string{}, []string{"o1", "o3", "o2", "o4", "o5"}, "orders"},
		{"again", orders, nil, 0, []string{}, []string{"o1", "o3", "o2", "o4", "o5"}, "orders"},
		{"shared topic", egress.NewDeadLetters(b, dlSub("a", true)), []string{}, 2, []string{}, []string{"a1", "a2"}, "a"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			n, err := s.d.Replay(t.Context(), s.ids)
			if err != nil || n != s.want {
				t.Fatalf("Replay(%q) = %d, %v; want %d, nil", s.ids, n, err, s.want)
			}
			if got := dlIDs(dlList(t, s.d, 0)); !slices.Equal(got, s.left) {
				t.Errorf("left = %q, want %q", got, s.left)
			}
			checkReplayed(t, b, s.replayFor, s.replayed...)
		})
	}
	if got := dlIDs(dlList(t, egress.NewDeadLetters(b, dlSub("b", true)), 0)); !slices.Equal(got, []string{"b1"}) {
		t.Errorf("dead letters of b = %q after replaying a's, want [b1]", got)
	}
	if n := len(dlStored(t, b, "deadletter.orders")); n != 1 {
		t.Errorf("%d messages left on deadletter.orders, want 1 (not a CloudEvent, so never touched)", n)
	}
}

func TestDeadLettersReplayAgainAfterDeadLetteredAgain(t *testing.T) {
	b := dlBroker(t)
	sub := dlSub("orders", false)
	d := egress.NewDeadLetters(b, sub)
	for round := 1; round <= 2; round++ {
		dlDead(t, b, sub, "o1")
		if n, err := d.Replay(t.Context(), []string{"o1"}); err != nil || n != 1 {
			t.Fatalf("round %d: Replay = %d, %v; want 1, nil", round, n, err)
		}
	}
	checkReplayed(t, b, "orders", "o1", "o1")
	msgs := dlStored(t, b, egress.ReplayTopic("orders"))
	first, second := msgs[0].Header.Get(jetstream.MsgIDHeader), msgs[1].Header.Get(jetstream.MsgIDHeader)
	if first == "" || first == second {
		t.Errorf("replay message ids %q and %q: want two different, non-empty ids", first, second)
	}
}

func TestDeadLettersConcurrentUseActsOnEachOnce(t *testing.T) {
	tests := []struct {
		name     string
		act      func(*egress.DeadLetters) (int, error)
		replayed bool
	}{
		{"replay", func(d *egress.DeadLetters) (int, error) { return d.Replay(context.Background(), nil) }, true},
		{"purge", func(d *egress.DeadLetters) (int, error) { return d.Purge(context.Background(), nil) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := dlBroker(t)
			sub := dlSub("orders", false)
			ids := dlSeq("o", 50)
			dlDead(t, b, sub, ids...)
			var (
				wg    sync.WaitGroup
				mu    sync.Mutex
				total int
			)
			for range 3 {
				d := egress.NewDeadLetters(b, sub)
				wg.Go(func() {
					n, err := tt.act(d)
					if err != nil {
						t.Errorf("%s: %v", tt.name, err)
					}
					mu.Lock()
					total += n
					mu.Unlock()
				})
			}
			wg.Wait()
			if total != len(ids) {
				t.Errorf("counted %d in all, want %d", total, len(ids))
			}
			if !tt.replayed {
				ids = nil
			}
			checkReplayed(t, b, "orders", ids...)
		})
	}
}

func TestDeadLettersPurge(t *testing.T) {
	b := dlFixture(t)
	orders := egress.NewDeadLetters(b, dlSub("orders", false))
	steps := []struct {
		name string
		d    *egress.DeadLetters
		ids  []string
		want int
		left []string
	}{
		{"by id", orders, []string{"o2", "o5", "b1"}, 2, []string{"o1", "o3", "o4"}},
		{"same ids again", orders, []string{"o2", "o5"}, 0, []string{"o1", "o3", "o4"}},
		{"all", orders, nil, 3, []string{}},
		{"shared topic", egress.NewDeadLetters(b, dlSub("b", true)), nil, 1, []string{}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			n, err := s.d.Purge(t.Context(), s.ids)
			if err != nil || n != s.want {
				t.Fatalf("Purge(%q) = %d, %v; want %d, nil", s.ids, n, err, s.want)
			}
			if got := dlIDs(dlList(t, s.d, 0)); !slices.Equal(got, s.left) {
				t.Errorf("left = %q, want %q", got, s.left)
			}
		})
	}
	if got := dlIDs(dlList(t, egress.NewDeadLetters(b, dlSub("a", true)), 0)); !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("dead letters of a = %q after purging b's, want [a1 a2]", got)
	}
	if n := len(dlStored(t, b, egress.ReplayTopic("orders"))); n != 0 {
		t.Errorf("Purge published %d events to the replay topic, want 0", n)
	}
}

func TestDeadLettersCanceledContext(t *testing.T) {
	b := dlBroker(t)
	sub := dlSub("orders", false)
	dlDead(t, b, sub, "o1")
	d := egress.NewDeadLetters(b, sub)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := d.List(ctx, 0); err == nil {
		t.Error("List with a canceled context succeeded, want an error")
	}
	if n, err := d.Replay(ctx, nil); err == nil || n != 0 {
		t.Errorf("Replay with a canceled context = %d, %v; want 0 and an error", n, err)
	}
	if n, err := d.Purge(ctx, nil); err == nil || n != 0 {
		t.Errorf("Purge with a canceled context = %d, %v; want 0 and an error", n, err)
	}
	if got := dlIDs(dlList(t, d, 0)); !slices.Equal(got, []string{"o1"}) {
		t.Errorf("left = %q, want [o1]", got)
	}
}

func TestReplayTopic(t *testing.T) {
	if got, want := egress.ReplayTopic("orders"), "_replay.orders"; got != want {
		t.Errorf("ReplayTopic(%q) = %q, want %q", "orders", got, want)
	}
}

package dapr

import (
	"fmt"
	"strings"
	"testing"
)

func mustRule(t *testing.T, match, path string) Rule {
	t.Helper()
	r, err := NewRule(match, path)
	if err != nil {
		t.Fatalf("NewRule(%q): %v", match, err)
	}
	return r
}

func TestRoute(t *testing.T) {
	envelope := `{"specversion":"1.0","id":"1","source":"/shop","type":"ship.fast","datacontenttype":"application/json",
		"data":{"weight":7,"dest":"eu","tags":["fragile"]},"topic":"shipments","pubsubname":"pubsub","subject":"s1"}`
	tests := []struct {
		name   string
		rules  [][2]string
		path   string
		ok     bool
		errHas string
	}{
		{"attribute", [][2]string{{`event.type == "ship.fast"`, "/fast"}, {"", "/slow"}}, "/fast", true, ""},
		{"default", [][2]string{{`event.type == "ship.slow"`, "/x"}, {"", "/slow"}}, "/slow", true, ""},
		{"data member", [][2]string{{`event.data.weight > 5`, "/heavy"}}, "/heavy", true, ""},
		{"data member with an int and a float", [][2]string{{`event.data.weight == 7`, "/seven"}}, "/seven", true, ""},
		{"list", [][2]string{{`"fragile" in event.data.tags`, "/careful"}}, "/careful", true, ""},
		{"has", [][2]string{{`has(event.subject) && event.topic == "shipments"`, "/s"}}, "/s", true, ""},
		{"first match wins", [][2]string{{`event.data.dest == "eu"`, "/eu"}, {`true`, "/all"}}, "/eu", true, ""},
		{"no match", [][2]string{{`event.type == "x"`, "/x"}}, "", false, ""},
		{"absent member does not match, next is tried", [][2]string{{`event.data.missing == 1`, "/m"}, {`event.id == "1"`, "/one"}},
			"/one", true, "no such key"},
		{"not a boolean", [][2]string{{`event.type`, "/t"}}, "", false, "not a boolean"},
		{"undeclared name, as Dapr declares it", [][2]string{{`other == 1 || event.type == "ship.fast"`, "/o"}}, "/o", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rules []Rule
			for _, r := range tt.rules {
				rules = append(rules, mustRule(t, r[0], r[1]))
			}
			path, ok, err := Route(rules, []byte(envelope))
			if path != tt.path || ok != tt.ok {
				t.Errorf("Route = %q, %v, want %q, %v", path, ok, tt.path, tt.ok)
			}
			if (tt.errHas == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.errHas)) {
				t.Errorf("Route error = %v, want one containing %q", err, tt.errHas)
			}
		})
	}
}

func TestRouteDefaultOnlyReadsNothing(t *testing.T) {
	path, ok, err := Route([]Rule{{Path: "/d"}}, []byte("not JSON"))
	if path != "/d" || !ok || err != nil {
		t.Errorf("Route = %q, %v, %v; want /d", path, ok, err)
	}
}

func TestCompileErrorNamesTheExpression(t *testing.T) {
	for _, src := range []string{`event.type ==`, `event.type == "a" &&`, `size(1, 2, 3)`} {
		_, err := Compile(src)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("match %q", src)) {
			t.Errorf("Compile(%q) = %v, want an error naming it", src, err)
		}
	}
}

package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env returns a lookup function over vars.
func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// validSub is a subscription that passes Validate.
func validSub(name string) Subscription {
	s := DefaultSubscription()
	s.Name = name
	s.Topic = "orders.>"
	s.Endpoint = "http://127.0.0.1:8080/events"
	return s
}

func TestLoadEmptyPathIsDefault(t *testing.T) {
	got, err := Load("")
	if err != nil {
		t.Fatalf("Load(\"\"): %v", err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(\"\") = %+v, want %+v", got, want)
	}
}

func TestLoadExample(t *testing.T) {
	tests := []struct {
		name  string
		token string
	}{
		{name: "token unset", token: ""},
		{name: "token set", token: "s3cr3t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("EVENTSIDECAR_API_TOKEN", tt.token)
			got, err := Load("../config.example.yaml")
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			want := Default()
			want.HTTP.APIToken = tt.token
			want.Subscriptions = []Subscription{validSub("orders-handler")}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestLoadErrorNamesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(path, []byte("http:\n  nope: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		want       []string
	}{
		{name: "missing file", path: filepath.Join(dir, "missing.yaml"), want: []string{"config: ", "missing.yaml"}},
		{name: "unknown key", path: path, want: []string{"config: " + path + ": line 2: http: unknown key \"nope\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.path)
			if err == nil {
				t.Fatal("Load: no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"SET": "value", "EMPTY": ""}
	tests := []struct {
		name, in, want, wantErr string
	}{
		{name: "set", in: "a: ${SET}\n", want: "a: value\n"},
		{name: "unset is empty", in: "a: ${UNSET}\n", want: "a: \n"},
		{name: "default when unset", in: "a: ${UNSET:-dflt}", want: "a: dflt"},
		{name: "default when empty", in: "a: ${EMPTY:-dflt}", want: "a: dflt"},
		{name: "set ignores default", in: "a: ${SET:-dflt}", want: "a: value"},
		{name: "empty default", in: "a: ${UNSET:-}", want: "a: "},
		{name: "default with colon", in: "a: ${UNSET:-127.0.0.1:80}", want: "a: 127.0.0.1:80"},
		{name: "several on a line", in: "a: ${SET}-${SET}", want: "a: value-value"},
		{name: "dollar dollar is not special", in: "a: $${SET}", want: "a: $value"},
		{name: "lone dollar", in: "a: $SET $ {x}", want: "a: $SET $ {x}"},
		{name: "closing brace only", in: "a: }", want: "a: }"},
		{name: "unterminated", in: "a: 1\nb: 2\nc: x${SET\n", wantErr: `line 3: unterminated "${" at column 5`},
		{name: "brace on next line", in: "a: ${SET\n}\n", wantErr: "line 1: unterminated"},
		{name: "empty name", in: "a: ${}", wantErr: "line 1: column 4: invalid variable reference"},
		{name: "bad name", in: "a: ${1X}", wantErr: "invalid variable reference"},
		{name: "other shell form", in: "a: ${SET-x}", wantErr: "invalid variable reference"},
		{name: "nested default", in: "a: ${UNSET:-${SET}}", wantErr: `a default cannot contain "${"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expand([]byte(tt.in), env(vars))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("expand(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("expand(%q): %v", tt.in, err)
			}
			if string(got) != tt.want {
				t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseExpandsEnvironment(t *testing.T) {
	in := "app_id: ${APP:-fallback}\nbroker:\n  max_pending: ${PENDING:-2048}\ngrpc:\n  listen: ${GRPC_LISTEN}\n"
	tests := []struct {
		name string
		vars map[string]string
		want func(*Config)
	}{
		{name: "defaults", vars: nil, want: func(c *Config) {
			c.AppID, c.Broker.MaxPending, c.GRPC.Listen = "fallback", 2048, ""
		}},
		{name: "set", vars: map[string]string{"APP": "orders", "PENDING": "5000", "GRPC_LISTEN": ":9000"}, want: func(c *Config) {
			c.AppID, c.Broker.MaxPending, c.GRPC.Listen = "orders", 5000, ":9000"
		}},
		{name: "empty uses default", vars: map[string]string{"APP": "", "PENDING": ""}, want: func(c *Config) {
			c.AppID, c.Broker.MaxPending, c.GRPC.Listen = "fallback", 2048, ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(in), env(tt.vars))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     func(*Config)
	}{
		{name: "empty file", in: "", want: func(*Config) {}},
		{name: "comments only", in: "# nothing\n", want: func(*Config) {}},
		{name: "empty section keeps defaults", in: "http:\nbroker:\n", want: func(*Config) {}},
		{name: "partial section keeps other defaults", in: "http:\n  listen: 0.0.0.0:80\n", want: func(c *Config) {
			c.HTTP.Listen = "0.0.0.0:80"
		}},
		{name: "no value is the empty string", in: "grpc:\n  listen:\nhttp:\n  api_token: ~\n", want: func(c *Config) {
			c.GRPC.Listen = ""
		}},
		{name: "empty lists are nil", in: "scopes:\n  publish: []\n", want: func(*Config) {}},
		{name: "durations", in: "broker:\n  duplicate_window: 1h30m\n  publish_timeout: 250ms\n", want: func(c *Config) {
			c.Broker.DuplicateWindow, c.Broker.PublishTimeout = 90*time.Minute, 250*time.Millisecond
		}},
		{name: "scopes", in: "scopes:\n  publish: [\"orders.*\", \"audit.>\"]\n", want: func(c *Config) {
			c.Scopes.Publish = []string{"orders.*", "audit.>"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in), nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := Default()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseSubscriptionDefaultsPerEntry(t *testing.T) {
	in := `
subscriptions:
  - name: a
    topic: a.>
    endpoint: http://127.0.0.1:1/a
    retry:
      max_attempts: 3
  - name: b
    topic: b.*
    endpoint: https://example.com/b
    content_mode: structured
    types: [x.created]
    timeout: 2s
  - &base
    name: c
    topic: c
    endpoint: http://127.0.0.1:1/c
    max_in_flight: 4
  - <<: *base
    name: d
`
	got, err := Parse([]byte(in), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	a, b, c, d := DefaultSubscription(), DefaultSubscription(), DefaultSubscription(), DefaultSubscription()
	a.Name, a.Topic, a.Endpoint, a.Retry.MaxAttempts = "a", "a.>", "http://127.0.0.1:1/a", 3
	b.Name, b.Topic, b.Endpoint, b.ContentMode, b.Types, b.Timeout = "b", "b.*", "https://example.com/b", "structured", []string{"x.created"}, 2*time.Second
	c.Name, c.Topic, c.Endpoint, c.MaxInFlight = "c", "c", "http://127.0.0.1:1/c", 4
	d.Name, d.Topic, d.Endpoint, d.MaxInFlight = "d", "c", "http://127.0.0.1:1/c", 4
	want := []Subscription{a, b, c, d}
	if !reflect.DeepEqual(got.Subscriptions, want) {
		t.Errorf("got  %+v\nwant %+v", got.Subscriptions, want)
	}
}

func TestParseErrors(t *testing.T) {
	sub := "subscriptions:\n  - name: s\n    topic: t\n    endpoint: http://h/\n"
	tests := []struct {
		name, in string
		want     []string
	}{
		{name: "unknown key at root", in: "app_id: x\nfoo: 1\n", want: []string{`line 2: unknown key "foo"`}},
		{name: "unknown key in section", in: "http:\n  listen: :1\n  foo: 1\n", want: []string{`line 3: http: unknown key "foo"`}},
		{name: "unknown key in subscription", in: sub + "    foo: 1\n", want: []string{`line 5: subscriptions[0]: unknown key "foo"`}},
		{name: "unknown key in retry", in: sub + "    retry:\n      tries: 1\n", want: []string{`line 6: subscriptions[0].retry: unknown key "tries"`}},
		{name: "suggests the key", in: "http:\n  maxEventBytes: 1\n", want: []string{`unknown key "maxEventBytes" (did you mean "max_event_bytes"?)`}},
		{name: "every unknown key", in: "a: 1\nb: 2\n", want: []string{`line 1: unknown key "a"`, `line 2: unknown key "b"`}},
		{name: "repeated key", in: "http:\n  listen: :1\n  listen: :2\n", want: []string{`line 3: http: key "listen" is repeated (first at line 2)`}},
		{name: "bad duration", in: "http:\n  read_timeout: 10 seconds\n", want: []string{`line 2: http.read_timeout: must be a duration such as "250ms" or "30s", got "10 seconds"`}},
		{name: "duration without unit", in: "broker:\n  publish_timeout: 5\n", want: []string{`line 2: broker.publish_timeout: must be a duration`}},
		{name: "bad duration in subscription", in: sub + "    retry:\n      max_backoff: soon\n", want: []string{`line 6: subscriptions[0].retry.max_backoff: must be a duration`}},
		{name: "bad integer", in: "broker:\n  replicas: three\n", want: []string{`line 2: broker.replicas: must be an integer, got "three"`}},
		{name: "bad bool", in: sub + "    ordered_by_key: maybe\n", want: []string{`line 5: subscriptions[0].ordered_by_key: must be true or false`}},
		{name: "bad float", in: sub + "    retry:\n      multiplier: lots\n", want: []string{`subscriptions[0].retry.multiplier: must be a number`}},
		{name: "no value for an integer", in: "broker:\n  replicas:\n", want: []string{`line 2: broker.replicas: has no value`}},
		{name: "list for a string", in: "app_id: [a]\n", want: []string{`line 1: app_id: must be a string`}},
		{name: "string for a section", in: "http: yes\n", want: []string{`line 1: http: must be a mapping`}},
		{name: "string for a list", in: "subscriptions: x\n", want: []string{`line 1: subscriptions: must be a list`}},
		{name: "empty list entry", in: "subscriptions:\n  -\n", want: []string{`line 2: subscriptions[0]: is empty`}},
		{name: "not a mapping", in: "just text\n", want: []string{`line 1: must be a mapping`}},
		{name: "syntax error", in: "http:\n  listen: [\n", want: []string{"line "}},
		{name: "two documents", in: "app_id: a\n---\napp_id: b\n", want: []string{"single YAML document"}},
		{name: "merge of itself", in: "http: &h\n  <<: *h\n", want: []string{"config: "}},
		{name: "validation has lines", in: sub + "    content_mode: fancy\n", want: []string{`line 5: subscriptions[0].content_mode: must be one of binary, structured, got "fancy"`}},
		{name: "validation of a set key has its line", in: "broker:\n  max_pending: 1\n", want: []string{`line 2: broker.max_pending: must be at least http.max_batch_events (1000), got 1`}},
		{name: "validation of a default key has no line", in: "broker:\n  publish_timeout: 40s\n", want: []string{`config: http.write_timeout: must be greater than broker.publish_timeout (40s), got 30s`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in), nil)
			if err == nil {
				t.Fatal("Parse: no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseValidationErrorIsReachable(t *testing.T) {
	_, err := Parse([]byte("http:\n  listen: nope\nlog:\n  level: loud\n"), nil)
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	want := []Problem{
		{Line: 2, Key: "http.listen", Message: `must be host:port such as "127.0.0.1:3600", got "nope"`},
		{Line: 4, Key: "log.level", Message: `must be one of debug, info, warn, error, got "loud"`},
	}
	if !reflect.DeepEqual(verr.Problems, want) {
		t.Errorf("problems = %+v, want %+v", verr.Problems, want)
	}
}

func TestParseNeverEchoesSecrets(t *testing.T) {
	const secret = "s3cr3tVALUE"
	tests := []struct {
		name string
		in   string
		vars map[string]string
	}{
		{name: "expanded value breaks YAML", in: "http:\n  api_token: ${TOKEN}\n", vars: map[string]string{"TOKEN": "*" + secret}},
		{name: "expanded value breaks flow YAML", in: "http:\n  api_token: ${TOKEN}\n", vars: map[string]string{"TOKEN": "[" + secret}},
		{name: "unterminated reference", in: "http:\n  api_token: " + secret + "${X\n"},
		{name: "bad reference", in: "http:\n  api_token: ${" + secret + " x}\n"},
		{name: "mapping for a token", in: "broker:\n  token: {a: " + secret + "}\n"},
		{name: "bad signing secret", in: "subscriptions:\n  - {name: s, topic: t, endpoint: 'http://h/', signing_secret: " + secret + "}\n"},
		{name: "bad base64 signing secret", in: "subscriptions:\n  - {name: s, topic: t, endpoint: 'http://h/', signing_secret: whsec_" + secret + "!}\n"},
		{name: "auth conflict", in: "broker:\n  url: nats://h:4222\n  token: " + secret + "\n  password: " + secret + "\n"},
		{name: "password without user", in: "broker:\n  password: " + secret + "\n"},
		{name: "credentials in broker url", in: "broker:\n  url: http://u:" + secret + "@h:4222\n"},
		{name: "unparsable broker url", in: "broker:\n  url: \"nats://u:" + secret + "@h:99999999999999999999x\"\n"},
		{name: "credentials in endpoint", in: "subscriptions:\n  - {name: s, topic: t, endpoint: 'ftp://u:" + secret + "@h/'}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in), env(tt.vars))
			if err == nil {
				t.Fatal("Parse: no error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the secret", err)
			}
		})
	}
}

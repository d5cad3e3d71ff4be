package config

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// validConfig is Default with one valid subscription.
func validConfig() Config {
	c := Default()
	c.Subscriptions = []Subscription{validSub("orders-handler")}
	return c
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{name: "default", mutate: func(c *Config) { *c = Default() }},
		{name: "one subscription", mutate: func(*Config) {}},
		{name: "gRPC disabled", mutate: func(c *Config) { c.GRPC.Listen = "" }},
		{name: "any interface, port 0", mutate: func(c *Config) { c.HTTP.Listen, c.GRPC.Listen = ":0", ":0" }},
		{name: "IPv6 listen", mutate: func(c *Config) { c.HTTP.Listen = "[::1]:3600" }},
		{name: "external broker without store dir", mutate: func(c *Config) {
			c.Broker.URL, c.Broker.Embedded.StoreDir = "nats://a:4222, tls://b:4222,ws://c,wss://d", ""
		}},
		{name: "embedded listen", mutate: func(c *Config) { c.Broker.Embedded.Listen = "127.0.0.1:4222" }},
		{name: "user without password", mutate: func(c *Config) { c.Broker.User = "me" }},
		{name: "user and password", mutate: func(c *Config) { c.Broker.User, c.Broker.Password = "me", "pw" }},
		{name: "tls files", mutate: func(c *Config) {
			c.Broker.TLS = TLS{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem"}
		}},
		{name: "scopes", mutate: func(c *Config) { c.Scopes.Publish = []string{"orders.*", "audit.>", ">", "a-b_c.D9"} }},
		{name: "two subscriptions", mutate: func(c *Config) {
			c.Subscriptions = append(c.Subscriptions, validSub("audit_2"))
		}},
		{name: "subscription options", mutate: func(c *Config) {
			s := &c.Subscriptions[0]
			s.Endpoint, s.ContentMode, s.Types = "https://app.internal:8443/hook?x=1", "structured", []string{"a.b"}
			s.DeadLetterTopic, s.SigningSecret = "dlq.orders", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
			s.Retry = Retry{MaxAttempts: 1, InitialBackoff: time.Second, MaxBackoff: time.Second, Multiplier: 1}
		}},
		{name: "gRPC-only subscription", mutate: func(c *Config) { c.Subscriptions[0].Endpoint = "" }},
		{name: "other enums", mutate: func(c *Config) { c.Tracing.Exporter, c.Log.Level = "otlp", "debug" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // the key path and the start of the message
	}{
		{"app_id empty", func(c *Config) { c.AppID = "" }, "app_id: must be"},
		{"app_id chars", func(c *Config) { c.AppID = "my app" }, "app_id: must be"},
		{"http.listen", func(c *Config) { c.HTTP.Listen = "localhost" }, "http.listen: must be host:port"},
		{"http.listen port", func(c *Config) { c.HTTP.Listen = "127.0.0.1:70000" }, "http.listen: port must be a number"},
		{"grpc.listen", func(c *Config) { c.GRPC.Listen = "3601" }, "grpc.listen: must be host:port"},
		{"http.health_listen", func(c *Config) { c.HTTP.HealthListen = "3609" }, "http.health_listen: must be host:port"},
		{"http.health_listen same as http", func(c *Config) { c.HTTP.HealthListen = c.HTTP.Listen }, "http.health_listen: must differ from http.listen"},
		{"grpc.listen same as http", func(c *Config) { c.GRPC.Listen = c.HTTP.Listen }, "grpc.listen: must differ from http.listen"},
		{"max_event_bytes", func(c *Config) { c.HTTP.MaxEventBytes = 0 }, "http.max_event_bytes: must be > 0"},
		{"max_batch_events", func(c *Config) { c.HTTP.MaxBatchEvents = -1 }, "http.max_batch_events: must be > 0"},
		{"max_batch_bytes", func(c *Config) { c.HTTP.MaxBatchBytes = 0 }, "http.max_batch_bytes: must be > 0"},
		{"max_in_flight_bytes", func(c *Config) { c.HTTP.MaxInFlightBytes = c.HTTP.MaxBatchBytes - 1 }, "http.max_in_flight_bytes: must be at least"},
		{"read_timeout", func(c *Config) { c.HTTP.ReadTimeout = 0 }, "http.read_timeout: must be > 0"},
		{"write_timeout", func(c *Config) { c.HTTP.WriteTimeout = -time.Second }, "http.write_timeout: must be > 0"},
		{"idle_timeout", func(c *Config) { c.HTTP.IdleTimeout = 0 }, "http.idle_timeout: must be > 0"},
		{"shutdown_timeout", func(c *Config) { c.HTTP.ShutdownTimeout = 0 }, "http.shutdown_timeout: must be > 0"},
		{"write_timeout vs publish_timeout", func(c *Config) { c.HTTP.WriteTimeout = 5 * time.Second }, "http.write_timeout: must be greater than broker.publish_timeout (5s), got 5s"},
		{"max_pending", func(c *Config) { c.Broker.MaxPending = 0 }, "broker.max_pending: must be > 0"},
		{"max_pending vs batch", func(c *Config) { c.Broker.MaxPending = 999 }, "broker.max_pending: must be at least http.max_batch_events (1000)"},
		{"broker.url scheme", func(c *Config) { c.Broker.URL = "nats://a:1,http://b:2" }, `broker.url: entry 2: scheme "http" is not one of nats, tls, ws, wss`},
		{"broker.url no scheme", func(c *Config) { c.Broker.URL = "localhost:4222" }, "broker.url: entry 1 must be a URL"},
		{"broker.url empty entry", func(c *Config) { c.Broker.URL = "nats://a:1," }, "broker.url: entry 2 must be a URL"},
		{"broker.url no host", func(c *Config) { c.Broker.URL = "nats://" }, "broker.url: entry 1 has no host"},
		{"stream empty", func(c *Config) { c.Broker.Stream = "" }, "broker.stream: must not be empty"},
		{"stream dot", func(c *Config) { c.Broker.Stream = "EV.ENTS" }, `broker.stream: "EV.ENTS" contains "."`},
		{"stream space", func(c *Config) { c.Broker.Stream = "EV ENTS" }, `broker.stream: "EV ENTS" contains " "`},
		{"stream star", func(c *Config) { c.Broker.Stream = "EV*" }, `broker.stream: "EV*" contains "*"`},
		{"stream gt", func(c *Config) { c.Broker.Stream = "EV>" }, `broker.stream: "EV>" contains ">"`},
		{"stream slash", func(c *Config) { c.Broker.Stream = "a/b" }, `broker.stream: "a/b" contains "/"`},
		{"stream backslash", func(c *Config) { c.Broker.Stream = `a\b` }, `broker.stream: "a\\b" contains "\\"`},
		{"subject_prefix empty", func(c *Config) { c.Broker.SubjectPrefix = "" }, "broker.subject_prefix: is empty"},
		{"subject_prefix empty token", func(c *Config) { c.Broker.SubjectPrefix = "a..b" }, "broker.subject_prefix: token 2 is empty"},
		{"subject_prefix wildcard", func(c *Config) { c.Broker.SubjectPrefix = "a.>" }, `broker.subject_prefix: token 2 (">") contains ">"`},
		{"replicas 0", func(c *Config) { c.Broker.Replicas = 0 }, "broker.replicas: must be from 1 to 5, got 0"},
		{"replicas 6", func(c *Config) { c.Broker.Replicas = 6 }, "broker.replicas: must be from 1 to 5, got 6"},
		{"duplicate_window", func(c *Config) { c.Broker.DuplicateWindow = 0 }, "broker.duplicate_window: must be > 0"},
		{"publish_timeout", func(c *Config) { c.Broker.PublishTimeout = 0 }, "broker.publish_timeout: must be > 0"},
		{"store_dir", func(c *Config) { c.Broker.Embedded.StoreDir = "" }, "broker.embedded.store_dir: must not be empty when broker.url is empty"},
		{"embedded.listen", func(c *Config) { c.Broker.Embedded.Listen = "4222" }, "broker.embedded.listen: must be host:port"},
		{"credentials and token", func(c *Config) { c.Broker.CredentialsFile, c.Broker.Token = "a.creds", "t" }, "broker.token: conflicts with broker.credentials_file"},
		{"nkey and user", func(c *Config) { c.Broker.NkeySeedFile, c.Broker.User = "seed", "u" }, "broker.user: conflicts with broker.nkey_seed_file"},
		{"user and token", func(c *Config) { c.Broker.User, c.Broker.Token = "u", "t" }, "broker.token: conflicts with broker.user"},
		{"password without user", func(c *Config) { c.Broker.Password = "p" }, "broker.password: requires broker.user"},
		{"cert without key", func(c *Config) { c.Broker.TLS.CertFile = "c.pem" }, "broker.tls.key_file: is required with broker.tls.cert_file"},
		{"key without cert", func(c *Config) { c.Broker.TLS.KeyFile = "k.pem" }, "broker.tls.cert_file: is required with broker.tls.key_file"},
		{"scope pattern", func(c *Config) { c.Scopes.Publish = []string{"a.*", ">.a"} }, `scopes.publish[1]: token 1 is ">"`},
		{"scope empty", func(c *Config) { c.Scopes.Publish = []string{""} }, "scopes.publish[0]: is empty"},
		{"name empty", func(c *Config) { c.Subscriptions[0].Name = "" }, "subscriptions[0].name: is required"},
		{"name chars", func(c *Config) { c.Subscriptions[0].Name = "a.b" }, `subscriptions[0].name: must be one or more of`},
		{"name duplicate", func(c *Config) {
			c.Subscriptions = append(c.Subscriptions, validSub("x"), validSub("orders-handler"))
		}, `subscriptions[2].name: "orders-handler" is also the name of subscriptions[0]`},
		{"topic empty", func(c *Config) { c.Subscriptions[0].Topic = "" }, "subscriptions[0].topic: is empty"},
		{"topic partial wildcard", func(c *Config) { c.Subscriptions[0].Topic = "orders.a*" }, `subscriptions[0].topic: token 2 ("a*") contains "*"`},
		{"types entry empty", func(c *Config) { c.Subscriptions[0].Types = []string{"a", ""} }, "subscriptions[0].types[1]: must not be empty"},
		{"endpoint empty without gRPC", func(c *Config) { c.Subscriptions[0].Endpoint, c.GRPC.Listen = "", "" }, "subscriptions[0].endpoint: is required when grpc.listen is empty"},
		{"endpoint relative", func(c *Config) { c.Subscriptions[0].Endpoint = "/events" }, "subscriptions[0].endpoint: must be an absolute http:// or https:// URL"},
		{"endpoint scheme", func(c *Config) { c.Subscriptions[0].Endpoint = "ftp://h/x" }, "subscriptions[0].endpoint: must be an absolute"},
		{"endpoint no host", func(c *Config) { c.Subscriptions[0].Endpoint = "http:///x" }, "subscriptions[0].endpoint: has no host"},
		{"content_mode", func(c *Config) { c.Subscriptions[0].ContentMode = "Binary" }, `subscriptions[0].content_mode: must be one of binary, structured, got "Binary"`},
		{"max_in_flight", func(c *Config) { c.Subscriptions[0].MaxInFlight = 0 }, "subscriptions[0].max_in_flight: must be >= 1"},
		{"timeout", func(c *Config) { c.Subscriptions[0].Timeout = 0 }, "subscriptions[0].timeout: must be > 0"},
		{"max_attempts", func(c *Config) { c.Subscriptions[0].Retry.MaxAttempts = 0 }, "subscriptions[0].retry.max_attempts: must be >= 1"},
		{"initial_backoff", func(c *Config) {
			c.Subscriptions[0].Retry.InitialBackoff, c.Subscriptions[0].Retry.MaxBackoff = 0, 0
		}, "subscriptions[0].retry.initial_backoff: must be > 0"},
		{"max_backoff", func(c *Config) { c.Subscriptions[0].Retry.MaxBackoff = 100 * time.Millisecond }, "subscriptions[0].retry.max_backoff: must be at least initial_backoff (200ms), got 100ms"},
		{"multiplier", func(c *Config) { c.Subscriptions[0].Retry.Multiplier = 0.5 }, "subscriptions[0].retry.multiplier: must be a number >= 1, got 0.5"},
		{"multiplier NaN", func(c *Config) { c.Subscriptions[0].Retry.Multiplier = math.NaN() }, "subscriptions[0].retry.multiplier: must be a number >= 1"},
		{"multiplier Inf", func(c *Config) { c.Subscriptions[0].Retry.Multiplier = math.Inf(1) }, "subscriptions[0].retry.multiplier: must be a number >= 1"},
		{"dead_letter_topic wildcard", func(c *Config) { c.Subscriptions[0].DeadLetterTopic = "dlq.*" }, `subscriptions[0].dead_letter_topic: contains "*"`},
		{"dead_letter_topic reserved", func(c *Config) { c.Subscriptions[0].DeadLetterTopic = "_dlq" }, `subscriptions[0].dead_letter_topic: must not start with "_"`},
		{"signing_secret prefix", func(c *Config) { c.Subscriptions[0].SigningSecret = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }, `subscriptions[0].signing_secret: must be "whsec_" followed by base64`},
		{"signing_secret base64", func(c *Config) { c.Subscriptions[0].SigningSecret = "whsec_not base64!" }, `subscriptions[0].signing_secret: must be "whsec_"`},
		{"signing_secret empty base64", func(c *Config) { c.Subscriptions[0].SigningSecret = "whsec_" }, `subscriptions[0].signing_secret: must be "whsec_"`},
		{"tracing.exporter", func(c *Config) { c.Tracing.Exporter = "jaeger" }, `tracing.exporter: must be one of none, otlp, stdout, got "jaeger"`},
		{"log.level", func(c *Config) { c.Log.Level = "INFO" }, `log.level: must be one of debug, info, warn, error, got "INFO"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate: no error")
			}
			if !strings.HasPrefix(err.Error(), "config: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := validConfig()
	c.AppID, c.Broker.Replicas, c.Subscriptions[0].Timeout = "", 9, 0
	err := c.Validate()
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	var keys []string
	for _, p := range verr.Problems {
		keys = append(keys, p.Key)
	}
	if got, want := strings.Join(keys, ","), "app_id,broker.replicas,subscriptions[0].timeout"; got != want {
		t.Errorf("problem keys = %s, want %s", got, want)
	}
}

func TestSubscriptionValidate(t *testing.T) {
	s := DefaultSubscription()
	s.Name, s.Topic = "adhoc", "orders.>"
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate of a gRPC-only subscription: %v", err)
	}
	s.Name, s.Retry.MaxAttempts, s.Endpoint = "a.b", 0, "ftp://h/"
	err := s.Validate()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v, want a *ValidationError", err)
	}
	var keys []string
	for _, p := range ve.Problems {
		keys = append(keys, p.Key)
	}
	if want := []string{"name", "endpoint", "retry.max_attempts"}; !slices.Equal(keys, want) {
		t.Errorf("problem keys = %q, want %q", keys, want)
	}
}

func TestValidTopic(t *testing.T) {
	tests := []struct {
		topic, wantErr string
	}{
		{topic: "orders"},
		{topic: "orders.created"},
		{topic: "a-b_c.D.9"},
		{topic: "_replay.x"},
		{topic: strings.Repeat("a", 255)},
		{topic: "", wantErr: "is empty"},
		{topic: strings.Repeat("a", 256), wantErr: "is 256 bytes long, more than 255"},
		{topic: ".a", wantErr: "token 1 is empty"},
		{topic: "a..b", wantErr: "token 2 is empty"},
		{topic: "a.", wantErr: "token 2 is empty"},
		{topic: "a.*", wantErr: `contains "*": wildcards cannot be published to`},
		{topic: "a.>", wantErr: `contains ">": wildcards cannot be published to`},
		{topic: "a b", wantErr: `token 1 ("a b") contains " "; allowed are A-Z, a-z, 0-9, "_" and "-"`},
		{topic: "a/b", wantErr: `contains "/"`},
		{topic: "café", wantErr: `contains "é"`},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			checkReason(t, ValidTopic(tt.topic), tt.wantErr)
		})
	}
}

func TestValidPattern(t *testing.T) {
	tests := []struct {
		pattern, wantErr string
	}{
		{pattern: "orders"},
		{pattern: "*"},
		{pattern: ">"},
		{pattern: "orders.*.x"},
		{pattern: "orders.>"},
		{pattern: "*.*.>"},
		{pattern: "", wantErr: "is empty"},
		{pattern: "a..>", wantErr: "token 2 is empty"},
		{pattern: ">.a", wantErr: `token 1 is ">", which is allowed only as the last token`},
		{pattern: "a.b*", wantErr: `token 2 ("b*") contains "*"; allowed are A-Z, a-z, 0-9, "_" and "-", and "*" or ">" only as a whole token`},
		{pattern: "a.>>", wantErr: `token 2 (">>") contains ">"`},
		{pattern: "a b.>", wantErr: `contains " "`},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			checkReason(t, ValidPattern(tt.pattern), tt.wantErr)
		})
	}
}

func checkReason(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("error %q, want nil", err)
	case want != "" && err == nil:
		t.Errorf("no error, want %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("error %q, want it to contain %q", err, want)
	}
}

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		pattern, topic string
		want           bool
	}{
		{"a", "a", true},
		{"a", "b", false},
		{"a", "a.b", false},
		{"a.b", "a", false},
		{"a.*", "a.b", true},
		{"a.*", "a", false},
		{"a.*", "a.b.c", false},
		{"*.b", "a.b", true},
		{"a.>", "a.b", true},
		{"a.>", "a.b.c", true},
		{"a.>", "a", false},
		{">", "a", true},
		{">", "a.b.c", true},
		{"*.>", "a", false},
		{"*.>", "a.b", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.topic, func(t *testing.T) {
			if got := MatchPattern(tt.pattern, tt.topic); got != tt.want {
				t.Errorf("MatchPattern(%q, %q) = %v, want %v", tt.pattern, tt.topic, got, tt.want)
			}
		})
	}
}

func TestDeadLetter(t *testing.T) {
	tests := []struct {
		name string
		sub  Subscription
		want string
	}{
		{name: "default", sub: Subscription{Name: "orders-handler"}, want: "deadletter.orders-handler"},
		{name: "set", sub: Subscription{Name: "x", DeadLetterTopic: "dlq.x"}, want: "dlq.x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.sub.DeadLetter(); got != tt.want {
				t.Errorf("DeadLetter() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDefaultSource(t *testing.T) {
	c := Default()
	c.AppID = "orders"
	if got, want := c.DefaultSource(), "/eventsidecar/orders"; got != want {
		t.Errorf("DefaultSource() = %q, want %q", got, want)
	}
}

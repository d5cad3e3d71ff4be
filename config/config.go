// Package config is the sidecar's configuration: one struct tree decoded from
// YAML (with ${VAR} and ${VAR:-default} expanded from the environment),
// defaults set before decoding, and validation whose errors name the key.
package config

import "time"

// Config is the whole configuration. The zero value is not usable; start
// from Default or Load.
type Config struct {
	// AppID names this app. Default "app". The default event source is
	// "/eventsidecar/<app_id>".
	AppID string `yaml:"app_id"`
	// HTTP is the HTTP API listener.
	HTTP HTTP `yaml:"http"`
	// GRPC is the gRPC API listener.
	GRPC GRPC `yaml:"grpc"`
	// Broker is the NATS JetStream connection, or the embedded server.
	Broker Broker `yaml:"broker"`
	// Scopes limits what this app may do.
	Scopes Scopes `yaml:"scopes"`
	// Subscriptions are the event deliveries to the app. Default none.
	Subscriptions []Subscription `yaml:"subscriptions"`
	// Dapr configures the Dapr-compatible API (contract §9).
	Dapr Dapr `yaml:"dapr"`
	// Tracing selects the OpenTelemetry exporter.
	Tracing Tracing `yaml:"tracing"`
	// Log sets the log level.
	Log Log `yaml:"log"`
}

// HTTP configures the HTTP API.
type HTTP struct {
	// Listen is the address of the HTTP API. Default "127.0.0.1:3600".
	Listen string `yaml:"listen"`
	// HealthListen, when set (e.g. "0.0.0.0:3609"), serves /healthz and
	// /readyz, and nothing else, on a second address, so that a kubelet's
	// probes reach them on the pod IP while the API stays on loopback.
	// Default "" (off).
	HealthListen string `yaml:"health_listen"`
	// APIToken, when set, is required as "Authorization: Bearer <token>" on
	// every /v1 request. Default "" (no token).
	APIToken string `yaml:"api_token"`
	// MaxEventBytes bounds one event (structured JSON, or a binary/raw body).
	// Default 1048576 (1 MiB).
	MaxEventBytes int64 `yaml:"max_event_bytes"`
	// MaxBatchEvents bounds the number of events in one batch. Default 1000.
	MaxBatchEvents int `yaml:"max_batch_events"`
	// MaxBatchBytes bounds a whole batch request body. Default 16777216
	// (16 MiB).
	MaxBatchBytes int64 `yaml:"max_batch_bytes"`
	// MaxInFlightBytes bounds the request bodies held at once by publishes
	// that are being read or are waiting for the broker; beyond it publishes
	// answer 429, so memory stays flat under overload. Default 67108864
	// (64 MiB); it must be at least max_batch_bytes and max_event_bytes.
	MaxInFlightBytes int64 `yaml:"max_in_flight_bytes"`
	// ReadTimeout bounds reading a whole request. Default 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds a request from the end of its headers to the end of
	// its response. Default 30s; it must exceed broker.publish_timeout.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout bounds an idle keep-alive connection. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ShutdownTimeout bounds the graceful shutdown of in-flight requests.
	// Default 15s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Limits are the bounds of one publish, over HTTP and gRPC alike. They are
// set by the keys http.max_event_bytes and http.max_batch_events, which
// name them in every error; see Config.Limits.
type Limits struct {
	// MaxEventBytes bounds one event, in bytes: the body of a single-event
	// HTTP request, every event once decoded (a batch's entries included)
	// and every protobuf CloudEvent over gRPC.
	MaxEventBytes int64
	// MaxBatchEvents bounds the number of events in one batch.
	MaxBatchEvents int
}

// Limits returns the bounds of one publish, from c.HTTP.
func (c Config) Limits() Limits {
	return Limits{MaxEventBytes: c.HTTP.MaxEventBytes, MaxBatchEvents: c.HTTP.MaxBatchEvents}
}

// GRPC configures the gRPC API.
type GRPC struct {
	// Listen is the address of the gRPC API; "" disables it.
	// Default "127.0.0.1:3601".
	Listen string `yaml:"listen"`
}

// Broker configures NATS JetStream.
type Broker struct {
	// URL is empty to start the embedded JetStream server, or a
	// comma-separated list of nats://, tls://, ws:// or wss:// URLs.
	// Default "".
	URL string `yaml:"url"`
	// Embedded configures the embedded server (used when URL is empty).
	Embedded Embedded `yaml:"embedded"`
	// Stream is the JetStream stream holding every event. Default "EVENTS".
	Stream string `yaml:"stream"`
	// SubjectPrefix is prepended to topics: topic "a.b" is stored on
	// "<subject_prefix>.a.b". Default "events".
	SubjectPrefix string `yaml:"subject_prefix"`
	// Replicas is the stream's replica count. Default 1.
	Replicas int `yaml:"replicas"`
	// DuplicateWindow is how long an idempotency key is remembered.
	// Default 2m.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// PublishTimeout bounds the wait for the broker to store an event.
	// Default 5s.
	PublishTimeout time.Duration `yaml:"publish_timeout"`
	// MaxPending bounds the events waiting for the broker's acknowledgement
	// across all requests; beyond it publishes answer 429. Default 4096.
	MaxPending int `yaml:"max_pending"`
	// CredentialsFile is a NATS .creds file. Default "".
	CredentialsFile string `yaml:"credentials_file"`
	// NkeySeedFile is a file holding an nkey seed. Default "".
	NkeySeedFile string `yaml:"nkey_seed_file"`
	// User and Password authenticate with user/password. Default "".
	User string `yaml:"user"`
	// Password goes with User. Default "".
	Password string `yaml:"password"`
	// Token authenticates with a token. Default "".
	Token string `yaml:"token"`
	// TLS configures TLS to the broker.
	TLS TLS `yaml:"tls"`
}

// Embedded configures the embedded nats-server.
type Embedded struct {
	// StoreDir is the JetStream file store. Default "./data/jetstream".
	StoreDir string `yaml:"store_dir"`
	// Listen, when set (e.g. "127.0.0.1:4222"), lets other NATS clients in;
	// empty keeps the server in-process only. Default "".
	Listen string `yaml:"listen"`
}

// TLS configures a TLS client connection. All default to "".
type TLS struct {
	// CAFile verifies the server's certificate.
	CAFile string `yaml:"ca_file"`
	// CertFile is the client certificate (with KeyFile).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the client key (with CertFile).
	KeyFile string `yaml:"key_file"`
}

// Scopes limits what the app may do.
type Scopes struct {
	// Publish lists topic patterns (NATS wildcards * and >) the app may
	// publish to. Default empty: any topic.
	Publish []string `yaml:"publish"`
}

// Subscription is one delivery of events to the app.
type Subscription struct {
	// Name is the durable consumer name; sidecars with the same name share
	// the work. Required.
	Name string `yaml:"name"`
	// Topic is the topic pattern (NATS wildcards allowed). Required.
	Topic string `yaml:"topic"`
	// Types, when not empty, delivers only these CloudEvents types.
	Types []string `yaml:"types"`
	// Endpoint is the app's webhook URL (http or https). Default "": the
	// events go only to the app's gRPC Subscribe streams (then grpc.listen
	// must be set).
	Endpoint string `yaml:"endpoint"`
	// ContentMode is "binary" or "structured". Default "binary".
	ContentMode string `yaml:"content_mode"`
	// MaxInFlight bounds concurrent deliveries. Default 32.
	MaxInFlight int `yaml:"max_in_flight"`
	// OrderedByKey delivers events with the same partitionkey one at a time,
	// in order. Default false.
	OrderedByKey bool `yaml:"ordered_by_key"`
	// Timeout bounds one delivery attempt. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Retry is the retry policy.
	Retry Retry `yaml:"retry"`
	// DeadLetterTopic receives events that could not be delivered.
	// Default "deadletter.<name>".
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// SigningSecret is a Standard Webhooks secret "whsec_<base64>";
	// empty sends unsigned. Default "".
	SigningSecret string `yaml:"signing_secret"`
}

// Retry is a subscription's retry policy.
type Retry struct {
	// MaxAttempts is the total number of attempts, the first included.
	// Default 8.
	MaxAttempts int `yaml:"max_attempts"`
	// InitialBackoff is the first backoff. Default 200ms.
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	// MaxBackoff caps every backoff, Retry-After included. Default 30s.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// Multiplier grows the backoff exponentially (with full jitter).
	// Default 2.0.
	Multiplier float64 `yaml:"multiplier"`
}

// Tracing selects the OpenTelemetry exporter.
type Tracing struct {
	// Exporter is "none", "otlp" or "stdout". Default "none".
	Exporter string `yaml:"exporter"`
}

// Log configures logging (JSON lines on stderr).
type Log struct {
	// Level is "debug", "info", "warn" or "error". Default "info".
	Level string `yaml:"level"`
}

// Default returns the configuration used when no file is given.
func Default() Config {
	return Config{
		AppID: "app",
		HTTP: HTTP{
			Listen:           "127.0.0.1:3600",
			MaxEventBytes:    1 << 20,
			MaxBatchEvents:   1000,
			MaxBatchBytes:    16 << 20,
			MaxInFlightBytes: 64 << 20,
			ReadTimeout:      30 * time.Second,
			WriteTimeout:     30 * time.Second,
			IdleTimeout:      120 * time.Second,
			ShutdownTimeout:  15 * time.Second,
		},
		GRPC: GRPC{Listen: "127.0.0.1:3601"},
		Broker: Broker{
			Embedded:        Embedded{StoreDir: "./data/jetstream"},
			Stream:          "EVENTS",
			SubjectPrefix:   "events",
			Replicas:        1,
			DuplicateWindow: 2 * time.Minute,
			PublishTimeout:  5 * time.Second,
			MaxPending:      4096,
		},
		Dapr:    DefaultDapr(),
		Tracing: Tracing{Exporter: "none"},
		Log:     Log{Level: "info"},
	}
}

// DefaultSubscription returns a subscription's defaults; entries of the
// subscriptions list are decoded on top of it.
func DefaultSubscription() Subscription {
	return Subscription{
		ContentMode: "binary",
		MaxInFlight: 32,
		Timeout:     10 * time.Second,
		Retry: Retry{
			MaxAttempts:    8,
			InitialBackoff: 200 * time.Millisecond,
			MaxBackoff:     30 * time.Second,
			Multiplier:     2.0,
		},
	}
}

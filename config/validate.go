package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Problem is one invalid setting. Key is its key path, such as
// "subscriptions[1].retry.max_backoff"; for an unknown or repeated key it is
// the path of the mapping holding it, "" for the top level. Line is its line
// in the file, 0 when unknown (a default, or Validate on a struct). Message
// says what is wrong and never contains a secret's value.
type Problem struct {
	Line    int
	Key     string
	Message string
}

// String returns the problem as "line 7: http.listen: message", leaving out
// the parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists every problem found in a configuration, in the
// order of the struct tree. Load, Parse and Validate return it wrapped; use
// errors.As to reach it. Its Error joins the problems with "; ".
type ValidationError struct {
	Problems []Problem
}

// Error implements error.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// Validate checks the whole configuration and returns an error, wrapping a
// *ValidationError, that lists every problem with its key path; nil when
// valid. Messages never contain the value of api_token, password, token or
// signing_secret, nor of broker.url or an endpoint (they may hold
// credentials). Validate only reads c, and the directory of
// dapr.resources_path; concurrent calls are safe while nothing writes c.
func (c *Config) Validate() error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// validate returns a *ValidationError, or nil.
func (c *Config) validate() error {
	v := &validator{}
	if !appIDPattern.MatchString(c.AppID) {
		v.addf("app_id", `must be one or more of A-Z, a-z, 0-9, "_", "." and "-", got %q`, c.AppID)
	}
	v.http(c.HTTP, c.Broker)
	if c.GRPC.Listen != "" {
		v.check("grpc.listen", hostPort(c.GRPC.Listen))
		if c.GRPC.Listen == c.HTTP.Listen && !strings.HasSuffix(c.GRPC.Listen, ":0") {
			v.addf("grpc.listen", "must differ from http.listen")
		}
	}
	v.broker(c.Broker, c.HTTP)
	for i, p := range c.Scopes.Publish {
		v.check(fmt.Sprintf("scopes.publish[%d]", i), ValidPattern(p))
	}
	v.subscriptions(c.Subscriptions, c.GRPC.Listen != "")
	v.dapr(c.Dapr)
	v.oneOf("tracing.exporter", c.Tracing.Exporter, "none", "otlp", "stdout")
	v.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	if len(v.problems) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.problems}
}

var (
	appIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	namePattern  = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

type validator struct {
	problems []Problem
}

func (v *validator) addf(key, format string, args ...any) {
	v.problems = append(v.problems, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) check(key string, err error) {
	if err != nil {
		v.addf(key, "%v", err)
	}
}

func (v *validator) positive(key string, n int64) {
	if n <= 0 {
		v.addf(key, "must be > 0")
	}
}

func (v *validator) oneOf(key, value string, allowed ...string) {
	if !slices.Contains(allowed, value) {
		v.addf(key, "must be one of %s, got %q", strings.Join(allowed, ", "), value)
	}
}

func (v *validator) http(h HTTP, b Broker) {
	v.check("http.listen", hostPort(h.Listen))
	if h.HealthListen != "" {
		v.check("http.health_listen", hostPort(h.HealthListen))
		if h.HealthListen == h.Listen && !strings.HasSuffix(h.Listen, ":0") {
			v.addf("http.health_listen", "must differ from http.listen")
		}
	}
	v.positive("http.max_event_bytes", h.MaxEventBytes)
	v.positive("http.max_batch_events", int64(h.MaxBatchEvents))
	v.positive("http.max_batch_bytes", h.MaxBatchBytes)
	if h.MaxInFlightBytes < max(h.MaxBatchBytes, h.MaxEventBytes) {
		v.addf("http.max_in_flight_bytes", "must be at least http.max_batch_bytes and http.max_event_bytes (%d), got %d", max(h.MaxBatchBytes, h.MaxEventBytes), h.MaxInFlightBytes)
	}
	v.positive("http.read_timeout", int64(h.ReadTimeout))
	v.positive("http.write_timeout", int64(h.WriteTimeout))
	v.positive("http.idle_timeout", int64(h.IdleTimeout))
	v.positive("http.shutdown_timeout", int64(h.ShutdownTimeout))
	if h.WriteTimeout > 0 && h.WriteTimeout <= b.PublishTimeout {
		v.addf("http.write_timeout", "must be greater than broker.publish_timeout (%s), got %s", b.PublishTimeout, h.WriteTimeout)
	}
}

func (v *validator) broker(b Broker, h HTTP) {
	if b.URL == "" {
		if b.Embedded.StoreDir == "" {
			v.addf("broker.embedded.store_dir", "must not be empty when broker.url is empty (embedded server)")
		}
	} else {
		v.check("broker.url", brokerURLs(b.URL))
	}
	if b.Embedded.Listen != "" {
		v.check("broker.embedded.listen", hostPort(b.Embedded.Listen))
	}
	v.check("broker.stream", streamName(b.Stream))
	if err := checkTokens(b.SubjectPrefix, false); err != nil {
		v.addf("broker.subject_prefix", "%v", err)
	}
	if b.Replicas < 1 || b.Replicas > 5 {
		v.addf("broker.replicas", "must be from 1 to 5, got %d", b.Replicas)
	}
	v.positive("broker.duplicate_window", int64(b.DuplicateWindow))
	v.positive("broker.publish_timeout", int64(b.PublishTimeout))
	v.positive("broker.max_pending", int64(b.MaxPending))
	if b.MaxPending > 0 && b.MaxPending < h.MaxBatchEvents {
		v.addf("broker.max_pending", "must be at least http.max_batch_events (%d), got %d", h.MaxBatchEvents, b.MaxPending)
	}
	v.auth(b)
}

func (v *validator) auth(b Broker) {
	var set []string
	for _, m := range []struct {
		key string
		on  bool
	}{
		{"broker.credentials_file", b.CredentialsFile != ""},
		{"broker.nkey_seed_file", b.NkeySeedFile != ""},
		{"broker.user", b.User != ""},
		{"broker.password", b.User == "" && b.Password != ""},
		{"broker.token", b.Token != ""},
	} {
		if m.on {
			set = append(set, m.key)
		}
	}
	for _, key := range set[min(1, len(set)):] {
		v.addf(key, "conflicts with %s: set one authentication method at most", set[0])
	}
	if b.Password != "" && b.User == "" {
		v.addf("broker.password", "requires broker.user")
	}
	if (b.TLS.CertFile == "") != (b.TLS.KeyFile == "") {
		if b.TLS.CertFile == "" {
			v.addf("broker.tls.cert_file", "is required with broker.tls.key_file")
		} else {
			v.addf("broker.tls.key_file", "is required with broker.tls.cert_file")
		}
	}
}

func (v *validator) subscriptions(subs []Subscription, grpcOn bool) {
	first := make(map[string]int, len(subs))
	for i, s := range subs {
		key := fmt.Sprintf("subscriptions[%d]", i)
		if j, dup := first[s.Name]; dup && s.Name != "" {
			v.addf(key+".name", "%q is also the name of subscriptions[%d]", s.Name, j)
		} else {
			first[s.Name] = i
		}
		v.subscription(key+".", s)
		if s.Endpoint == "" && !grpcOn {
			v.addf(key+".endpoint", "is required when grpc.listen is empty (without it only gRPC streams receive the events)")
		}
	}
}

// Validate checks one subscription, as Config.Validate checks each entry
// of subscriptions, and returns an error wrapping a *ValidationError whose
// keys are relative to the subscription ("topic", "retry.max_attempts");
// nil when valid. An empty endpoint is valid: such a subscription is
// delivered to gRPC streams only.
func (s Subscription) Validate() error {
	v := &validator{}
	v.subscription("", s)
	if len(v.problems) == 0 {
		return nil
	}
	return fmt.Errorf("config: subscription: %w", &ValidationError{Problems: v.problems})
}

// subscription checks s; prefix starts every key ("subscriptions[0]." or "").
func (v *validator) subscription(prefix string, s Subscription) {
	switch {
	case s.Name == "":
		v.addf(prefix+"name", "is required")
	case !namePattern.MatchString(s.Name):
		v.addf(prefix+"name", `must be one or more of A-Z, a-z, 0-9, "_" and "-", got %q`, s.Name)
	}
	v.check(prefix+"topic", ValidPattern(s.Topic))
	for j, t := range s.Types {
		if t == "" {
			v.addf(fmt.Sprintf("%stypes[%d]", prefix, j), "must not be empty")
		}
	}
	if s.Endpoint != "" {
		v.check(prefix+"endpoint", endpoint(s.Endpoint))
	}
	v.oneOf(prefix+"content_mode", s.ContentMode, "binary", "structured")
	if s.MaxInFlight < 1 {
		v.addf(prefix+"max_in_flight", "must be >= 1, got %d", s.MaxInFlight)
	}
	v.positive(prefix+"timeout", int64(s.Timeout))
	v.retry(prefix+"retry", s.Retry)
	v.deadLetter(prefix+"dead_letter_topic", s.DeadLetterTopic)
	if s.SigningSecret != "" && !validSecret(s.SigningSecret) {
		v.addf(prefix+"signing_secret", `must be "whsec_" followed by base64`)
	}
}

func (v *validator) retry(key string, r Retry) {
	if r.MaxAttempts < 1 {
		v.addf(key+".max_attempts", "must be >= 1, got %d", r.MaxAttempts)
	}
	v.positive(key+".initial_backoff", int64(r.InitialBackoff))
	if r.MaxBackoff < r.InitialBackoff {
		v.addf(key+".max_backoff", "must be at least initial_backoff (%s), got %s", r.InitialBackoff, r.MaxBackoff)
	}
	if !(r.Multiplier >= 1) || math.IsInf(r.Multiplier, 0) {
		v.addf(key+".multiplier", "must be a number >= 1, got %v", r.Multiplier)
	}
}

// deadLetter checks dead_letter_topic.
func (v *validator) deadLetter(key string, topic string) {
	if topic == "" {
		return
	}
	if err := ValidTopic(topic); err != nil {
		v.addf(key, "%v", err)
	} else if strings.HasPrefix(topic, "_") {
		v.addf(key, `must not start with "_": such topics are the sidecar's own`)
	}
}

// hostPort checks a listen address "host:port"; the host may be empty and
// the port 0.
func hostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf(`must be host:port such as "127.0.0.1:3600", got %q`, addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port must be a number from 0 to 65535, got %q", port)
	}
	return nil
}

// brokerURLs checks a comma-separated list of NATS URLs. Its errors do not
// quote the URLs, which may hold credentials.
func brokerURLs(list string) error {
	for i, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if !strings.Contains(raw, "://") {
			return fmt.Errorf("entry %d must be a URL such as nats://host:4222", i+1)
		}
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			return fmt.Errorf("entry %d is not a valid URL", i+1)
		case !slices.Contains([]string{"nats", "tls", "ws", "wss"}, u.Scheme):
			return fmt.Errorf("entry %d: scheme %q is not one of nats, tls, ws, wss", i+1, u.Scheme)
		case u.Hostname() == "":
			return fmt.Errorf("entry %d has no host", i+1)
		}
	}
	return nil
}

// endpoint checks a webhook URL without quoting it: it may hold credentials.
func endpoint(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https"):
		return errors.New("must be an absolute http:// or https:// URL")
	case u.Hostname() == "":
		return errors.New("has no host")
	}
	return nil
}

// streamName checks a JetStream stream name.
func streamName(name string) error {
	if name == "" {
		return errors.New("must not be empty")
	}
	for _, r := range name {
		if strings.ContainsRune(`.*>/\`, r) || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf(`%q contains %q; a stream name cannot contain whitespace, ".", "*", ">", "/" or a backslash`, name, string(r))
		}
	}
	return nil
}

// validSecret reports whether s is a Standard Webhooks secret.
func validSecret(s string) bool {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok || b64 == "" {
		return false
	}
	_, err := base64.StdEncoding.DecodeString(b64)
	return err == nil
}

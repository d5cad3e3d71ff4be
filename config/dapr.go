package config

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"
	"unicode"
)

// Dapr configures the Dapr-compatible API (contract §9): Dapr apps publish
// through it unchanged, and, with app_port set, are asked for their
// subscriptions.
type Dapr struct {
	// PubSubNames are the pub/sub component names Dapr apps may use; a
	// publish to another answers 404 ERR_PUBSUB_NOT_FOUND. They share one
	// topic namespace: topic "orders" of any of them is the topic
	// "orders". Empty: the Dapr pub/sub API answers 400
	// ERR_PUBSUB_NOT_CONFIGURED. Default ["pubsub"].
	PubSubNames []string `yaml:"pubsub_names"`
	// AppPort is the port the app listens on, where the sidecar asks for
	// its subscriptions at start (GET /dapr/subscribe, or
	// ListTopicSubscriptions, again until the app answers) and delivers
	// them and the declarative ones; `${EVENTSIDECAR_APP_PORT:-0}` takes it
	// from the environment. Default 0: the app is not asked, and nothing
	// is delivered the Dapr way.
	AppPort int `yaml:"app_port"`
	// AppHost is the host the app listens on. Default "127.0.0.1".
	AppHost string `yaml:"app_host"`
	// AppProtocol is how the app is called: "http" (GET /dapr/subscribe
	// and POST deliveries) or "grpc" (AppCallback, which needs app_port).
	// Default "http".
	AppProtocol string `yaml:"app_protocol"`
	// ResourcesPath is a directory of Dapr Subscription resources (YAML,
	// dapr.io/v2alpha1 or v1alpha1), delivered to the app at app_port,
	// which they need. Default "": none.
	ResourcesPath string `yaml:"resources_path"`
	// Subscription holds what every Dapr subscription is delivered with;
	// each key means what it means in a subscriptions entry.
	Subscription DaprSubscription `yaml:"subscription"`
}

// DaprSubscription is the delivery settings every Dapr subscription gets.
// The keys and defaults are those of a subscriptions entry.
type DaprSubscription struct {
	// MaxInFlight bounds concurrent deliveries. Default 32.
	MaxInFlight int `yaml:"max_in_flight"`
	// OrderedByKey delivers events with the same partitionkey one at a
	// time, in order. Default false.
	OrderedByKey bool `yaml:"ordered_by_key"`
	// Timeout bounds one delivery attempt. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// Retry is the retry policy (defaults as a subscription's).
	Retry Retry `yaml:"retry"`
	// SigningSecret is a Standard Webhooks secret "whsec_<base64>";
	// empty sends unsigned. Default "".
	SigningSecret string `yaml:"signing_secret"`
}

// DefaultDapr returns the dapr block's defaults.
func DefaultDapr() Dapr {
	s := DefaultSubscription()
	return Dapr{
		PubSubNames: []string{"pubsub"},
		AppHost:     "127.0.0.1",
		AppProtocol: "http",
		Subscription: DaprSubscription{
			MaxInFlight: s.MaxInFlight,
			Timeout:     s.Timeout,
			Retry:       s.Retry,
		},
	}
}

// dapr checks the dapr block.
func (v *validator) dapr(d Dapr) {
	first := make(map[string]int, len(d.PubSubNames))
	for i, name := range d.PubSubNames {
		key := fmt.Sprintf("dapr.pubsub_names[%d]", i)
		if j, dup := first[name]; dup {
			v.addf(key, "%q is also dapr.pubsub_names[%d]", name, j)
			continue
		}
		first[name] = i
		if !namePattern.MatchString(name) {
			v.addf(key, `must be one or more of A-Z, a-z, 0-9, "_" and "-", got %q`, name)
		}
	}
	if d.AppPort < 0 || d.AppPort > 65535 {
		v.addf("dapr.app_port", "must be from 0 to 65535, got %d", d.AppPort)
	}
	if !validHost(d.AppHost) {
		v.addf("dapr.app_host", "must be a host name or IP address, got %q", d.AppHost)
	}
	v.oneOf("dapr.app_protocol", d.AppProtocol, "http", "grpc")
	if d.AppProtocol == "grpc" && d.AppPort == 0 {
		v.addf("dapr.app_port", "is required (1 to 65535) when dapr.app_protocol is grpc")
	}
	if d.ResourcesPath != "" {
		if _, err := os.ReadDir(d.ResourcesPath); err != nil {
			v.addf("dapr.resources_path", "must be a readable directory: %v", err)
		}
	}
	v.daprSubscription("dapr.subscription", d.Subscription)
}

// validHost reports whether host is an IP address or could be a host name.
func validHost(host string) bool {
	if net.ParseIP(host) != nil {
		return true
	}
	return host != "" && !strings.ContainsFunc(host, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r) || strings.ContainsRune(":/?#@[]", r)
	})
}

// daprSubscription checks the delivery settings of Dapr subscriptions as
// those of a subscriptions entry are checked.
func (v *validator) daprSubscription(key string, s DaprSubscription) {
	if s.MaxInFlight < 1 {
		v.addf(key+".max_in_flight", "must be >= 1, got %d", s.MaxInFlight)
	}
	v.positive(key+".timeout", int64(s.Timeout))
	v.retry(key+".retry", s.Retry)
	if s.SigningSecret != "" && !validSecret(s.SigningSecret) {
		v.addf(key+".signing_secret", `must be "whsec_" followed by base64`)
	}
}

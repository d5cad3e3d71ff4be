package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDaprDefaults(t *testing.T) {
	d := Default().Dapr
	want := Dapr{
		PubSubNames: []string{"pubsub"},
		AppHost:     "127.0.0.1",
		AppProtocol: "http",
		Subscription: DaprSubscription{MaxInFlight: 32, Timeout: 10 * time.Second,
			Retry: Retry{MaxAttempts: 8, InitialBackoff: 200 * time.Millisecond, MaxBackoff: 30 * time.Second, Multiplier: 2}},
	}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("Default().Dapr = %+v\nwant %+v", d, want)
	}
}

func TestDaprParse(t *testing.T) {
	dir := t.TempDir()
	yaml := `dapr:
  pubsub_names: [orders, audit_2]
  app_port: ${APP_PORT:-0}
  app_host: app.internal
  app_protocol: grpc
  resources_path: ` + dir + `
  subscription:
    max_in_flight: 4
    ordered_by_key: true
    retry:
      max_attempts: 3
`
	got, err := Parse([]byte(yaml), env(map[string]string{"APP_PORT": "3000"}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := DefaultDapr()
	want.PubSubNames, want.AppPort, want.AppHost, want.AppProtocol, want.ResourcesPath = []string{"orders", "audit_2"}, 3000, "app.internal", "grpc", dir
	want.Subscription.MaxInFlight, want.Subscription.OrderedByKey, want.Subscription.Retry.MaxAttempts = 4, true, 3
	if !reflect.DeepEqual(got.Dapr, want) {
		t.Errorf("dapr = %+v\nwant %+v", got.Dapr, want)
	}
}

func TestDaprParseEdges(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
		check               func(Dapr) bool
	}{
		{name: "app port unset in the environment is 0", yaml: "dapr:\n  app_port: ${EVENTSIDECAR_APP_PORT:-0}\n",
			check: func(d Dapr) bool { return d.AppPort == 0 }},
		{name: "no pubsub names", yaml: "dapr:\n  pubsub_names: []\n", check: func(d Dapr) bool { return d.PubSubNames == nil }},
		{name: "unknown key", yaml: "dapr:\n  appPort: 3000\n", wantErr: `line 2: dapr: unknown key "appPort" (did you mean "app_port"?)`},
		{name: "app port not a number", yaml: "dapr:\n  app_port: http\n", wantErr: `line 2: dapr.app_port: must be an integer, got "http"`},
		{name: "app port unset without default", yaml: "dapr:\n  app_port: ${EVENTSIDECAR_APP_PORT}\n", wantErr: "dapr.app_port: has no value; expected an integer"},
		{name: "subscription unknown key", yaml: "dapr:\n  subscription:\n    endpoint: http://x\n", wantErr: `line 3: dapr.subscription: unknown key "endpoint"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.yaml), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tt.check(got.Dapr) {
				t.Errorf("dapr = %+v", got.Dapr)
			}
		})
	}
}

func TestLoadExampleAppPortFromEnvironment(t *testing.T) {
	t.Setenv("EVENTSIDECAR_APP_PORT", "3000")
	got, err := Load("../config.example.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got.Dapr.AppPort != 3000 {
		t.Errorf("dapr.app_port = %d, want 3000 from EVENTSIDECAR_APP_PORT", got.Dapr.AppPort)
	}
}

func TestDaprValidateAccepts(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		mutate func(*Dapr)
	}{
		{"no pubsub names", func(d *Dapr) { d.PubSubNames = nil }},
		{"several pubsub names", func(d *Dapr) { d.PubSubNames = []string{"pubsub", "orders-2", "A_b"} }},
		{"http app", func(d *Dapr) { d.AppPort = 3000 }},
		{"grpc app", func(d *Dapr) { d.AppPort, d.AppProtocol = 50001, "grpc" }},
		{"IPv6 host", func(d *Dapr) { d.AppHost = "::1" }},
		{"host name", func(d *Dapr) { d.AppHost = "app.default.svc" }},
		{"resources", func(d *Dapr) { d.ResourcesPath = dir }},
		{"signed", func(d *Dapr) { d.Subscription.SigningSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c.Dapr)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestDaprValidateRejects(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file.yaml")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*Dapr)
		want   string
	}{
		{"pubsub name chars", func(d *Dapr) { d.PubSubNames = []string{"pub.sub"} }, `dapr.pubsub_names[0]: must be one or more of`},
		{"pubsub name empty", func(d *Dapr) { d.PubSubNames = []string{"a", ""} }, `dapr.pubsub_names[1]: must be one or more of`},
		{"pubsub name repeated", func(d *Dapr) { d.PubSubNames = []string{"a", "b", "a"} }, `dapr.pubsub_names[2]: "a" is also dapr.pubsub_names[0]`},
		{"app port negative", func(d *Dapr) { d.AppPort = -1 }, "dapr.app_port: must be from 0 to 65535, got -1"},
		{"app port too big", func(d *Dapr) { d.AppPort = 65536 }, "dapr.app_port: must be from 0 to 65535, got 65536"},
		{"grpc without port", func(d *Dapr) { d.AppProtocol = "grpc" }, "dapr.app_port: is required (1 to 65535) when dapr.app_protocol is grpc"},
		{"protocol", func(d *Dapr) { d.AppProtocol = "HTTP" }, `dapr.app_protocol: must be one of http, grpc, got "HTTP"`},
		{"host empty", func(d *Dapr) { d.AppHost = "" }, `dapr.app_host: must be a host name or IP address, got ""`},
		{"host with port", func(d *Dapr) { d.AppHost = "127.0.0.1:3000" }, `dapr.app_host: must be a host name or IP address`},
		{"host URL", func(d *Dapr) { d.AppHost = "http://app" }, `dapr.app_host: must be a host name or IP address`},
		{"resources missing", func(d *Dapr) { d.ResourcesPath = filepath.Join(file, "..", "missing") }, "dapr.resources_path: must be a readable directory"},
		{"resources a file", func(d *Dapr) { d.ResourcesPath = file }, "dapr.resources_path: must be a readable directory"},
		{"max_in_flight", func(d *Dapr) { d.Subscription.MaxInFlight = 0 }, "dapr.subscription.max_in_flight: must be >= 1, got 0"},
		{"timeout", func(d *Dapr) { d.Subscription.Timeout = 0 }, "dapr.subscription.timeout: must be > 0"},
		{"retry", func(d *Dapr) { d.Subscription.Retry.Multiplier = 0.5 }, "dapr.subscription.retry.multiplier: must be a number >= 1, got 0.5"},
		{"signing_secret", func(d *Dapr) { d.Subscription.SigningSecret = "secret" }, `dapr.subscription.signing_secret: must be "whsec_" followed by base64`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c.Dapr)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

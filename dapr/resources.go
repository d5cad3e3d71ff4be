package dapr

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The API versions of Dapr's Subscription resource.
const (
	apiV1Alpha1 = "dapr.io/v1alpha1"
	apiV2Alpha1 = "dapr.io/v2alpha1"
)

// resourceKind is the kind of resource LoadResources reads; other kinds
// (Component, Configuration, Resiliency, ...) are left alone.
const resourceKind = "Subscription"

// resource is one Subscription document, v1alpha1 or v2alpha1.
type resource struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		PubSubName      string            `yaml:"pubsubname"`
		Topic           string            `yaml:"topic"`
		Route           string            `yaml:"route"`  // v1alpha1
		Routes          routesYAML        `yaml:"routes"` // v2alpha1
		DeadLetterTopic string            `yaml:"deadLetterTopic"`
		Metadata        map[string]string `yaml:"metadata"`
		BulkSubscribe   struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"bulkSubscribe"`
	} `yaml:"spec"`
	Scopes []string `yaml:"scopes"`
}

type routesYAML struct {
	Rules []struct {
		Match string `yaml:"match"`
		Path  string `yaml:"path"`
	} `yaml:"rules"`
	Default string `yaml:"default"`
}

// LoadResources reads the Dapr Subscription resources (apiVersion
// dapr.io/v2alpha1, or v1alpha1 with its single route) in the .yaml and
// .yml files of dir, in file name order, several documents to a file, as
// Dapr's --resources-path does: documents of other kinds are ignored, and
// so are subscriptions whose scopes are not empty and do not name appID.
// The subscriptions are Declarative, each with its Resource. An error
// names the file and the document (1 for the first), and then none are
// returned; so does a second resource of the same metadata.name.
func LoadResources(dir, appID string) ([]Subscription, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("dapr: resources: %w", err)
	}
	var subs []Subscription
	names := map[string]string{}
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		found, err := loadFile(path, appID, names)
		if err != nil {
			return nil, err
		}
		subs = append(subs, found...)
	}
	return subs, nil
}

// loadFile reads the Subscription resources of one file; names maps the
// metadata.name of those read so far to where they are.
func loadFile(path, appID string, names map[string]string) ([]Subscription, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dapr: resources: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var subs []Subscription
	for doc := 1; ; doc++ {
		var node yaml.Node
		if err := dec.Decode(&node); errors.Is(err, io.EOF) {
			return subs, nil
		} else if err != nil {
			return nil, fmt.Errorf("dapr: resources: %s: document %d: %w", path, doc, err)
		}
		where := fmt.Sprintf("%s: document %d", path, doc)
		s, ok, err := decodeResource(&node, where, appID)
		if err != nil {
			return nil, fmt.Errorf("dapr: resources: %s: %w", where, err)
		}
		if !ok {
			continue
		}
		if first, dup := names[s.Resource]; dup {
			return nil, fmt.Errorf("dapr: resources: %s: subscription %q is also %s", where, s.Resource, first)
		}
		names[s.Resource] = where
		s.Resource = fmt.Sprintf("%s: %s", filepath.Base(path), s.Resource)
		subs = append(subs, s)
	}
}

// decodeResource reads one document; ok is false for an empty document,
// another kind, or a subscription scoped to other apps. The Subscription's
// Resource is its metadata.name.
func decodeResource(node *yaml.Node, where, appID string) (Subscription, bool, error) {
	if node.Kind == 0 || (len(node.Content) == 1 && node.Content[0].Tag == "!!null") {
		return Subscription{}, false, nil
	}
	var r resource
	if err := node.Decode(&r); err != nil {
		return Subscription{}, false, err
	}
	if r.Kind != resourceKind {
		return Subscription{}, false, nil
	}
	if len(r.Scopes) > 0 && !slices.Contains(r.Scopes, appID) {
		return Subscription{}, false, nil
	}
	if r.Metadata.Name == "" {
		return Subscription{}, false, errors.New("metadata.name is empty")
	}
	sp := spec{pubsub: r.Spec.PubSubName, topic: r.Spec.Topic, deadLetter: r.Spec.DeadLetterTopic,
		metadata: unquoted(r.Spec.Metadata), bulk: r.Spec.BulkSubscribe.Enabled, kind: Declarative}
	switch r.APIVersion {
	case apiV2Alpha1:
		for _, rule := range r.Spec.Routes.Rules {
			sp.rules = append(sp.rules, ruleJSON{Match: rule.Match, Path: rule.Path})
		}
		sp.dflt = r.Spec.Routes.Default
	case apiV1Alpha1:
		sp.route = r.Spec.Route
	default:
		return Subscription{}, false, fmt.Errorf("subscription %q: apiVersion %q is not %s or %s", r.Metadata.Name, r.APIVersion, apiV2Alpha1, apiV1Alpha1)
	}
	s, err := newSubscription(sp)
	if err != nil {
		return Subscription{}, false, fmt.Errorf("subscription %q: %w", r.Metadata.Name, err)
	}
	s.Resource = r.Metadata.Name
	return s, true, nil
}

// unquoted is md with each value unquoted once (see Unquote).
func unquoted(md map[string]string) Metadata {
	if len(md) == 0 {
		return nil
	}
	out := make(Metadata, len(md))
	for k, v := range md {
		out[k] = Unquote(v)
	}
	return out
}

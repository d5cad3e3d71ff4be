package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads the YAML file at path, expands ${VAR} and ${VAR:-default} from
// the environment, decodes the result on top of Default (each subscriptions
// entry on top of DefaultSubscription) and validates it. An empty path
// returns Default without reading anything.
//
// Errors name the file and, where known, the line and the key path; a
// *ValidationError (see errors.As) lists every problem found. They never
// contain the value of a secret. Load is safe for concurrent use.
func Load(path string) (Config, error) {
	if path == "" {
		return Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := parse(data, os.LookupEnv)
	if err != nil {
		return Config{}, fmt.Errorf("config: %s: %w", path, err)
	}
	return cfg, nil
}

// Parse is Load on data already read, with lookup in place of os.LookupEnv
// (nil means no variable is set). It is safe for concurrent use when lookup
// is.
//
// Expansion is textual and happens before YAML parsing, comments included:
// `${VAR}` is the variable's value ("" when unset), `${VAR:-default}` is
// default when VAR is unset or empty, `$` anywhere else is literal, and a
// default cannot itself contain "${". Quote a value that may contain YAML
// syntax: `token: "${TOKEN}"`. A key left without a value (`listen:`, or
// `listen: ${UNSET}`) is the empty string for a string field and an error for
// any other field.
func Parse(data []byte, lookup func(string) (string, bool)) (Config, error) {
	cfg, err := parse(data, lookup)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

func parse(data []byte, lookup func(string) (string, bool)) (Config, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	expanded, err := expand(data, lookup)
	if err != nil {
		return Config{}, err
	}
	root, err := parseYAML(data, expanded)
	if err != nil {
		return Config{}, err
	}
	cfg := Default()
	if root.Kind != 0 {
		if problems := checkDocument(root); len(problems) > 0 {
			return Config{}, &ValidationError{Problems: problems}
		}
		// checkDocument refused every unknown key and every value that does
		// not fit its field, so this cannot fail on the file's content.
		if err := root.Decode(&cfg); err != nil {
			return Config{}, fmt.Errorf("decode: %w", err)
		}
	}
	cfg.normalize()
	if err := cfg.validate(); err != nil {
		var verr *ValidationError
		if errors.As(err, &verr) {
			verr.addLines(root)
		}
		return Config{}, err
	}
	return cfg, nil
}

// UnmarshalYAML implements yaml.Unmarshaler: an entry of subscriptions is
// decoded on top of DefaultSubscription, so the keys it leaves out keep their
// defaults. It writes *s and is not safe for concurrent use with other uses
// of s.
func (s *Subscription) UnmarshalYAML(n *yaml.Node) error {
	type plain Subscription // no UnmarshalYAML method, so no recursion
	p := plain(DefaultSubscription())
	if err := n.Decode(&p); err != nil {
		return err
	}
	*s = Subscription(p)
	return nil
}

// normalize makes an empty list nil, as in Default, so that `publish: []`
// and no publish key give equal configurations (and `pubsub_names: []`
// is nil).
func (c *Config) normalize() {
	if len(c.Scopes.Publish) == 0 {
		c.Scopes.Publish = nil
	}
	if len(c.Dapr.PubSubNames) == 0 {
		c.Dapr.PubSubNames = nil
	}
	for i := range c.Subscriptions {
		if len(c.Subscriptions[i].Types) == 0 {
			c.Subscriptions[i].Types = nil
		}
	}
}

var yamlLine = regexp.MustCompile(`line \d+`)

// parseYAML parses the expanded text. When only the expansion made it
// invalid, yaml's message may quote an expanded value, which may be a
// secret, so the message says only where.
func parseYAML(raw, expanded []byte) (*yaml.Node, error) {
	root, err := decodeNode(expanded)
	if err == nil || bytes.Equal(raw, expanded) {
		return root, err
	}
	if _, rawErr := decodeNode(raw); rawErr != nil {
		return nil, rawErr
	}
	msg := `invalid YAML after expanding environment variables; quote values that may contain YAML syntax, e.g. "${VAR}"`
	if where := yamlLine.FindString(err.Error()); where != "" {
		msg = where + ": " + msg
	}
	return nil, errors.New(msg)
}

// decodeNode parses exactly one YAML document; an empty input gives a zero
// node.
func decodeNode(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil && !errors.Is(err, io.EOF) {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, errors.New("the file must hold a single YAML document")
	}
	return &root, nil
}

var durationType = reflect.TypeOf(time.Duration(0))

// checker walks the YAML tree along the Config type before it is decoded:
// it reports unknown and repeated keys and values that do not fit their
// field with the key path and line, and turns a missing string value into
// "". It quotes a value only for non-string fields, which hold no secret.
type checker struct {
	problems []Problem
	merging  map[*yaml.Node]bool
}

func checkDocument(doc *yaml.Node) []Problem {
	c := checker{merging: make(map[*yaml.Node]bool)}
	c.check(doc.Content[0], reflect.TypeOf(Config{}), "")
	return c.problems
}

func (c *checker) add(n *yaml.Node, key, format string, args ...any) {
	c.problems = append(c.problems, Problem{Line: n.Line, Key: key, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) check(n *yaml.Node, t reflect.Type, key string) {
	n = unalias(n)
	null := n.ShortTag() == "!!null"
	switch {
	case t.Kind() == reflect.Struct && !null:
		c.checkMapping(n, t, key)
	case t.Kind() == reflect.Slice && !null:
		c.checkSequence(n, t.Elem(), key)
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Slice:
		// Nothing: the defaults stay, or the list is empty.
	case null && t.Kind() == reflect.String:
		n.SetString("")
	case null:
		c.add(n, key, "has no value; expected %s", describe(t))
	case n.Kind != yaml.ScalarNode || n.Decode(reflect.New(t).Interface()) != nil:
		if n.Kind != yaml.ScalarNode || t.Kind() == reflect.String {
			c.add(n, key, "must be %s", describe(t))
		} else {
			c.add(n, key, "must be %s, got %q", describe(t), n.Value)
		}
	}
}

func (c *checker) checkMapping(n *yaml.Node, t reflect.Type, key string) {
	if n.Kind != yaml.MappingNode {
		c.add(n, key, "must be a mapping of keys to values")
		return
	}
	fields := yamlFields(t)
	seen := make(map[string]int)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		ft, known := fields[k.Value]
		switch {
		case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
			c.checkMerge(v, t, key)
		case k.Kind != yaml.ScalarNode || !known:
			c.add(k, key, "unknown key %q%s", k.Value, suggest(k.Value, fields))
		case seen[k.Value] != 0:
			c.add(k, key, "key %q is repeated (first at line %d)", k.Value, seen[k.Value])
		default:
			seen[k.Value] = k.Line
			c.check(v, ft, joinKey(key, k.Value))
		}
	}
}

// checkMerge checks the mappings merged in with "<<: *anchor".
func (c *checker) checkMerge(n *yaml.Node, t reflect.Type, key string) {
	n = unalias(n)
	sources := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		sources = n.Content
	}
	for _, src := range sources {
		src = unalias(src)
		if c.merging[src] {
			c.add(n, key, "a merge (<<) includes itself")
			continue
		}
		c.merging[src] = true
		c.checkMapping(src, t, key)
		delete(c.merging, src)
	}
}

func (c *checker) checkSequence(n *yaml.Node, elem reflect.Type, key string) {
	if n.Kind != yaml.SequenceNode {
		c.add(n, key, "must be a list")
		return
	}
	for i, item := range n.Content {
		itemKey := fmt.Sprintf("%s[%d]", key, i)
		if unalias(item).ShortTag() == "!!null" {
			c.add(item, itemKey, "is empty")
			continue
		}
		c.check(item, elem, itemKey)
	}
}

func unalias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// yamlFields maps the YAML keys of struct type t to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
	return fields
}

// suggest names the known key that differs from key only in case, "_" or
// "-", as in "maxInFlight" for "max_in_flight".
func suggest(key string, fields map[string]reflect.Type) string {
	fold := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
	}
	for name := range fields {
		if fold(name) == fold(key) {
			return fmt.Sprintf(" (did you mean %q?)", name)
		}
	}
	return ""
}

func describe(t reflect.Type) string {
	switch {
	case t == durationType:
		return `a duration such as "250ms" or "30s"`
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Float64:
		return "a number"
	default:
		return "an integer"
	}
}

func joinKey(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// addLines sets the line of each problem whose key is written in the file.
func (e *ValidationError) addLines(root *yaml.Node) {
	for i := range e.Problems {
		if n := lookupKey(root, e.Problems[i].Key); n != nil {
			e.Problems[i].Line = n.Line
		}
	}
}

// lookupKey finds the value of a key path such as "subscriptions[1].topic".
func lookupKey(root *yaml.Node, key string) *yaml.Node {
	if root.Kind != yaml.DocumentNode || key == "" {
		return nil
	}
	n := root.Content[0]
	for part := range strings.SplitSeq(key, ".") {
		name, index, hasIndex := strings.Cut(part, "[")
		n = mappingValue(n, name)
		if hasIndex && n != nil {
			n = sequenceItem(n, strings.TrimSuffix(index, "]"))
		}
		if n == nil {
			return nil
		}
	}
	return n
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	n = unalias(n)
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func sequenceItem(n *yaml.Node, index string) *yaml.Node {
	n = unalias(n)
	i, err := strconv.Atoi(index)
	if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
		return nil
	}
	return n.Content[i]
}

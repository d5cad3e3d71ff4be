package dapr

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
)

// Rule is one routing rule of a Subscription: the events its Match is
// true for go to Path.
type Rule struct {
	// Match is the compiled expression; nil matches every event (the
	// default route).
	Match *Expr
	// Path is the app's route: with a leading "/" for an HTTP app; as
	// the app gave it for a gRPC app ("" for its topic handler).
	Path string
}

// NewRule compiles match (see Compile; "" matches every event) and
// returns the rule routing to path.
func NewRule(match, path string) (Rule, error) {
	return newRule(match, routePath(path))
}

// newRule is the rule routing the events match is true for to path, as
// it is.
func newRule(match, path string) (Rule, error) {
	r := Rule{Path: path}
	if strings.TrimSpace(match) == "" {
		return r, nil
	}
	e, err := Compile(match)
	if err != nil {
		return Rule{}, err
	}
	r.Match = e
	return r, nil
}

// Expr is a compiled CEL expression over one event, as Dapr evaluates a
// rule's match: the variable event is the delivered envelope (its
// attributes, data, topic, pubsubname, ...), and every other name is a
// variable of any type, as in Dapr. Safe for concurrent use.
type Expr struct {
	src string
	prg cel.Program
}

// maxUndeclared bounds the names an expression may leave undeclared.
const maxUndeclared = 32

// undeclaredPrefix starts cel-go's error for a name not declared.
const undeclaredPrefix = "undeclared reference to '"

// Compile compiles a match expression once, for every event it is
// evaluated on. Names other than event are declared as Dapr declares
// them: each undeclared name found by compiling becomes a variable of
// any type. The error names the expression.
func Compile(src string) (*Expr, error) {
	vars := []cel.EnvOption{cel.Variable("event", cel.DynType)}
	declared := map[string]bool{"event": true}
	for range maxUndeclared {
		env, err := cel.NewEnv(vars...)
		if err != nil {
			return nil, fmt.Errorf("dapr: match %q: %w", src, err)
		}
		ast, iss := env.Compile(src)
		if iss.Err() == nil {
			prg, err := env.Program(ast)
			if err != nil {
				return nil, fmt.Errorf("dapr: match %q: %w", src, err)
			}
			return &Expr{src: src, prg: prg}, nil
		}
		names, ok := undeclared(iss.Errors(), declared)
		if !ok {
			return nil, fmt.Errorf("dapr: match %q: %w", src, iss.Err())
		}
		for _, n := range names {
			declared[n] = true
			vars = append(vars, cel.Variable(n, cel.DynType))
		}
	}
	return nil, fmt.Errorf("dapr: match %q: more than %d undeclared names", src, maxUndeclared)
}

// undeclared returns the names the errors say are undeclared and are
// not in declared; false when another error is among them.
func undeclared(errs []*cel.Error, declared map[string]bool) ([]string, bool) {
	var names []string
	for _, e := range errs {
		rest, ok := strings.CutPrefix(e.Message, undeclaredPrefix)
		if !ok {
			return nil, false
		}
		name, _, _ := strings.Cut(rest, "'")
		if !declared[name] {
			names = append(names, name)
		}
	}
	return names, len(names) > 0
}

// String is the expression's source.
func (e *Expr) String() string { return e.src }

// Eval reports whether the expression is true for the event whose
// envelope is the decoded JSON object envelope. A result that is not a
// boolean is an error.
func (e *Expr) Eval(envelope map[string]any) (bool, error) {
	out, _, err := e.prg.Eval(map[string]any{"event": envelope})
	if err != nil {
		return false, fmt.Errorf("dapr: match %q: %w", e.src, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("dapr: match %q: the result is %v, not a boolean", e.src, out.Value())
	}
	return b, nil
}

// Route returns the path of the first of rules that matches the event
// whose Dapr envelope (see Envelope) is envelope; ok is false when none
// does. A rule whose match fails to evaluate (an absent member, a result
// that is not a boolean) does not match, and the next is tried: Dapr
// retries such an event for ever; err then says why, also when a later
// rule matched. The envelope is decoded only when a rule has a match.
func Route(rules []Rule, envelope []byte) (path string, ok bool, err error) {
	var decoded map[string]any
	var errs []error
	for _, r := range rules {
		if r.Match == nil {
			return r.Path, true, errors.Join(errs...)
		}
		if decoded == nil {
			if decoded, err = decodeEnvelope(envelope); err != nil {
				return "", false, err
			}
		}
		match, err := r.Match.Eval(decoded)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if match {
			return r.Path, true, errors.Join(errs...)
		}
	}
	return "", false, errors.Join(errs...)
}

// decodeEnvelope reads an envelope for the expressions: numbers become
// float64, as Dapr's encoding/json gives them.
func decodeEnvelope(envelope []byte) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(envelope, &m); err != nil {
		return nil, fmt.Errorf("dapr: envelope: %w", err)
	}
	return m, nil
}

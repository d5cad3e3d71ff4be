package config

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// varName is the name in a ${VAR} reference.
var varName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${VAR} and ${VAR:-default} in data, line by line.
func expand(data []byte, lookup func(string) (string, bool)) ([]byte, error) {
	var out bytes.Buffer
	for i, line := range bytes.SplitAfter(data, []byte("\n")) {
		if err := expandLine(&out, line, lookup); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	return out.Bytes(), nil
}

func expandLine(out *bytes.Buffer, line []byte, lookup func(string) (string, bool)) error {
	col := 1
	for {
		start := bytes.Index(line, []byte("${"))
		if start < 0 {
			out.Write(line)
			return nil
		}
		out.Write(line[:start])
		col += start
		length := bytes.IndexByte(line[start:], '}')
		if length < 0 {
			return fmt.Errorf(`unterminated "${" at column %d`, col)
		}
		value, err := resolveVar(string(line[start+2:start+length]), lookup)
		if err != nil {
			return fmt.Errorf("column %d: %w", col, err)
		}
		out.WriteString(value)
		line = line[start+length+1:]
		col += length + 1
	}
}

// resolveVar returns the value of ref, the text between "${" and "}". Its
// errors do not quote ref: a mistyped reference may hold a secret.
func resolveVar(ref string, lookup func(string) (string, bool)) (string, error) {
	name, def, hasDefault := strings.Cut(ref, ":-")
	if !varName.MatchString(name) {
		return "", errors.New(`invalid variable reference: use ${NAME} or ${NAME:-default}, NAME of A-Z, a-z, 0-9 and "_"`)
	}
	if strings.Contains(def, "${") {
		return "", errors.New(`a default cannot contain "${"`)
	}
	value, ok := lookup(name)
	if hasDefault && (!ok || value == "") {
		return def, nil
	}
	return value, nil
}

package config

import (
	"bytes"
	"fmt"
	"regexp"
)

// envRef matches the only expansion form: ${NAME}. "$NAME" and "$$" are left
// alone, so a literal "$" needs no escaping.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces every ${NAME} in data with the value of the environment
// variable NAME as reported by lookup. A set but empty variable expands to
// the empty string; every unset one is a problem of the returned
// *ValidationError, "line N: environment variable NAME is not set".
//
// Expansion works on the raw text, before YAML parsing, so it applies to
// any value. Lines that are only a comment are skipped: a commented-out
// connection must not require its variables.
func expandEnv(data []byte, lookup func(string) (string, bool)) ([]byte, error) {
	var (
		out      bytes.Buffer
		problems []string
	)
	out.Grow(len(data))
	for i, line := range bytes.SplitAfter(data, []byte("\n")) {
		if bytes.HasPrefix(bytes.TrimLeft(line, " \t"), []byte("#")) {
			out.Write(line)
			continue
		}
		reported := map[string]bool{}
		out.Write(envRef.ReplaceAllFunc(line, func(ref []byte) []byte {
			name := string(ref[2 : len(ref)-1])
			value, ok := lookup(name)
			if !ok {
				if !reported[name] {
					reported[name] = true
					problems = append(problems, fmt.Sprintf("line %d: environment variable %s is not set", i+1, name))
				}
				return nil
			}
			return []byte(value)
		}))
	}
	if len(problems) > 0 {
		return nil, &ValidationError{Problems: problems}
	}
	return out.Bytes(), nil
}

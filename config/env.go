package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// envRef matches the only expansion form: ${NAME}. "$NAME" and "$$" are left
// alone, so a literal "$" needs no escaping.
var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandString replaces every ${NAME} in s with the value of the
// environment variable NAME as reported by lookup, in one pass: a value is
// never expanded again. A set but empty variable expands to the empty
// string; the unset ones expand to nothing and are returned, each once.
func expandString(s string, lookup func(string) (string, bool)) (string, []string) {
	var unset []string
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		value, ok := lookup(name)
		if !ok {
			if !slices.Contains(unset, name) {
				unset = append(unset, name)
			}
			return ""
		}
		return value
	})
	return out, unset
}

// envExpansion is what expandEnv did to a parsed document.
type envExpansion struct {
	// problems are the unset variables, "line N: environment variable NAME
	// is not set, used in connections[0].external_id".
	problems []string
	// refs holds, per line, the text as written of each scalar expanded on
	// it, so that a message about such a value can show the reference
	// instead of the value, which may be a secret.
	refs map[int][]string
}

// expandEnv expands ${NAME} references inside the scalar values of the
// parsed document n, in place. Expansion happens after parsing, so a value
// may contain anything ("#", quotes, ": ", line breaks) and arrives intact,
// and a YAML syntax error can never show a variable's value. Mapping keys
// and comments are not expanded. An unquoted, untagged scalar is typed
// again after expansion, as if its value had been written there, so that
// `workers: ${WORKERS}` is a number; a value that reads as null but is not
// empty ("null", "~") stays a string.
func expandEnv(n *yaml.Node, lookup func(string) (string, bool)) *envExpansion {
	e := &envExpansion{refs: make(map[int][]string)}
	e.walk(n, "", lookup)
	return e
}

func (e *envExpansion) walk(n *yaml.Node, path string, lookup func(string) (string, bool)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			e.walk(c, path, lookup)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			e.walk(c, fmt.Sprintf("%s[%d]", path, i), lookup)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, value := n.Content[i], n.Content[i+1]
			if key.Kind == yaml.ScalarNode && key.Tag == "!!merge" {
				e.walk(value, path, lookup) // "<<: {...}" merges into this mapping
				continue
			}
			e.walk(value, childPath(path, key.Value), lookup)
		}
	case yaml.ScalarNode:
		e.expandScalar(n, path, lookup)
	}
	// An alias (*name) is expanded where its anchor (&name) is defined:
	// both are the same node.
}

func (e *envExpansion) expandScalar(n *yaml.Node, path string, lookup func(string) (string, bool)) {
	if !envRef.MatchString(n.Value) {
		return
	}
	value, unset := expandString(n.Value, lookup)
	for _, name := range unset {
		msg := fmt.Sprintf("line %d: environment variable %s is not set", n.Line, name)
		if path != "" {
			msg += ", used in " + path
		}
		e.problems = append(e.problems, msg)
	}
	e.refs[n.Line] = append(e.refs[n.Line], n.Value)
	if n.Style == 0 { // plain: neither quoted, block nor explicitly tagged
		n.Tag = "" // resolved again by the decoder from the new value
		if value != "" && isNullLiteral(value) {
			n.Tag = "!!str"
		}
	}
	n.Value = value
}

func isNullLiteral(s string) bool {
	switch s {
	case "~", "null", "Null", "NULL":
		return true
	}
	return false
}

var simpleKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// childPath is the path of the value of key in the mapping at path, in the
// notation of Validate: connections[0].importer.headers["X-Token"],
// connections[0].importer.env["TOKEN"].
func childPath(path, key string) string {
	switch {
	case strings.HasSuffix(path, ".headers") || strings.HasSuffix(path, ".env") || !simpleKeyRE.MatchString(key):
		return fmt.Sprintf("%s[%q]", path, key)
	case path == "":
		return key
	}
	return path + "." + key
}

// redact replaces the value a YAML decoding message quotes, "line 9:
// cannot unmarshal !!str `abcdefg...` into int", with the reference as
// written when a scalar on that line was expanded: the value may be a
// secret.
func (e *envExpansion) redact(msg string) string {
	var line int
	if _, err := fmt.Sscanf(msg, "line %d:", &line); err != nil {
		return msg
	}
	refs := e.refs[line]
	if len(refs) == 0 {
		return msg
	}
	start, end := strings.Index(msg, " `"), strings.LastIndex(msg, "` into ")
	if start < 0 || end <= start {
		return msg
	}
	shown := "(a value from the environment)"
	if len(refs) == 1 {
		shown = fmt.Sprintf("(the value of %q)", refs[0])
	}
	return msg[:start+1] + shown + msg[end+1:]
}

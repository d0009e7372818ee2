package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
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
	// problems are the unset variables ("line 8: connections[0].external_id:
	// environment variable NAME is not set") and the values their field
	// cannot take (see check), each naming its line and field.
	problems []string
	// refs holds, per line, the text as written of each scalar expanded on
	// it, so that a message about such a value can show the reference
	// instead of the value, which may be a secret.
	refs map[int][]string
	// expanded maps each expanded scalar to its text as written, for the
	// messages check writes.
	expanded map[*yaml.Node]string
	lookup   func(string) (string, bool)
	// followed are the anchors merged with "<<: *name" already checked as
	// a mapping of a type (see merge).
	followed map[followed]bool
	// noFields is set for a document that is not a mapping: nothing in it
	// is a field (the decoder refuses the document).
	noFields bool
}

type followed struct {
	n *yaml.Node
	t reflect.Type
}

// expandEnv expands ${NAME} references inside the scalar values of the
// parsed document n, in place. Expansion happens after parsing, so a value
// may contain anything ("#", quotes, ": ", line breaks) and arrives intact,
// and a YAML syntax error can never show a variable's value. Mapping keys
// and comments are not expanded. An unquoted, untagged scalar is typed
// again after expansion, as if its value had been written there, so that
// `workers: ${WORKERS}` is a number; a value that reads as null but is not
// empty ("null", "~") stays a string.
//
// The same walk knows each value's field path and the Config field it
// decodes into, so it also decodes every value the decoder takes whole (a
// scalar, a size, a list where a number goes, an alias) into its field's
// type first, and reports what the field refuses under the field's name
// (see check): the decoder's own messages name only the line.
func expandEnv(n *yaml.Node, lookup func(string) (string, bool)) *envExpansion {
	e := &envExpansion{refs: make(map[int][]string), expanded: make(map[*yaml.Node]string), lookup: lookup, followed: make(map[followed]bool)}
	root := n
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	e.noFields = root.Kind != yaml.MappingNode
	e.walk(n, "", reflect.TypeFor[Config](), true)
	return e
}

// walk visits n, the value at path that decodes into t: nil where nothing
// takes it (under an unknown key, which the strict pass reports). expand
// is false on an anchor walked again where it is merged: its scalars were
// expanded where it is defined, and a value is never expanded twice.
func (e *envExpansion) walk(n *yaml.Node, path string, t reflect.Type, expand bool) {
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			e.walk(c, path, t, expand)
		}
		return
	}
	inner := container(n, t)
	switch n.Kind {
	case yaml.SequenceNode:
		var elem reflect.Type
		if inner != nil {
			elem = inner.Elem()
		}
		for i, c := range n.Content {
			e.walk(c, fmt.Sprintf("%s[%d]", path, i), elem, expand)
		}
	case yaml.MappingNode:
		e.mapping(n, path, inner, expand)
	case yaml.ScalarNode:
		if expand {
			e.expandScalar(n, path)
		}
	}
	// An alias (*name) is expanded where its anchor (&name) is defined:
	// both are the same node; here it is only checked. The document
	// itself has no field to name: the decoder reports a document that is
	// not a mapping.
	if t != nil && inner == nil && path != "" {
		e.check(n, path, t)
	}
}

// mapping walks the pairs of n, a mapping at path that decodes into t (a
// struct or a map; nil: not decoded). Of a decoded mapping it first drops,
// as problems, the keys the decoder would refuse: a duplicate, or a key
// that is not a string (of a struct) or not the map's key type.
func (e *envExpansion) mapping(n *yaml.Node, path string, t reflect.Type, expand bool) {
	if t != nil {
		e.dropBadKeys(n, path, t)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		if isMergeKey(key) {
			e.merge(value, path, t, expand) // "<<: {...}" merges into this mapping
			continue
		}
		name := keyName(key)
		e.walk(value, childPath(path, name), fieldType(t, name), expand)
	}
}

func (e *envExpansion) dropBadKeys(n *yaml.Node, path string, t reflect.Type) {
	keyType := reflect.TypeFor[string]()
	if t.Kind() == reflect.Map {
		keyType = t.Key()
	}
	seen := make(map[string]int) // key name -> its line
	kept := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, value := n.Content[i], n.Content[i+1]
		name := keyName(key)
		if !isMergeKey(key) && !e.decodes(key, path, keyType) {
			continue
		}
		if line, ok := seen[name]; ok && (key.Kind == yaml.ScalarNode || key.Kind == yaml.AliasNode) {
			e.problems = append(e.problems, fmt.Sprintf("line %d: %s: mapping key %q already defined at line %d", key.Line, childPath(path, name), name, line))
			continue
		}
		seen[name] = key.Line
		kept = append(kept, key, value)
	}
	clear(n.Content[len(kept):])
	n.Content = kept
}

// merge walks the value of a "<<" key in the mapping at path, which
// decodes into t: a mapping, an alias of one, or a list of those. A merged
// anchor is checked as a mapping of t here, once per type (an anchor that
// merges itself stops there). A value of another kind is left to the
// decoder, which refuses the whole file for it.
func (e *envExpansion) merge(v *yaml.Node, path string, t reflect.Type, expand bool) {
	values := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		values = v.Content
	}
	for _, m := range values {
		switch {
		case m.Kind == yaml.MappingNode:
			e.walk(m, path, t, expand)
		case m.Kind == yaml.AliasNode && m.Alias != nil && m.Alias.Kind == yaml.MappingNode && t != nil:
			if f := (followed{m.Alias, t}); !e.followed[f] {
				e.followed[f] = true
				e.walk(m.Alias, path, t, false)
			}
		}
	}
}

// check decodes n alone into a new value of t, as the decoder will at
// path. What t refuses becomes a problem naming the line and the field,
// and n becomes a null, so that the decoder, whose message would name only
// the line, does not report it again; with a problem reported the file is
// refused anyway.
func (e *envExpansion) check(n *yaml.Node, path string, t reflect.Type) {
	if e.decodes(n, path, t) {
		return
	}
	*n = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: n.Line, Column: n.Column}
}

// decodes reports whether n decodes into a value of t, recording the
// problems when not.
func (e *envExpansion) decodes(n *yaml.Node, path string, t reflect.Type) bool {
	err := n.Decode(reflect.New(t).Interface())
	if err == nil {
		return true
	}
	msgs := []string{err.Error()}
	if te := (*yaml.TypeError)(nil); errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, msg := range msgs {
		e.problems = append(e.problems, e.named(n, path, msg))
	}
	return false
}

var lineRE = regexp.MustCompile(`^line (\d+): `)

// named puts the field's path after the line in a decoding message
// ("line 7: connections[0].workers: cannot unmarshal ..."), the line as
// the decoder gave it or else n's; the line first keeps the problems of
// decodeStrict in the order of the file. A value from the environment is
// shown as its reference (see redact).
func (e *envExpansion) named(n *yaml.Node, path, msg string) string {
	msg = rewriteDecodeError(e.redact(msg))
	if ref, ok := e.expanded[n]; ok && n.Kind == yaml.ScalarNode {
		msg = strings.ReplaceAll(msg, strconv.Quote(strings.TrimSpace(n.Value)), fmt.Sprintf("(the value of %q)", ref))
	}
	line := n.Line
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if path == "" { // a key of the top-level mapping
		return fmt.Sprintf("line %d: at the top level: %s", line, msg)
	}
	return fmt.Sprintf("line %d: %s: %s", line, path, msg)
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// container is the type, pointers dereferenced, that takes n field by
// field, as the decoder does: t for a mapping into a struct or a map, or
// a list into a slice or an array. It is nil for a value decoded whole,
// which check decodes: a scalar, an alias, a value of a type with its own
// UnmarshalYAML (a size), anything into an interface, a kind t cannot
// take.
func container(n *yaml.Node, t reflect.Type) reflect.Type {
	for t != nil {
		if reflect.PointerTo(t).Implements(unmarshalerType) {
			return nil
		}
		if t.Kind() != reflect.Pointer {
			break
		}
		t = t.Elem()
	}
	switch {
	case t == nil:
	case n.Kind == yaml.MappingNode && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map):
		return t
	case n.Kind == yaml.SequenceNode && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
		return t
	}
	return nil
}

// fieldType is the type of the value of key in a mapping decoded into t,
// a struct or a map (nil: none), found as the decoder finds it: by the
// yaml tag, or the lowercased field name without one.
func fieldType(t reflect.Type, key string) reflect.Type {
	if t == nil {
		return nil
	}
	if t.Kind() == reflect.Map {
		return t.Elem()
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-":
			continue
		case opts == "inline" && f.Type.Kind() == reflect.Struct:
			if ft := fieldType(f.Type, key); ft != nil {
				return ft
			}
			continue
		case name == "":
			name = strings.ToLower(f.Name)
		}
		if name == key {
			return f.Type
		}
	}
	return nil
}

// keyName is a mapping key's string: its value, or its anchor's.
func keyName(key *yaml.Node) string {
	if key.Kind == yaml.AliasNode && key.Alias != nil {
		key = key.Alias
	}
	if key.Kind != yaml.ScalarNode {
		return ""
	}
	return key.Value
}

func isMergeKey(key *yaml.Node) bool {
	return key.Kind == yaml.ScalarNode && key.Tag == "!!merge"
}

func (e *envExpansion) expandScalar(n *yaml.Node, path string) {
	if !envRef.MatchString(n.Value) {
		return
	}
	value, unset := expandString(n.Value, e.lookup)
	for _, name := range unset {
		msg := fmt.Sprintf("line %d: %s: environment variable %s is not set", n.Line, path, name)
		if e.noFields {
			msg = fmt.Sprintf("line %d: environment variable %s is not set, used in a document that is not a mapping", n.Line, name)
		}
		e.problems = append(e.problems, msg)
	}
	e.refs[n.Line] = append(e.refs[n.Line], n.Value)
	e.expanded[n] = n.Value
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

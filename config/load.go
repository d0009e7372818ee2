package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the configuration file at path, parses it strictly, expands
// ${VAR} references in its values from the environment (see expandEnv),
// applies the defaults and validates it. Every error names the file. When
// the file is readable, the error unwraps to a *ValidationError for
// problems of content (unset variables, unknown keys, invalid values) and
// to the YAML parser's error for malformed YAML.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		return nil, &fileError{path: path, err: err}
	}
	return cfg, nil
}

// Parse is Load for a configuration already in memory.
func Parse(data []byte) (*Config, error) {
	return parse(data, os.LookupEnv)
}

func parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	cfg := &Config{}
	if err := decodeStrict(data, cfg, lookupEnv); err != nil {
		return nil, err
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeStrict parses a single YAML document, expands the ${VAR}
// references in its scalar values (see expandEnv) and decodes it into cfg,
// rejecting unknown keys. An empty document leaves cfg empty, for Validate
// to report what is missing. A syntax error comes back as the YAML parser's
// error; it is found before any expansion, so it cannot show a variable's
// value. Every other problem (unset variables, unknown keys, values of the
// wrong type, a second document) comes back in one *ValidationError, one
// per line, in the order of the file.
func decodeStrict(data []byte, cfg *Config, lookupEnv func(string) (string, bool)) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return flowRefHint(data, err)
	}
	var problems []string
	// The decoder stops after the first document; a second one would be
	// silently ignored.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return err
	case !emptyDocument(&next):
		problems = append(problems, fmt.Sprintf("line %d: a second YAML document; the configuration is a single document", next.Line))
	}

	env := expandEnv(&doc, lookupEnv)
	problems = append(problems, env.problems...)
	problems = append(problems, unknownKeys(data)...)
	if err := doc.Decode(cfg); err != nil {
		var typeErr *yaml.TypeError
		if !errors.As(err, &typeErr) {
			return err
		}
		for _, msg := range typeErr.Errors {
			problems = append(problems, rewriteDecodeError(env.redact(msg)))
		}
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b string) int { return cmp.Compare(problemLine(a), problemLine(b)) })
		return &ValidationError{Problems: problems}
	}
	return nil
}

var syntaxErrorLine = regexp.MustCompile(`^yaml: line (\d+):`)

// flowRefHint adds a hint to a YAML syntax error near a ${VAR} reference:
// inside a flow collection, [...] or {...}, an unquoted "{" or "}" ends a
// value, so the reference must be quoted. The parser sometimes reports the
// line before the one at fault.
func flowRefHint(data []byte, err error) error {
	m := syntaxErrorLine.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	n, _ := strconv.Atoi(m[1])
	lines := strings.Split(string(data), "\n")
	for i := max(n-2, 0); i < min(n+1, len(lines)); i++ {
		if unquotedFlowRef(lines[i]) {
			return fmt.Errorf(`%w; a ${VAR} inside [...] or {...} must be quoted, e.g. [/bin/x, "${VAR}"]`, err)
		}
	}
	return err
}

// unquotedFlowRef reports whether line has a ${VAR} after a "[" or "{"
// that opens a flow collection, not right after a quote.
func unquotedFlowRef(line string) bool {
	for _, loc := range envRef.FindAllStringIndex(line, -1) {
		before := line[:loc[0]]
		if strings.ContainsAny(before, "[{") && !strings.HasSuffix(before, `"`) && !strings.HasSuffix(before, "'") {
			return true
		}
	}
	return false
}

// unknownKeys returns the decoder's messages about unknown keys, rewritten
// to name YAML keys. A yaml.Node decodes without the decoder's KnownFields
// option, so the keys are checked by a strict decoding of the text as
// written into a throwaway Config: expansion changes only scalar values,
// never keys or structure, and the type errors of unexpanded values are
// ignored here.
func unknownKeys(data []byte) []string {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var typeErr *yaml.TypeError
	if err := dec.Decode(&Config{}); !errors.As(err, &typeErr) {
		return nil
	}
	var problems []string
	for _, msg := range typeErr.Errors {
		if unknownField.MatchString(msg) {
			problems = append(problems, rewriteDecodeError(msg))
		}
	}
	return problems
}

// problemLine is the N of a "line N: ..." problem.
func problemLine(problem string) int {
	var line int
	fmt.Sscanf(problem, "line %d:", &line)
	return line
}

func emptyDocument(n *yaml.Node) bool {
	if len(n.Content) == 0 {
		return true
	}
	c := n.Content[0]
	return len(n.Content) == 1 && c.Kind == yaml.ScalarNode && c.Tag == "!!null"
}

var unknownField = regexp.MustCompile(`^line (\d+): field (.+) not found in type (\S+)$`)

// yamlKeys maps the Go type names in the YAML decoder's messages to where
// the key was and which keys are allowed there.
var yamlKeys = map[string]struct {
	where string
	keys  []string
}{
	reflect.TypeFor[Config]().String():     {"at the top level", yamlFieldNames[Config]()},
	reflect.TypeFor[Connection]().String(): {"in a connection", yamlFieldNames[Connection]()},
	reflect.TypeFor[Importer]().String():   {"in an importer", yamlFieldNames[Importer]()},
	reflect.TypeFor[Download]().String():   {"in a download block", yamlFieldNames[Download]()},
	reflect.TypeFor[Admin]().String():      {"in the admin section", yamlFieldNames[Admin]()},
	reflect.TypeFor[Template]().String():   {"in the admin connection template (the API sets name, account_id, bucket, region, base_path and kms_key_arn; the server generates role_name and external_id)", yamlFieldNames[Template]()},
}

func yamlFieldNames[T any]() []string {
	t := reflect.TypeFor[T]()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// rewriteDecodeError turns the YAML decoder's messages, which name Go types,
// into ones that name YAML keys: `line 7: unknown key "extrnal_id" in a
// connection; did you mean "external_id"?`.
func rewriteDecodeError(msg string) string {
	if m := unknownField.FindStringSubmatch(msg); m != nil {
		line, key, typ := m[1], m[2], m[3]
		out := fmt.Sprintf("line %s: unknown key %q", line, key)
		if k, ok := yamlKeys[typ]; ok {
			out += " " + k.where
			if hint, ok := closest(key, k.keys); ok {
				out += fmt.Sprintf("; did you mean %q?", hint)
			}
		}
		return out
	}
	return strings.Replace(msg, "into time.Duration", `into a duration (write it with a unit, e.g. "30s")`, 1)
}

// fileError prefixes an error with the configuration file's name. A
// multi-line error (several problems) goes on indented lines below it.
type fileError struct {
	path string
	err  error
}

func (e *fileError) Error() string {
	msg := e.err.Error()
	if !strings.Contains(msg, "\n") {
		return e.path + ": " + msg
	}
	return e.path + ":\n  " + strings.ReplaceAll(msg, "\n", "\n  ")
}

func (e *fileError) Unwrap() error { return e.err }

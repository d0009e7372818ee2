package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the configuration file at path, expands ${VAR} references from
// the environment, parses it strictly, applies the defaults and validates
// it. Every error names the file. When the file is readable, the error
// unwraps to a *ValidationError for problems of content (unset variables,
// unknown keys, invalid values) and to the YAML parser's error for malformed
// YAML.
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
	expanded, err := expandEnv(data, lookupEnv)
	if err != nil {
		return nil, err
	}
	cfg := &Config{}
	if err := decodeStrict(expanded, cfg); err != nil {
		return nil, err
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeStrict decodes a single YAML document into cfg, rejecting unknown
// keys. An empty document leaves cfg empty, for Validate to report what is
// missing. Decoding problems come back as a *ValidationError, one per line.
func decodeStrict(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		var typeErr *yaml.TypeError
		if errors.As(err, &typeErr) {
			problems := make([]string, len(typeErr.Errors))
			for i, msg := range typeErr.Errors {
				problems[i] = rewriteDecodeError(msg)
			}
			return &ValidationError{Problems: problems}
		}
		return err
	}
	// The decoder stops after the first document; a second one would be
	// silently ignored.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return err
	case !emptyDocument(&next):
		return &ValidationError{Problems: []string{fmt.Sprintf("line %d: a second YAML document; the configuration is a single document", next.Line)}}
	}
	return nil
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

package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/s3connector/s3connector/config"
)

// Registrations cannot be undone, and a test may run several times in one
// process (-count): every test registers names of its own.
var testTypeSeq atomic.Int64

func newTestTypeName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, testTypeSeq.Add(1))
}

func TestNewBuiltin(t *testing.T) {
	client := &http.Client{}
	dir := filepath.Join(t.TempDir(), "inbox", "acme")
	tests := []struct {
		cfg  config.Importer
		deps Deps
		want Importer
	}{
		{
			cfg:  config.Importer{Type: config.ImporterDir, Path: dir},
			want: Dir{Root: dir},
		},
		{
			cfg:  config.Importer{Type: config.ImporterDiscard},
			want: Discard{},
		},
		{
			cfg:  config.Importer{Type: config.ImporterExec, Command: []string{"/usr/local/bin/ingest", "--verbose"}, Env: map[string]string{"DSN": "x"}, Timeout: 2 * time.Minute},
			want: Exec{Command: []string{"/usr/local/bin/ingest", "--verbose"}, Env: map[string]string{"DSN": "x"}, Timeout: 2 * time.Minute},
		},
		{
			cfg: config.Importer{
				Type:    config.ImporterHTTP,
				URL:     "https://ingest.example.com/files",
				Headers: map[string]string{"Authorization": "Bearer x"},
				Timeout: 30 * time.Second,
			},
			deps: Deps{HTTPClient: client},
			want: HTTP{URL: "https://ingest.example.com/files", Headers: map[string]string{"Authorization": "Bearer x"}, Timeout: 30 * time.Second, PermanentStatus: config.DefaultPermanentStatus(), Client: client},
		},
		{
			// An empty list stays empty (nothing is permanent), unlike nil.
			// Without Deps.HTTPClient the importer gets its own pooled
			// client: TestNewHTTPClient.
			cfg:  config.Importer{Type: config.ImporterHTTP, URL: "https://ingest.example.com/files", PermanentStatus: []int{}},
			deps: Deps{HTTPClient: client},
			want: HTTP{URL: "https://ingest.example.com/files", PermanentStatus: []int{}, Client: client},
		},
	}
	for _, tt := range tests {
		t.Run(tt.cfg.Type, func(t *testing.T) {
			got, err := New(tt.cfg, tt.deps)
			if err != nil {
				t.Fatal(err)
			}
			if reflect.TypeOf(got) != reflect.TypeOf(tt.want) {
				t.Fatalf("New(%+v) = %T, want %T", tt.cfg, got, tt.want)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("New(%+v) = %+v, want %+v", tt.cfg, got, tt.want)
			}
		})
	}

	info, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("dir importer did not create its directory: %v", err)
	}
	if !info.IsDir() || info.Mode().Perm()&0o027 != 0 {
		t.Errorf("created %s with mode %s, want a directory with at most 0750", dir, info.Mode())
	}
}

func TestNewBuiltinErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  config.Importer
		want string
	}{
		{"dir without path", config.Importer{Type: "dir"}, `importer.path: is required for importer type "dir"`},
		{"dir under a file", config.Importer{Type: "dir", Path: filepath.Join(file, "sub")}, "importer.path: mkdir " + file + ": not a directory"},
		{"exec without command", config.Importer{Type: "exec"}, `importer.command: is required for importer type "exec"`},
		{"exec with empty program", config.Importer{Type: "exec", Command: []string{""}}, `importer.command: is required for importer type "exec"`},
		{"exec with an invalid env name", config.Importer{Type: "exec", Command: []string{"/bin/true"}, Env: map[string]string{"A=B": "c"}}, `importer.env["A=B"]: not a valid environment variable`},
		{"http without url", config.Importer{Type: "http"}, `importer.url: is required for importer type "http"`},
		{"no type", config.Importer{}, "importer.type: is required (registered: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imp, err := New(tt.cfg, Deps{})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("New(%+v) = %v, %v; want error %q", tt.cfg, imp, err, tt.want)
			}
		})
	}
}

func TestNewUnknownType(t *testing.T) {
	name := newTestTypeName("mysink")
	Register(name, func(config.Importer, Deps) (Importer, error) { return Discard{}, nil })

	_, err := New(config.Importer{Type: "x"}, Deps{})
	want := fmt.Sprintf("importer.type: unknown type %q (registered: %s)", "x", strings.Join(Types(), ", "))
	if err == nil || err.Error() != want {
		t.Fatalf("New(type x) error = %v, want %q", err, want)
	}
	for _, typ := range []string{"dir", "discard", "exec", "http", name} {
		if !strings.Contains(err.Error(), typ) {
			t.Errorf("error %q does not list %q", err, typ)
		}
	}
}

// sinkImporter is a custom importer as a third party would write it.
type sinkImporter struct {
	topic   string
	options map[string]any
	timeout time.Duration
	logger  *zap.Logger
	client  *http.Client
}

func (s *sinkImporter) Import(_ context.Context, _ File, body io.Reader) error {
	_, err := io.Copy(io.Discard, body)
	return err
}

func newSink(cfg config.Importer, deps Deps) (Importer, error) {
	topic, ok := cfg.Options["topic"].(string)
	if !ok || topic == "" {
		return nil, errors.New("importer.options.topic: is required")
	}
	return &sinkImporter{topic: topic, options: cfg.Options, timeout: cfg.Timeout, logger: deps.Logger, client: deps.HTTPClient}, nil
}

const customConfig = `principal_arn: arn:aws:iam::111122223333:role/s3connector-platform
connections:
  - name: acme
    status: active
    account_id: "123456789012"
    bucket: acme-exports
    region: eu-central-1
    external_id: abcdefghijklmnopqrstuvwxyz234567
    importer:
      type: %s
      timeout: 15s
      options:
        topic: acme-files
        brokers: [kafka-1:9092, kafka-2:9092]
        tls: {enabled: true}
`

func TestRegisterCustomType(t *testing.T) {
	name := newTestTypeName("kafka")
	yaml := []byte(fmt.Sprintf(customConfig, name))

	// Before Register the configuration does not validate.
	if _, err := config.Parse(yaml); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("connections[0].importer.type: unknown importer type %q", name)) {
		t.Fatalf("Parse before Register: error = %v, want unknown importer type", err)
	}

	Register(name, newSink)
	if !slices.Contains(Types(), name) || !slices.Contains(config.ImporterTypes(), name) {
		t.Errorf("Types() = %q, config.ImporterTypes() = %q; want both to list %q", Types(), config.ImporterTypes(), name)
	}

	cfg, err := config.Parse(yaml)
	if err != nil {
		t.Fatalf("Parse after Register: %v", err)
	}
	client := &http.Client{}
	imp, err := New(cfg.Connections[0].Importer, Deps{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	sink, ok := imp.(*sinkImporter)
	if !ok {
		t.Fatalf("New = %T, want *sinkImporter", imp)
	}
	wantOptions := map[string]any{
		"topic":   "acme-files",
		"brokers": []any{"kafka-1:9092", "kafka-2:9092"},
		"tls":     map[string]any{"enabled": true},
	}
	if sink.topic != "acme-files" || !reflect.DeepEqual(sink.options, wantOptions) || sink.timeout != 15*time.Second {
		t.Errorf("factory got topic %q, options %#v, timeout %s", sink.topic, sink.options, sink.timeout)
	}
	if sink.logger == nil {
		t.Error("factory got a nil logger; New must substitute a no-op one")
	}
	if sink.client != client {
		t.Error("factory did not get Deps.HTTPClient")
	}

	// The factory's own checks come back as they are.
	cfg.Connections[0].Importer.Options = map[string]any{"brokers": []any{"kafka-1:9092"}}
	if _, err := New(cfg.Connections[0].Importer, Deps{}); err == nil || err.Error() != "importer.options.topic: is required" {
		t.Errorf("New without topic: error = %v, want the factory's", err)
	}
}

func TestNewFactoryReturnsNothing(t *testing.T) {
	name := newTestTypeName("empty")
	Register(name, func(config.Importer, Deps) (Importer, error) { return nil, nil })
	_, err := New(config.Importer{Type: name}, Deps{})
	want := fmt.Sprintf("importer.type: the factory of type %q returned no importer", name)
	if err == nil || err.Error() != want {
		t.Errorf("New error = %v, want %q", err, want)
	}
}

func TestRegisterPanics(t *testing.T) {
	taken := newTestTypeName("taken")
	Register(taken, newSink)

	tests := []struct {
		name    string
		factory Factory
		want    string
	}{
		{taken, newSink, fmt.Sprintf("register importer type %q: already registered", taken)},
		{config.ImporterDir, newSink, `register importer type "dir": already registered`},
		{config.ImporterHTTP, newSink, `register importer type "http": already registered`},
		{newTestTypeName("nil"), nil, "nil factory"},
		{"", newSink, `register importer type "": name must match [a-z][a-z0-9_-]*`},
		{"MySink", newSink, `register importer type "MySink": name must match [a-z][a-z0-9_-]*`},
		{"9sink", newSink, `register importer type "9sink": name must match [a-z][a-z0-9_-]*`},
		{"my.sink", newSink, `register importer type "my.sink": name must match [a-z][a-z0-9_-]*`},
		{"my sink", newSink, `register importer type "my sink": name must match [a-z][a-z0-9_-]*`},
		{"-sink", newSink, `register importer type "-sink": name must match [a-z][a-z0-9_-]*`},
		{"sink\n", newSink, `register importer type "sink\n": name must match [a-z][a-z0-9_-]*`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.name), func(t *testing.T) {
			before := Types()
			defer func() {
				r := recover()
				if msg, _ := r.(string); r == nil || !strings.Contains(msg, tt.want) {
					t.Errorf("Register(%q) panicked with %#v, want %q", tt.name, r, tt.want)
				}
				if after := Types(); !slices.Equal(before, after) {
					t.Errorf("failed Register changed Types() from %q to %q", before, after)
				}
			}()
			Register(tt.name, tt.factory)
		})
	}

	// A built-in factory is untouched by the failed attempt.
	if imp, err := New(config.Importer{Type: "discard"}, Deps{}); err != nil || imp != (Discard{}) {
		t.Errorf("New(discard) = %v, %v after a failed Register", imp, err)
	}
}

// TestRegistryConcurrent is for -race: registrations while importers are
// built and listed.
func TestRegistryConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		name := newTestTypeName("concurrent")
		wg.Go(func() { Register(name, newSink) })
		wg.Go(func() {
			if _, err := New(config.Importer{Type: config.ImporterDiscard}, Deps{}); err != nil {
				t.Error(err)
			}
			_ = Types()
		})
	}
	wg.Wait()
}

// TestTypesMatchConfig: the configuration accepts exactly the default
// environment's types (one registry, config asks it), whatever the tests
// registered before.
func TestTypesMatchConfig(t *testing.T) {
	got, want := Types(), config.ImporterTypes()
	if !slices.Equal(got, want) {
		t.Errorf("ingest.Types() = %q\nconfig.ImporterTypes() = %q", got, want)
	}
	if !slices.IsSorted(got) {
		t.Errorf("Types() = %q, not sorted", got)
	}
}

// TestRegistryEnvironment: an environment of one's own has the built-in
// types, and what is registered there stays there.
func TestRegistryEnvironment(t *testing.T) {
	env := NewEnvironment()
	builtin := []string{config.ImporterDir, config.ImporterDiscard, config.ImporterExec, config.ImporterHTTP}
	if got := env.Types(); !slices.Equal(got, builtin) {
		t.Fatalf("NewEnvironment().Types() = %q, want %q", got, builtin)
	}
	name := newTestTypeName("own")
	env.Register(name, newSink)
	if slices.Contains(Types(), name) || slices.Contains(config.ImporterTypes(), name) {
		t.Errorf("a type registered in another environment reached the default one: %q", Types())
	}
	imp, err := env.New(config.Importer{Type: name, Options: map[string]any{"topic": "t"}}, Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := imp.(*sinkImporter); !ok || s.logger == nil {
		t.Errorf("env.New = %#v, want a *sinkImporter with a logger", imp)
	}
	if _, err := New(config.Importer{Type: name}, Deps{}); err == nil || !strings.Contains(err.Error(), "unknown type") {
		t.Errorf("default New(%q) error = %v, want unknown type", name, err)
	}

	clone := env.Clone()
	other := newTestTypeName("clone")
	clone.Register(other, newSink)
	if !slices.Contains(clone.Types(), name) || slices.Contains(env.Types(), other) {
		t.Errorf("clone types %q, original %q: the clone must start as a copy and then go its own way", clone.Types(), env.Types())
	}
	if DefaultEnvironment() == nil || !slices.Equal(DefaultEnvironment().Types(), Types()) {
		t.Error("DefaultEnvironment is not the environment of Types")
	}
}

package ingest

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/s3connector/s3connector/config"
)

// Deps are the daemon's shared dependencies handed to importer constructors.
type Deps struct {
	// Logger is never nil in a Factory: New substitutes zap.NewNop().
	Logger *zap.Logger
	// HTTPClient is the client for importers that speak HTTP; nil lets each
	// build its own, pooled for Workers (the http type uses NewHTTPClient).
	HTTPClient *http.Client
	// Workers is the number of files the connection imports at once (its
	// workers setting), for sizing connection pools; 0 means
	// config.DefaultWorkers.
	Workers int
}

// Factory builds an importer from its configuration. The configuration has
// passed config.Validate, which checks nothing but timeout for a registered
// type: the factory checks the keys it reads (usually Options) and names
// them in its errors, e.g. `importer.options.topic: is required`. A factory
// may be called once per connection, concurrently.
type Factory func(cfg config.Importer, deps Deps) (Importer, error)

// Environment is a registry of importer types: the factories that New
// looks up by importer.type. It is a value, as Benthos's service.Environment
// is, so a program (or a test) can keep its own set of types beside the
// default one; Register, New and Types are shortcuts on DefaultEnvironment.
// Every Environment knows the built-in types dir, discard, exec and http. It
// is safe for concurrent use.
type Environment struct {
	mu        sync.RWMutex
	factories map[string]Factory
}

// NewEnvironment returns an environment holding only the built-in types.
func NewEnvironment() *Environment {
	return &Environment{factories: map[string]Factory{
		config.ImporterDir:     newDir,
		config.ImporterDiscard: newDiscard,
		config.ImporterExec:    newExec,
		config.ImporterHTTP:    newHTTP,
	}}
}

// defaultEnvironment serves Register, New and Types.
var defaultEnvironment = NewEnvironment()

// Configuration files name the default environment's types: config
// validates importer.type against them (config cannot import ingest, so it
// asks through this hook rather than keeping a list of its own).
func init() { config.SetImporterTypes(defaultEnvironment.Types) }

// DefaultEnvironment returns the environment of the package-level Register,
// New and Types, whose types config.Load and config.Parse accept.
func DefaultEnvironment() *Environment { return defaultEnvironment }

// Clone returns a new environment with the same types as e; registering in
// one does not change the other.
func (e *Environment) Clone() *Environment {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return &Environment{factories: maps.Clone(e.factories)}
}

// importerTypeRE is the form of an importer type name.
var importerTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// Register makes an importer type available to New. It panics if name is
// invalid (it must match [a-z][a-z0-9_-]*), f is nil, or name is already
// registered (like database/sql.Register); the built-in types dir, discard,
// exec and http are registered from the start. Call it before loading the
// configuration, typically from main or an init function.
func (e *Environment) Register(name string, f Factory) {
	if !importerTypeRE.MatchString(name) {
		panic(fmt.Sprintf("register importer type %q: name must match [a-z][a-z0-9_-]*", name))
	}
	if f == nil {
		panic(fmt.Sprintf("register importer type %q: nil factory", name))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, dup := e.factories[name]; dup {
		panic(fmt.Sprintf("register importer type %q: already registered", name))
	}
	e.factories[name] = f
}

// New builds the importer for cfg.Type. Errors name the field, e.g.
// `importer.type: unknown type "x" (registered: dir, discard, exec, http, mysink)`.
// The caller owns the importer: if it implements io.Closer, the caller
// closes it once when done with it (see Importer).
func (e *Environment) New(cfg config.Importer, deps Deps) (Importer, error) {
	e.mu.RLock()
	f, ok := e.factories[cfg.Type]
	e.mu.RUnlock()
	switch {
	case !ok && cfg.Type == "":
		return nil, fmt.Errorf("importer.type: is required (registered: %s)", strings.Join(e.Types(), ", "))
	case !ok:
		return nil, fmt.Errorf("importer.type: unknown type %q (registered: %s)", cfg.Type, strings.Join(e.Types(), ", "))
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	imp, err := f(cfg, deps)
	if err != nil {
		return nil, err
	}
	if imp == nil {
		return nil, fmt.Errorf("importer.type: the factory of type %q returned no importer", cfg.Type)
	}
	return imp, nil
}

// Types lists the registered type names, sorted.
func (e *Environment) Types() []string {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return slices.Sorted(maps.Keys(e.factories))
}

// Register registers an importer type in the default environment, whose
// types the configuration file may name: see Environment.Register.
func Register(name string, f Factory) { defaultEnvironment.Register(name, f) }

// New builds an importer from the default environment: see Environment.New.
func New(cfg config.Importer, deps Deps) (Importer, error) { return defaultEnvironment.New(cfg, deps) }

// Types lists the default environment's type names, sorted.
func Types() []string { return defaultEnvironment.Types() }

// The built-in factories repeat the required-key checks of config.Validate
// for a configuration built in code: an empty command would otherwise panic
// at the first file.

func newDir(cfg config.Importer, _ Deps) (Importer, error) {
	if cfg.Path == "" {
		return nil, errors.New(`importer.path: is required for importer type "dir"`)
	}
	if err := os.MkdirAll(cfg.Path, 0o750); err != nil {
		return nil, fmt.Errorf("importer.path: %w", err)
	}
	return Dir{Root: cfg.Path}, nil
}

func newDiscard(config.Importer, Deps) (Importer, error) {
	return Discard{}, nil
}

func newExec(cfg config.Importer, _ Deps) (Importer, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, errors.New(`importer.command: is required for importer type "exec"`)
	}
	for name, v := range cfg.Env {
		if name == "" || strings.ContainsAny(name, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("importer.env[%q]: not a valid environment variable", name)
		}
	}
	return Exec{Command: slices.Clone(cfg.Command), Env: maps.Clone(cfg.Env), Timeout: cfg.Timeout}, nil
}

func newHTTP(cfg config.Importer, deps Deps) (Importer, error) {
	if cfg.URL == "" {
		return nil, errors.New(`importer.url: is required for importer type "http"`)
	}
	client := deps.HTTPClient
	if client == nil {
		workers := deps.Workers
		if workers <= 0 {
			workers = config.DefaultWorkers
		}
		client = NewHTTPClient(workers)
	}
	permanent := slices.Clone(cfg.PermanentStatus)
	if permanent == nil {
		permanent = config.DefaultPermanentStatus()
	}
	return HTTP{URL: cfg.URL, Headers: maps.Clone(cfg.Headers), Timeout: cfg.Timeout, PermanentStatus: permanent, Client: client}, nil
}

package ingest

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
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

// importerFactories maps importer.type to its Factory. The built-in types
// are here from the start; config knows them on its own.
var importerFactories = struct {
	sync.RWMutex
	m map[string]Factory
}{m: map[string]Factory{
	config.ImporterDir:     newDir,
	config.ImporterDiscard: newDiscard,
	config.ImporterExec:    newExec,
	config.ImporterHTTP:    newHTTP,
}}

// Register makes an importer type available to `importer.type` in the config
// file. It panics if name is invalid (it must match [a-z][a-z0-9_-]*), f is
// nil, or name is already registered (like database/sql.Register); the
// built-in types dir, discard, exec and http are registered from the start.
// It also calls config.RegisterImporterType(name) so the config file
// validates. Call it before loading the configuration, typically from an
// init function.
func Register(name string, f Factory) {
	if f == nil {
		panic(fmt.Sprintf("register importer type %q: nil factory", name))
	}
	importerFactories.Lock()
	defer importerFactories.Unlock()
	if _, dup := importerFactories.m[name]; dup {
		panic(fmt.Sprintf("register importer type %q: already registered", name))
	}
	// Checks the name and panics before anything is registered.
	config.RegisterImporterType(name)
	importerFactories.m[name] = f
}

// New builds the importer for cfg.Type. Errors name the field, e.g.
// `importer.type: unknown type "x" (registered: dir, discard, exec, http, mysink)`.
func New(cfg config.Importer, deps Deps) (Importer, error) {
	importerFactories.RLock()
	f, ok := importerFactories.m[cfg.Type]
	importerFactories.RUnlock()
	switch {
	case !ok && cfg.Type == "":
		return nil, fmt.Errorf("importer.type: is required (registered: %s)", strings.Join(Types(), ", "))
	case !ok:
		return nil, fmt.Errorf("importer.type: unknown type %q (registered: %s)", cfg.Type, strings.Join(Types(), ", "))
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

// Types lists registered type names, sorted.
func Types() []string {
	importerFactories.RLock()
	defer importerFactories.RUnlock()
	return slices.Sorted(maps.Keys(importerFactories.m))
}

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

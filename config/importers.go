package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sync"
)

// importerTypeRE is the form of a registered importer type name.
var importerTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// registeredImporters holds the importer types registered from Go, besides
// the built-in ones in importerKeys.
var registeredImporters = struct {
	sync.RWMutex
	names map[string]bool
}{names: make(map[string]bool)}

// RegisterImporterType makes Validate accept name as importer.type. It is
// meant for importer types that a Go program plugs in; ingest.Register
// calls it, so programs normally call that instead. A registered type may
// use any importer key, options included: its constructor reads and checks
// them.
//
// Call it before loading the configuration, typically from an init
// function. It is safe for concurrent use. Like database/sql.Register, it
// panics when name does not match [a-z][a-z0-9_-]*, is a built-in type or
// is already registered.
func RegisterImporterType(name string) {
	if !importerTypeRE.MatchString(name) {
		panic(fmt.Sprintf("register importer type %q: name must match [a-z][a-z0-9_-]*", name))
	}
	if _, builtin := importerKeys[name]; builtin {
		panic(fmt.Sprintf("register importer type %q: a built-in type", name))
	}
	registeredImporters.Lock()
	defer registeredImporters.Unlock()
	if registeredImporters.names[name] {
		panic(fmt.Sprintf("register importer type %q: already registered", name))
	}
	registeredImporters.names[name] = true
}

// ImporterTypes returns the importer types Validate accepts, built-in and
// registered, sorted.
func ImporterTypes() []string {
	registeredImporters.RLock()
	defer registeredImporters.RUnlock()
	names := slices.AppendSeq(slices.Collect(maps.Keys(importerKeys)), maps.Keys(registeredImporters.names))
	slices.Sort(names)
	return names
}

// registeredImporterType reports whether name was registered with
// RegisterImporterType.
func registeredImporterType(name string) bool {
	registeredImporters.RLock()
	defer registeredImporters.RUnlock()
	return registeredImporters.names[name]
}

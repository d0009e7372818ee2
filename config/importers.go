package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// DefaultPermanentStatus returns the default of importer.permanent_status:
// the answers by which a sink says the request's content is wrong (400 Bad
// Request, 413 Content Too Large, 415 Unsupported Media Type, 422
// Unprocessable Content). 401, 403, 404 and the like blame the URL or the
// credentials, which are the same for every file: they are transient.
func DefaultPermanentStatus() []int { return []int{400, 413, 415, 422} }

// ExecInheritedEnv names the variables of the daemon's environment that the
// exec importer's command inherits, besides every LC_* variable (the
// locale). Nothing else is passed on: the daemon's environment holds its
// platform credentials and whatever else its container was given.
func ExecInheritedEnv() []string { return []string{"PATH", "HOME", "LANG", "TZ"} }

// ExecReservedEnvPrefix starts the variables the exec importer sets for
// each file (S3CONNECTOR_KEY, ...); importer.env may not set them.
const ExecReservedEnvPrefix = "S3CONNECTOR_"

// envNameRE is a portable environment variable name (POSIX: letters,
// digits and underscores, not starting with a digit).
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validatePermanentStatus checks importer.permanent_status at path.
func validatePermanentStatus(path string, codes []int, p *problems) {
	seen := make(map[int]bool, len(codes))
	for i, c := range codes {
		ip := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case c < 400 || c > 599:
			p.addf(ip, "must be an HTTP error status between 400 and 599, got %d", c)
		case seen[c]:
			p.addf(ip, "%d is listed twice", c)
		}
		seen[c] = true
	}
}

// validateExecEnv checks importer.env at path. Values are never echoed:
// they often carry credentials.
func validateExecEnv(path string, env map[string]string, p *problems) {
	for _, name := range slices.Sorted(maps.Keys(env)) {
		ep := fmt.Sprintf("%s[%q]", path, name)
		switch {
		case !envNameRE.MatchString(name):
			p.addf(ep, "invalid variable name: letters, digits and underscores, not starting with a digit")
		case strings.HasPrefix(name, ExecReservedEnvPrefix):
			p.addf(ep, "the %s* variables describe the file and are set by s3connector", ExecReservedEnvPrefix)
		}
		if strings.ContainsRune(env[name], 0) {
			p.addf(ep, "value must not contain NUL")
		}
	}
}

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

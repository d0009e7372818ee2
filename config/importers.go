package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
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

// importerTypes returns the importer types registered from Go (a superset
// of the built-in ones is fine); nil until SetImporterTypes.
var importerTypes atomic.Pointer[func() []string]

// SetImporterTypes makes Validate accept, as importer.type, every name that
// types returns besides the built-in ones; types is asked at each
// validation, so types registered later count too. A registered type may
// use any importer key, options included: its constructor reads and checks
// them.
//
// The registry itself is ingest.Environment: package ingest hands its
// default environment's Types to this hook, so a program registers with
// ingest.Register and nothing else (config cannot import ingest, which
// imports config). A program validating against an environment of its own
// passes that one's Types. It is safe for concurrent use.
func SetImporterTypes(types func() []string) {
	importerTypes.Store(&types)
}

// hookTypes asks the hook of SetImporterTypes, if any.
func hookTypes() []string {
	if f := importerTypes.Load(); f != nil && *f != nil {
		return (*f)()
	}
	return nil
}

// ImporterTypes returns the importer types Validate accepts, built-in and
// registered, sorted.
func ImporterTypes() []string {
	names := slices.Collect(maps.Keys(importerKeys))
	for _, n := range hookTypes() {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// registeredImporterType reports whether name is an importer type
// registered from Go (see SetImporterTypes).
func registeredImporterType(name string) bool {
	return slices.Contains(hookTypes(), name)
}

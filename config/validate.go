package config

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ValidationError lists every problem found in a configuration, one per
// line. Problems found by Validate start with the YAML path of the offending
// value (`connections[1].base_path: must not start with "/"`); those found
// before a path exists (unset environment variables, unknown keys, values
// of the wrong type) start with the line number (`line 7: ...`).
type ValidationError struct {
	Problems []string
}

// Error returns the problems joined by newlines.
func (e *ValidationError) Error() string {
	return strings.Join(e.Problems, "\n")
}

// Importer types.
const (
	ImporterDir     = "dir"
	ImporterDiscard = "discard"
	ImporterExec    = "exec"
	ImporterHTTP    = "http"
)

// importerKeys lists, per built-in importer type, the keys besides type it
// uses. None uses options, which only registered types read.
var importerKeys = map[string][]string{
	ImporterDir:     {"path"},
	ImporterDiscard: {},
	ImporterExec:    {"command", "env", "timeout"},
	ImporterHTTP:    {"url", "headers", "permanent_status", "timeout"},
}

// headerNameRE is an RFC 9110 token.
var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// problems collects "path: message" lines.
type problems []string

func (p *problems) add(path string, err error) {
	if err != nil {
		*p = append(*p, path+": "+err.Error())
	}
}

func (p *problems) addf(path, format string, args ...any) {
	*p = append(*p, path+": "+fmt.Sprintf(format, args...))
}

// Validate checks c after ApplyDefaults and reports every problem at once
// as a *ValidationError. It returns nil for a valid configuration. It never
// includes an External ID or a token in a message. Its only I/O: it reads
// status_token_file into StatusToken.
func (c *Config) Validate() error {
	var p problems
	p.add("listen", validateListen(c.Listen))
	if c.StatusTokenFile != "" {
		var err error
		c.StatusToken, err = readStatusToken(c.StatusTokenFile)
		p.add("status_token_file", err)
	}
	p.add("principal_arn", validatePrincipalARN(c.PrincipalARN))
	if c.ShutdownGrace < 0 {
		p.addf("shutdown_grace", "must not be negative, got %s", c.ShutdownGrace)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		p.addf("log.format", "must be json or console, got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.addf("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	c.validateStored(&p)
	if len(c.Connections) == 0 && c.DataDir == "" {
		p.addf("connections", "at least one connection is required (or set data_dir for connections created through the admin API)")
	}
	first := make(map[string]int)
	for i := range c.Connections {
		conn := &c.Connections[i]
		path := fmt.Sprintf("connections[%d]", i)
		conn.validate(path, &p)
		if conn.Name == "" {
			continue
		}
		if j, dup := first[conn.Name]; dup {
			p.addf(path+".name", "duplicate name %q (also connections[%d])", conn.Name, j)
		} else {
			first[conn.Name] = i
		}
	}
	c.validateOverlaps(&p)
	if len(p) > 0 {
		return &ValidationError{Problems: p}
	}
	return nil
}

func (c *Connection) validate(path string, p *problems) {
	p.add(path+".name", ValidateName(c.Name))
	switch c.Status {
	case StatusDraft, StatusActive, StatusDisabled:
	default:
		p.addf(path+".status", "must be one of %s, %s, %s, got %q", StatusDraft, StatusActive, StatusDisabled, c.Status)
	}
	p.add(path+".account_id", ValidateAccountID(c.AccountID))
	p.add(path+".bucket", ValidateBucket(c.Bucket))
	p.add(path+".region", ValidateRegion(c.Region))
	p.add(path+".base_path", ValidateBasePath(c.BasePath))
	for i, pattern := range c.Include {
		p.add(fmt.Sprintf("%s.include[%d]", path, i), validatePattern(pattern))
	}
	for i, pattern := range c.Exclude {
		p.add(fmt.Sprintf("%s.exclude[%d]", path, i), validatePattern(pattern))
	}
	if c.MinAge < 0 {
		p.addf(path+".min_age", "must not be negative, got %s", c.MinAge)
	}
	if c.LeaseTTL != 0 && c.LeaseTTL < time.Second {
		p.addf(path+".lease_ttl", "must be at least 1s (0 means the default, 90s), got %s", c.LeaseTTL)
	}
	if c.MaxFiles < 0 {
		p.addf(path+".max_files", "must not be negative (0 means unlimited), got %d", c.MaxFiles)
	}
	if c.MaxAttempts < 0 {
		p.addf(path+".max_attempts", "must not be negative (0 means unlimited), got %d", c.MaxAttempts)
	}
	// An empty role name is derived from the name; when that is empty too,
	// the name's problem says it all.
	if c.RoleName != "" || c.Name != "" {
		p.add(path+".role_name", validateRoleName(c.RoleName))
	}
	switch {
	case c.ExternalID != "":
		p.add(path+".external_id", ValidateExternalID(c.ExternalID))
	case c.Status != StatusDraft:
		p.addf(path+".external_id", "is required unless status is %s", StatusDraft)
	}
	if c.KMSKeyARN != "" {
		p.add(path+".kms_key_arn", validateKMSKeyARN(c.KMSKeyARN))
	}
	p.add(path+".schedule", validateSchedule(c.Schedule))
	if c.Workers < 1 || c.Workers > MaxWorkers {
		p.addf(path+".workers", "must be between 1 and %d, got %d", MaxWorkers, c.Workers)
	}
	c.Importer.validate(path+".importer", c.Status, p)
	c.Download.validate(path+".download", p)
	if c.Endpoint != "" {
		p.add(path+".endpoint", validateEndpoint(c.Endpoint))
	}
	if c.STSEndpoint != "" {
		p.add(path+".sts_endpoint", validateEndpoint(c.STSEndpoint))
	}
}

func (imp *Importer) validate(path string, status Status, p *problems) {
	set := imp.setKeys()
	allowed, builtin := importerKeys[imp.Type]
	switch {
	case imp.Type == "" && status == StatusActive:
		p.addf(path+".type", "is required for an active connection; one of %s", strings.Join(ImporterTypes(), ", "))
		return
	case imp.Type == "" && len(set) > 0:
		p.addf(path+".type", "is required when other importer keys are set; one of %s", strings.Join(ImporterTypes(), ", "))
		return
	case imp.Type == "":
		return // a draft or disabled connection may leave the importer out
	case !builtin && registeredImporterType(imp.Type):
		// A registered type may read any key; its constructor checks them.
		imp.validateTimeout(path, p)
		return
	case !builtin:
		p.add(path+".type", unknownImporterType(imp.Type))
		return
	}
	for _, key := range set {
		switch {
		case key == "options":
			p.addf(path+".options", "not used by the built-in importer type %q; options are read only by importer types registered from Go", imp.Type)
		case !slices.Contains(allowed, key):
			p.addf(path+"."+key, "not used by importer type %q", imp.Type)
		}
	}
	switch imp.Type {
	case ImporterDir:
		switch {
		case imp.Path == "":
			p.addf(path+".path", "is required for importer type %q", imp.Type)
		case !filepath.IsAbs(imp.Path):
			p.addf(path+".path", "must be an absolute path, got %q", imp.Path)
		}
	case ImporterExec:
		switch {
		case len(imp.Command) == 0:
			p.addf(path+".command", "is required for importer type %q: the program and its arguments, e.g. [/usr/local/bin/ingest, --verbose]", imp.Type)
		case imp.Command[0] == "":
			p.addf(path+".command[0]", "must name the program to run")
		}
		validateExecEnv(path+".env", imp.Env, p)
	case ImporterHTTP:
		if imp.URL == "" {
			p.addf(path+".url", "is required for importer type %q", imp.Type)
		} else {
			p.add(path+".url", validateHTTPURL(imp.URL))
		}
		for _, name := range slices.Sorted(maps.Keys(imp.Headers)) {
			hp := fmt.Sprintf("%s.headers[%q]", path, name)
			if !headerNameRE.MatchString(name) {
				p.addf(hp, "invalid header name")
			}
			// Values are not echoed: they often carry credentials.
			if strings.ContainsAny(imp.Headers[name], "\r\n\x00") {
				p.addf(hp, "value must not contain a line break or NUL")
			}
		}
		validatePermanentStatus(path+".permanent_status", imp.PermanentStatus, p)
	}
	imp.validateTimeout(path, p)
}

func (imp *Importer) validateTimeout(path string, p *problems) {
	if imp.Timeout < 0 {
		p.addf(path+".timeout", "must not be negative, got %s", imp.Timeout)
	}
}

// unknownImporterType lists the accepted types, with a hint for a typo.
func unknownImporterType(typ string) error {
	types := ImporterTypes()
	err := fmt.Errorf("unknown importer type %q; must be one of %s", typ, strings.Join(types, ", "))
	// Type names are short: two edits turn "ftp" into "http". A typo
	// rarely changes the first letter, so only such near names are hinted.
	if hint, ok := closest(typ, types); ok && strings.ToLower(typ)[0] == hint[0] {
		err = fmt.Errorf("%w; did you mean %q?", err, hint)
	}
	return err
}

// setKeys returns the YAML keys besides type that have a value, in
// declaration order.
func (imp *Importer) setKeys() []string {
	var keys []string
	for _, k := range []struct {
		name string
		set  bool
	}{
		{"path", imp.Path != ""},
		{"command", imp.Command != nil},
		{"url", imp.URL != ""},
		{"headers", imp.Headers != nil},
		{"permanent_status", imp.PermanentStatus != nil},
		{"env", imp.Env != nil},
		{"timeout", imp.Timeout != time.Duration(0)},
		{"options", imp.Options != nil},
	} {
		if k.set {
			keys = append(keys, k.name)
		}
	}
	return keys
}

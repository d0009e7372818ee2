package config

import "strings"

// ApplyDefaults fills the fields left empty with their documented defaults
// and normalises base_path. Load and Parse call it before Validate; call it
// yourself for a Config built in code. It is idempotent.
func (c *Config) ApplyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.Log.Format == "" {
		c.Log.Format = DefaultLogFormat
	}
	if c.Log.Level == "" {
		c.Log.Level = DefaultLogLevel
	}
	if c.Admin.Listen == "" {
		c.Admin.Listen = DefaultAdminListen
	}
	if c.DataDir != "" {
		c.Admin.Template.applyDefaults()
	}
	for i := range c.Connections {
		c.Connections[i].applyDefaults()
	}
}

func (c *Connection) applyDefaults() {
	if c.Status == "" {
		c.Status = StatusDraft
	}
	if c.RoleName == "" && c.Name != "" {
		c.RoleName = RoleNamePrefix + c.Name
	}
	if c.Schedule == "" {
		c.Schedule = DefaultSchedule
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Importer.Timeout == 0 && (c.Importer.Type == "exec" || c.Importer.Type == "http") {
		c.Importer.Timeout = DefaultImporterTimeout
	}
	c.Download.applyDefaults()
	c.BasePath = NormalizeBasePath(c.BasePath)
}

// NormalizeBasePath returns p with a trailing "/" so it names a folder:
// "imports" becomes "imports/". The empty path (the whole bucket) stays
// empty.
func NormalizeBasePath(p string) string {
	if p != "" && !strings.HasSuffix(p, "/") {
		return p + "/"
	}
	return p
}

package config

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// DefaultAdminListen is the admin API's address: loopback, beside the
// metrics listener's port.
const DefaultAdminListen = "127.0.0.1:9465"

// StoreFile is the name of the store's file in data_dir.
const StoreFile = "connections.db"

// Admin configures the admin API and the wizard page (package admin, web).
// They are off unless at least one token file is set.
type Admin struct {
	// Listen is the API's own address, never the metrics listener's.
	// Default DefaultAdminListen (loopback). Any other address needs
	// TLSCertFile and TLSKeyFile: the API carries bearer tokens and
	// External IDs.
	Listen string `yaml:"listen"`
	// TokenFiles are absolute paths of files holding one bearer token each
	// (at least 32 characters); a token's id in the audit log is its file's
	// base name, so the base names are distinct. Several at once allow a
	// rotation: add the new file, move the clients, remove the old one; a
	// SIGHUP reads them again. None: the API and the page are off.
	TokenFiles []string `yaml:"token_files"`
	// AllowedHosts are the host names (optionally host:port) requests may
	// carry in Host and Origin, the guard against DNS rebinding. Default:
	// localhost, 127.0.0.1 and [::1], for the loopback listener.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// TLSCertFile and TLSKeyFile (absolute paths, both or neither) make
	// the API serve HTTPS.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// Template is what every API-created connection gets from the
	// operator: importer, schedule, workers, limits and endpoints. The API
	// sets only the seeds' fields (name, account, bucket, region, base
	// path) and a KMS key. Required with data_dir.
	Template Template `yaml:"template"`
}

// Enabled reports whether the admin API is on (a token file is set).
func (a Admin) Enabled() bool { return len(a.TokenFiles) > 0 }

// Template is the operator's settings of the connections created through
// the admin API; the keys mean what they mean in a connection. For the dir
// importer, path is a parent directory: each stored connection imports into
// path/<name>.
type Template struct {
	Include     []string      `yaml:"include"`
	Exclude     []string      `yaml:"exclude"`
	MinAge      time.Duration `yaml:"min_age"`
	MaxFiles    int           `yaml:"max_files"`
	MaxFileSize ByteSize      `yaml:"max_file_size"`
	MaxAttempts int           `yaml:"max_attempts"`
	LeaseTTL    time.Duration `yaml:"lease_ttl"`
	// Schedule defaults to DefaultSchedule, Workers to DefaultWorkers.
	Schedule    string   `yaml:"schedule"`
	Workers     int      `yaml:"workers"`
	Importer    Importer `yaml:"importer"`
	Download    Download `yaml:"download"`
	Endpoint    string   `yaml:"endpoint"`
	STSEndpoint string   `yaml:"sts_endpoint"`
}

// Connection is the template as an active connection without a name or a
// bucket: what store.Connection.ConfigConnection fills in.
func (t Template) Connection() Connection {
	return Connection{
		Status:  StatusActive,
		Include: t.Include, Exclude: t.Exclude, MinAge: t.MinAge,
		MaxFiles: t.MaxFiles, MaxFileSize: t.MaxFileSize, MaxAttempts: t.MaxAttempts, LeaseTTL: t.LeaseTTL,
		Schedule: t.Schedule, Workers: t.Workers, Importer: t.Importer, Download: t.Download,
		Endpoint: t.Endpoint, STSEndpoint: t.STSEndpoint,
	}
}

// StorePath is the store's file in DataDir; "" without a data_dir.
func (c *Config) StorePath() string {
	if c.DataDir == "" {
		return ""
	}
	return filepath.Join(c.DataDir, StoreFile)
}

func (t *Template) applyDefaults() {
	if t.Schedule == "" {
		t.Schedule = DefaultSchedule
	}
	if t.Workers == 0 {
		t.Workers = DefaultWorkers
	}
	t.Download.applyDefaults()
	if t.Importer.Timeout == 0 && (t.Importer.Type == ImporterExec || t.Importer.Type == ImporterHTTP) {
		t.Importer.Timeout = DefaultImporterTimeout
	}
}

// validateStored checks data_dir and the admin section.
func (c *Config) validateStored(p *problems) {
	if c.DataDir != "" && !filepath.IsAbs(c.DataDir) {
		p.addf("data_dir", "must be an absolute path, got %q", c.DataDir)
	}
	a := &c.Admin
	if err := validateListen(a.Listen); err != nil {
		p.add("admin.listen", err)
	} else if clash(a.Listen, c.Listen) {
		p.addf("admin.listen", "%q must differ from listen (%q): the admin API has a listener of its own", a.Listen, c.Listen)
	} else if !loopbackListen(a.Listen) && (a.TLSCertFile == "" || a.TLSKeyFile == "") {
		p.addf("admin.listen", "%q is not a loopback address: set admin.tls_cert_file and admin.tls_key_file (the API carries bearer tokens and External IDs), or listen on 127.0.0.1", a.Listen)
	}
	ids := map[string]int{}
	for i, f := range a.TokenFiles {
		path := fmt.Sprintf("admin.token_files[%d]", i)
		if !filepath.IsAbs(f) {
			p.addf(path, "must be an absolute path, got %q", f)
			continue
		}
		id := filepath.Base(f)
		if j, dup := ids[id]; dup {
			p.addf(path, "its base name %q, the token's id in the audit log, is also admin.token_files[%d]'s; token files need distinct names", id, j)
			continue
		}
		ids[id] = i
	}
	if a.Enabled() && c.DataDir == "" {
		p.addf("admin.token_files", "the admin API needs data_dir, where the connections it creates are stored")
	}
	for i, h := range a.AllowedHosts {
		if strings.TrimSpace(h) == "" || strings.ContainsAny(h, "/@?#\\ ") {
			p.addf(fmt.Sprintf("admin.allowed_hosts[%d]", i), "want a host name or host:port, got %q", h)
		}
	}
	for _, f := range []struct{ key, val, other, otherVal string }{
		{"tls_cert_file", a.TLSCertFile, "tls_key_file", a.TLSKeyFile},
		{"tls_key_file", a.TLSKeyFile, "tls_cert_file", a.TLSCertFile},
	} {
		switch {
		case f.val == "" && f.otherVal != "":
			p.addf("admin."+f.key, "is required with admin.%s", f.other)
		case f.val != "" && !filepath.IsAbs(f.val):
			p.addf("admin."+f.key, "must be an absolute path, got %q", f.val)
		}
	}
	if c.DataDir != "" {
		c.validateTemplate(p)
	}
}

// validateTemplate checks the template as an active connection would be
// checked, with stand-in values for what each stored connection brings, so
// that its problems come out with their admin.template paths; its dir
// importer directory must not overlap a file connection's.
func (c *Config) validateTemplate(p *problems) {
	t := c.Admin.Template.Connection()
	t.Name, t.AccountID, t.Bucket, t.Region = "template", "111122223333", "template-bucket", "us-east-1"
	t.RoleName, t.ExternalID = RoleNamePrefix+t.Name, "template0external0id0template0id"
	var tp problems
	t.validate("connections[0]", &tp)
	for _, msg := range tp {
		*p = append(*p, "admin.template"+strings.TrimPrefix(msg, "connections[0]"))
	}
	if !dirComparable(&t) {
		return
	}
	for i := range c.Connections {
		a := &c.Connections[i]
		if !dirComparable(a) {
			continue
		}
		if msg, ok := dirOverlap(t.Importer.Path, a.Importer.Path, label(i, a)); ok {
			p.addf("admin.template.importer.path", "%s; stored connections import into subdirectories of it, which would mix with that connection's files", msg)
			break
		}
	}
}

// clash reports whether two listen addresses would take the same port.
func clash(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	any := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || any(ha) || any(hb)
}

// loopbackListen reports whether addr binds to loopback only.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

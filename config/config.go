// Package config loads and validates the s3connector configuration file.
//
// The YAML key names are the user-facing contract and are documented in the
// README. Parsing is strict: unknown keys are an error. Validate reports every
// problem at once, each prefixed with its path in the file, for example
// `connections[0].account_id: must be exactly 12 digits, got "1234"`.
package config

import (
	"time"
)

// Defaults applied by Load and Parse to fields left empty.
const (
	DefaultListen   = "127.0.0.1:9464"
	DefaultSchedule = "@every 5m"
	DefaultWorkers  = 16
	// DefaultShutdownGrace is how long a stopping daemon lets files in
	// progress finish.
	DefaultShutdownGrace = 30 * time.Second
	// DefaultImporterTimeout bounds one file's import by the exec and http
	// importers when importer.timeout is not set: a sink that accepts a
	// request and never answers must not hold a worker, and with it the
	// connection's run, forever.
	DefaultImporterTimeout = 30 * time.Minute
	// DefaultLogFormat and DefaultLogLevel configure the logger.
	DefaultLogFormat = "json"
	DefaultLogLevel  = "info"
	// RoleNamePrefix is prepended to the connection name to derive the
	// default IAM role name.
	RoleNamePrefix = "s3connector-"
)

// Config is the whole configuration file.
type Config struct {
	// Listen is the address of the HTTP server for /metrics, /healthz,
	// /readyz and /status. Default DefaultListen.
	Listen string `yaml:"listen"`
	// PrincipalARN is the platform's own AWS principal, shown in every trust
	// policy. Required.
	PrincipalARN string `yaml:"principal_arn"`
	// ShutdownGrace bounds how long files in progress may take to finish
	// after SIGTERM/SIGINT; no new move starts after it. Default
	// DefaultShutdownGrace.
	ShutdownGrace time.Duration `yaml:"shutdown_grace"`
	// StatusTokenFile, when set, is the absolute path of a file holding
	// the bearer token /status requires; surrounding whitespace is trimmed.
	// Validate reads it into StatusToken, so it is read again on every
	// reload (a rotated Secret takes effect with SIGHUP). Default unset:
	// /status answers anyone, with role ARNs and account IDs redacted.
	StatusTokenFile string `yaml:"status_token_file"`
	// StatusToken is the content of StatusTokenFile, filled by Validate.
	// It is a secret: never log or print it.
	StatusToken string `yaml:"-"`
	// Log configures the daemon's logs.
	Log Log `yaml:"log"`
	// DataDir is the absolute path of the directory holding the store of
	// the connections created through the admin API (its file StoreFile,
	// mode 0600: it holds External IDs). Stored connections run with the
	// file's, whether or not the API is on. Default unset: no store, no
	// admin API.
	DataDir string `yaml:"data_dir"`
	// Admin configures the admin API and the wizard page.
	Admin Admin `yaml:"admin"`
	// Connections are the customers' buckets. At least one is required
	// unless data_dir is set.
	Connections []Connection `yaml:"connections"`
}

// Log configures logging (zap).
type Log struct {
	// Format is json (default) or console.
	Format string `yaml:"format"`
	// Level is debug, info (default), warn or error.
	Level string `yaml:"level"`
}

// Status is the lifecycle state of a connection: draft → active → disabled.
type Status string

// Connection states. A draft is validated but never ingested.
const (
	StatusDraft    Status = "draft"
	StatusActive   Status = "active"
	StatusDisabled Status = "disabled"
)

// Connection describes one customer bucket reached through an IAM role.
type Connection struct {
	// Name is required, unique, [a-z0-9-].
	Name string `yaml:"name"`
	// Status defaults to draft.
	Status Status `yaml:"status"`
	// AccountID is the customer's 12-digit AWS account id.
	AccountID string `yaml:"account_id"`
	Bucket    string `yaml:"bucket"`
	Region    string `yaml:"region"`
	// BasePath is an optional key prefix; it is normalised to end with "/".
	// It contains no "*", "?", "$", "{" or "}" (IAM wildcards and policy
	// variables), and it neither equals nor nests the base path of another
	// connection in the same bucket; empty is the whole bucket.
	BasePath string `yaml:"base_path"`
	// Include and Exclude are glob patterns (doublestar syntax: "*" stays
	// within a folder, "**" crosses folders) matched against the key
	// relative to BasePath. A file is taken when it matches any Include
	// (or Include is empty) and no Exclude. Default: every file.
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
	// MinAge skips objects modified less than this long ago: files that may
	// still be being uploaded. Default 0, no wait.
	MinAge time.Duration `yaml:"min_age"`
	// MaxFiles caps the files taken per run; 0 (the default) is unlimited.
	MaxFiles int `yaml:"max_files"`
	// MaxFileSize sends a larger file to error/ (with a report) without
	// reading it: a guard against a sink or disk being flooded by one
	// object. 0 (the default) is unlimited.
	MaxFileSize ByteSize `yaml:"max_file_size"`
	// MaxAttempts sends a file to error/ (with a report) after this many
	// transient failures across runs; 0 (the default) retries forever. The
	// counts are kept in the bucket under <base_path>error/.s3connector/attempts/.
	MaxAttempts int `yaml:"max_attempts"`
	// LeaseTTL is how long the connection's lease in the bucket (one writer
	// per inbox) lasts without renewal, which is also how long a crashed
	// process keeps others from the connection (plus the clock-skew
	// allowance: 30s, or lease_ttl when shorter, so hosts' clocks must agree
	// within that). 0 (the default) means ingest.DefaultLeaseTTL, 90s; at
	// least 1s.
	LeaseTTL time.Duration `yaml:"lease_ttl"`
	// RoleName defaults to RoleNamePrefix + Name.
	RoleName string `yaml:"role_name"`
	// ExternalID guards the role's trust policy; required unless draft.
	ExternalID string `yaml:"external_id"`
	// KMSKeyARN, when set, makes `policy` print the KMS key-policy statement.
	KMSKeyARN string `yaml:"kms_key_arn"`
	// Schedule is robfig/cron/v3 syntax; default DefaultSchedule.
	Schedule string `yaml:"schedule"`
	// Workers is the number of files processed concurrently, 1..1024;
	// default DefaultWorkers.
	Workers  int      `yaml:"workers"`
	Importer Importer `yaml:"importer"`
	// Download tunes how file bodies are read: parallel ranged GETs above
	// a size (see Download).
	Download Download `yaml:"download"`
	// Endpoint is an optional S3-compatible endpoint URL (path-style).
	Endpoint string `yaml:"endpoint"`
	// STSEndpoint is an optional STS endpoint URL.
	STSEndpoint string `yaml:"sts_endpoint"`
}

// Importer selects and configures the sink that receives each file.
type Importer struct {
	// Type is one of the built-in types dir, discard, exec, http, or a type
	// registered from Go (ingest.Register; see SetImporterTypes).
	Type string `yaml:"type"`
	// Path is the target directory of the dir importer, absolute; it
	// neither equals nor nests another dir importer's path.
	Path string `yaml:"path"`
	// Command is the argv of the exec importer.
	Command []string `yaml:"command"`
	// URL is the endpoint of the http importer.
	URL string `yaml:"url"`
	// Headers are extra request headers of the http importer.
	Headers map[string]string `yaml:"headers"`
	// PermanentStatus lists the answers (400..599) by which the http
	// importer's sink rejects a file's content, sending it to error/; default
	// DefaultPermanentStatus. Any other non-2xx answer is transient; an
	// empty list makes every one transient.
	PermanentStatus []int `yaml:"permanent_status"`
	// Env is added, values as they are, to the environment of the exec
	// importer's command, which otherwise gets only ExecInheritedEnv from
	// the daemon's environment and the S3CONNECTOR_* descriptor.
	Env map[string]string `yaml:"env"`
	// Timeout bounds one file's import (exec and http); default
	// DefaultImporterTimeout.
	Timeout time.Duration `yaml:"timeout"`
	// Options are free-form settings for an importer type registered from
	// Go; its constructor reads and checks them. The built-in types reject them.
	// Nested mappings decode as map[string]any.
	Options map[string]any `yaml:"options"`
}

// RoleARN is the ARN of the customer's IAM role the connection assumes, in
// the partition of the connection's region.
func (c Connection) RoleARN() string {
	return "arn:" + Partition(c.Region) + ":iam::" + c.AccountID + ":role/" + c.RoleName
}

// Connection returns the connection with the given name.
func (c *Config) Connection(name string) (*Connection, bool) {
	for i := range c.Connections {
		if c.Connections[i].Name == name {
			return &c.Connections[i], true
		}
	}
	return nil, false
}

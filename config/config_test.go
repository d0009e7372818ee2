package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // CRON_TZ schedules must validate on hosts without zoneinfo
)

const testdataDir = "../testdata/config"

// externalIDValue is the External ID in the external_id_* files; no message
// may contain it.
const externalIDValue = "abcdefghijklmnopqrstuvwxyz234567"

// secretMarker is the value of S3C_TEST_SECRET_MARKER in TestLoadBad: YAML
// syntax (an alias) if it were pasted into the text before parsing. No
// message may contain it.
const secretMarker = "*s3c-secret-marker-7d1f"

// badFiles maps every testdata/config/*.bad.yaml file to its expected
// problems. Every problem reported must contain one of want, and every want
// must be found in a problem, so a file cannot pass with extra problems.
var badFiles = []struct {
	file   string
	want   []string
	absent []string // must not appear anywhere in the error
}{
	{
		file: "account_id.bad.yaml",
		want: []string{`connections[0].account_id: must be exactly 12 digits, got "1234"`},
	},
	{
		file: "admin_template.bad.yaml",
		want: []string{
			`data_dir: must be an absolute path, got "var/lib/s3connector"`,
			`admin.template.schedule: invalid schedule "0 3 * *": expected exactly 5 fields, found 4`,
			"admin.template.workers: must be between 1 and 1024, got 2000",
			`admin.template.importer.path: "/srv/import" contains connections[0] ("acme")'s import directory "/srv/import/acme"; stored connections import into subdirectories of it`,
		},
	},
	{
		file: "admin_template_importer.bad.yaml",
		want: []string{"admin.template.importer.type: is required for an active connection; one of dir, discard, exec, http"},
	},
	{
		file: "admin_template_key.bad.yaml",
		want: []string{`line 6: unknown key "bucket" in the admin connection template (the API sets name, account_id, bucket, region, base_path and kms_key_arn`},
	},
	{
		file: "admin_tls.bad.yaml",
		want: []string{
			`admin.listen: "0.0.0.0:9465" is not a loopback address: set admin.tls_cert_file and admin.tls_key_file`,
			`admin.tls_cert_file: must be an absolute path, got "certs/tls.crt"`,
			"admin.tls_key_file: is required with admin.tls_cert_file",
		},
	},
	{
		file: "admin_tokens.bad.yaml",
		want: []string{
			`admin.listen: "127.0.0.1:9464" must differ from listen ("127.0.0.1:9464")`,
			`admin.token_files[0]: must be an absolute path, got "secrets/token"`,
			`admin.token_files[2]: its base name "token-1", the token's id in the audit log, is also admin.token_files[1]'s`,
			"admin.token_files: the admin API needs data_dir, where the connections it creates are stored",
			`admin.allowed_hosts[0]: want a host name or host:port, got "https://admin.example.com/"`,
		},
	},
	{
		file: "base_path_absolute.bad.yaml",
		want: []string{`connections[0].base_path: must not start with "/", got "/incoming/"`},
	},
	{
		file: "base_path_dotdot.bad.yaml",
		want: []string{`connections[0].base_path: must not contain ".."`},
	},
	{
		file: "base_path_overlap.bad.yaml",
		want: []string{
			`connections[1].base_path: "a/b/" is inside connections[0] ("main")'s base path "a/"; one connection would ingest the other's inbox, archive/ and error/ folders`,
			`connections[2].base_path: "a/" is also connections[0] ("main")'s base path; one connection would ingest`,
			`connections[6].base_path: "z/" is inside connections[5] ("whole")'s base path "" (the whole bucket); one connection would ingest`,
			`connections[5].base_path: "" (the whole bucket) contains connections[4] ("elsewhere")'s base path "a/"; one connection would ingest`,
		},
	},
	{
		file: "base_path_wildcard.bad.yaml",
		want: []string{
			`connections[0].base_path: must not contain "*", got "incoming/*/daily/": IAM reads "*" and "?" in a policy's resource and s3:prefix as wildcards, so the generated policy would grant more than the base path`,
			`connections[1].base_path: must not contain "?", got "in?/": IAM reads "*" and "?"`,
			`connections[2].base_path: must not contain "$", got "home/${aws:username}/": IAM reads "${...}" in a policy as a policy variable, so the generated policy would grant more than the base path`,
			`connections[3].base_path: must not contain "{", got "{incoming,outgoing}/": IAM reads "${...}"`,
		},
	},
	{
		file: "bucket_reserved.bad.yaml",
		want: []string{`connections[0].bucket: invalid bucket name "xn--acme-exports": must not start with "xn--"`},
	},
	{
		file: "bucket_uppercase.bad.yaml",
		want: []string{`connections[0].bucket: invalid bucket name "Acme Exports": bucket names are lowercase and contain no spaces`},
	},
	{
		file: "duplicate_key.bad.yaml",
		want: []string{`line 8: connections[0].bucket: mapping key "bucket" already defined at line 7`},
	},
	{
		file: "duplicate_name.bad.yaml",
		want: []string{`connections[2].name: duplicate name "acme" (also connections[0])`},
	},
	{
		file: "daemon.bad.yaml",
		want: []string{
			"shutdown_grace: must not be negative, got -5s",
			`log.format: must be json or console, got "text"`,
			`log.level: must be debug, info, warn or error, got "verbose"`,
		},
	},
	{
		file: "empty.bad.yaml",
		want: []string{
			"principal_arn: is required",
			"connections: at least one connection is required",
		},
	},
	{
		file: "endpoint.bad.yaml",
		want: []string{"connections[0].endpoint: must be an absolute URL starting with http:// or https://"},
	},
	{
		file: "endpoint_http.bad.yaml",
		want: []string{
			`connections[0].endpoint: plain http is accepted only for a loopback address (127.0.0.0/8, ::1, localhost), got host "minio.internal"; use https://`,
			`connections[0].sts_endpoint: plain http is accepted only for a loopback address (127.0.0.0/8, ::1, localhost), got host "10.0.0.5"; use https://`,
		},
	},
	{
		file: "endpoint_http_lookalike.bad.yaml",
		want: []string{
			`connections[0].endpoint: plain http is accepted only for a loopback address (127.0.0.0/8, ::1, localhost), got host "localhost.attacker.example"; use https://`,
			`connections[0].sts_endpoint: plain http is accepted only for a loopback address (127.0.0.0/8, ::1, localhost), got host "127.0.0.1.nip.io"; use https://`,
			`connections[1].endpoint: plain http is accepted only for a loopback address (127.0.0.0/8, ::1, localhost), got host "::ffff:10.0.0.1"; use https://`,
			`connections[1].sts_endpoint: plain http is accepted only for a loopback address (127.0.0.0/8, ::1, localhost), got host "0.0.0.0"; use https://`,
		},
	},
	{
		file: "env_unset.bad.yaml",
		want: []string{
			"line 7: connections[0].account_id: environment variable S3C_TEST_UNSET_ACCOUNT_ID is not set",
			"line 10: connections[0].external_id: environment variable S3C_TEST_UNSET_EXTERNAL_ID is not set",
		},
	},
	{
		file: "env_flow.bad.yaml",
		want: []string{`yaml: line 8: did not find expected ',' or '}'; a ${VAR} inside [...] or {...} must be quoted, e.g. [/bin/x, "${VAR}"]`},
	},
	{
		// yaml.v3 reports some syntax errors a line early.
		file:   "env_yaml_syntax.bad.yaml",
		want:   []string{"yaml: line 17: did not find expected ',' or ']'"},
		absent: []string{strings.TrimPrefix(secretMarker, "*"), "must be quoted"},
	},
	{
		file: "exclude_absolute.bad.yaml",
		want: []string{`connections[0].exclude[0]: must not start with "/", got "/incoming/tmp/**": patterns match the key relative to base_path`},
	},
	{
		file:   "external_id_chars.bad.yaml",
		want:   []string{`connections[0].external_id: contains "$" at character 1, which STS does not accept; an environment variable is written ${NAME}`},
		absent: []string{"ACME_EXTERNAL_ID_NOT_EXPANDED"},
	},
	{
		file:   "external_id_linebreak.bad.yaml",
		want:   []string{"connections[0].external_id: contains a line break; copy it again without spaces or line breaks"},
		absent: []string{externalIDValue},
	},
	{
		file: "external_id_missing.bad.yaml",
		want: []string{"connections[0].external_id: is required unless status is draft"},
	},
	{
		file:   "external_id_short.bad.yaml",
		want:   []string{"connections[0].external_id: must be 16 to 1224 characters, got 8"},
		absent: []string{"tooshort"},
	},
	{
		file:   "external_id_whitespace.bad.yaml",
		want:   []string{"connections[0].external_id: has leading or trailing whitespace; copy it again without spaces or line breaks"},
		absent: []string{externalIDValue},
	},
	{
		file: "importer_dir_path.bad.yaml",
		want: []string{`connections[0].importer.path: is required for importer type "dir"`},
	},
	{
		file: "importer_dir_relative.bad.yaml",
		want: []string{`connections[0].importer.path: must be an absolute path, got "data/acme"`},
	},
	{
		file: "importer_dir_overlap.bad.yaml",
		want: []string{
			`connections[1].importer.path: "/srv/import/acme/beta" is inside connections[0] ("acme")'s import directory "/srv/import/acme"; the two connections' files would mix and overwrite each other`,
			`connections[2].importer.path: "/srv/./x/../import/acme/" is also connections[0] ("acme")'s import directory; the two connections' files`,
			`connections[4].importer.path: "/srv" contains connections[0] ("acme")'s import directory "/srv/import/acme"; the two connections' files`,
		},
	},
	{
		file: "importer_exec_command.bad.yaml",
		want: []string{`connections[0].importer.command: is required for importer type "exec"`},
	},
	{
		file: "importer_exec_env.bad.yaml",
		want: []string{
			`connections[0].importer.env["1ST"]: invalid variable name: letters, digits and underscores, not starting with a digit`,
			`connections[0].importer.env["S3CONNECTOR_KEY"]: the S3CONNECTOR_* variables describe the file and are set by s3connector`,
			`connections[0].importer.env["WITH-DASH"]: invalid variable name: letters, digits and underscores, not starting with a digit`,
		},
		absent: []string{"secret-value"},
	},
	{
		file: "importer_http_permanent_status.bad.yaml",
		want: []string{
			"connections[0].importer.permanent_status[1]: must be an HTTP error status between 400 and 599, got 302",
			"connections[0].importer.permanent_status[2]: 422 is listed twice",
			"connections[0].importer.permanent_status[3]: must be an HTTP error status between 400 and 599, got 600",
		},
	},
	{
		file: "importer_http_url.bad.yaml",
		want: []string{`connections[0].importer.url: scheme must be http or https, got "ftp"`},
	},
	{
		file: "importer_missing.bad.yaml",
		want: []string{"connections[0].importer.type: is required for an active connection; one of dir, discard, exec, http"},
	},
	{
		file: "importer_options.bad.yaml",
		want: []string{`connections[0].importer.options: not used by the built-in importer type "http"; options are read only by importer types registered from Go`},
	},
	{
		file: "importer_timeout.bad.yaml",
		want: []string{"line 10: connections[0].importer.timeout: cannot unmarshal !!int `30` into a duration (write it with a unit, e.g. \"30s\")"},
	},
	{
		file: "importer_type.bad.yaml",
		want: []string{`connections[0].importer.type: unknown importer type "ftp"; must be one of dir, discard, exec, http`},
	},
	{
		file: "importer_type_typo.bad.yaml",
		want: []string{`connections[0].importer.type: unknown importer type "htpp"; must be one of dir, discard, exec, http; did you mean "http"?`},
	},
	{
		file: "importer_unused_field.bad.yaml",
		want: []string{`connections[0].importer.url: not used by importer type "dir"`},
	},
	{
		file: "include_pattern.bad.yaml",
		want: []string{`connections[0].include[1]: invalid glob pattern "orders/[a-z.json": look for an unclosed "[" or "{"`},
	},
	{
		file: "kms_key_arn.bad.yaml",
		want: []string{`connections[0].kms_key_arn: must be a KMS key ARN such as arn:aws:kms:<region>:111122223333:key/<key-id>`},
	},
	{
		file: "listen.bad.yaml",
		want: []string{`listen: must be host:port such as "127.0.0.1:9464", got "9464"`},
	},
	{
		file: "lease_ttl.bad.yaml",
		want: []string{"connections[0].lease_ttl: must be at least 1s (0 means the default, 90s), got 500ms"},
	},
	{
		file: "max_file_size.bad.yaml",
		want: []string{`line 11: connections[0].max_file_size: "ten gigs" is not a size: use a number of bytes or a number with a unit (KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 512MiB`},
	},
	{
		file: "max_attempts.bad.yaml",
		want: []string{"connections[0].max_attempts: must not be negative (0 means unlimited), got -3"},
	},
	{
		file: "max_files.bad.yaml",
		want: []string{"connections[0].max_files: must not be negative (0 means unlimited), got -1"},
	},
	{
		file: "min_age.bad.yaml",
		want: []string{"connections[0].min_age: must not be negative, got -10m0s"},
	},
	{
		file: "multiple.bad.yaml",
		want: []string{
			`listen: must be host:port`,
			`connections[0].account_id: must be exactly 12 digits, got "1234"`,
			`connections[0].bucket: invalid bucket name "Acme-Exports": bucket names are lowercase`,
			`connections[0].base_path: must not start with "/"`,
			`connections[0].external_id: has leading or trailing whitespace`,
			`connections[0].workers: must be between 1 and 1024, got -1`,
			`connections[0].importer.path: is required for importer type "dir"`,
			`connections[1].region: unknown AWS region "mars-north-1"`,
			`connections[1].schedule: invalid schedule "every five minutes"`,
			`connections[1].importer.path: not used by importer type "http"`,
			`connections[1].name: duplicate name "acme" (also connections[0])`,
		},
		absent: []string{externalIDValue},
	},
	{
		file: "multiple_documents.bad.yaml",
		want: []string{"line 11: a second YAML document; the configuration is a single document"},
	},
	{
		file: "name.bad.yaml",
		want: []string{`connections[0].name: may contain only lowercase letters, digits and "-", got "Acme_Corp"`},
	},
	{
		file: "no_connections.bad.yaml",
		want: []string{"connections: at least one connection is required"},
	},
	{
		file: "principal_arn.bad.yaml",
		want: []string{`principal_arn: "arn:aws:sts::111122223333:assumed-role/s3connector-platform/i-0abc123" is a role session; give the role itself, arn:aws:iam::111122223333:role/s3connector-platform`},
	},
	{
		file: "region.bad.yaml",
		want: []string{`connections[0].region: unknown AWS region "ap-southeast-9"`},
	},
	{
		file: "region_typo.bad.yaml",
		want: []string{`connections[0].region: unknown AWS region "eu-central1"; did you mean "eu-central-1"?`},
	},
	{
		file: "role_name.bad.yaml",
		want: []string{`connections[0].role_name: may contain only letters, digits and +=,.@_-, got "acme role!"`},
	},
	{
		file: "schedule.bad.yaml",
		want: []string{`connections[0].schedule: invalid schedule "0 3 * *": expected exactly 5 fields, found 4`},
	},
	{
		file: "schedule_tz.bad.yaml",
		want: []string{`connections[0].schedule: invalid schedule "CRON_TZ=Europe/Atlantis 0 3 * * *": provided bad location Europe/Atlantis`},
	},
	{
		file: "status.bad.yaml",
		want: []string{`connections[0].status: must be one of draft, active, disabled, got "enabled"`},
	},
	{
		file: "status_token_empty.bad.yaml",
		want: []string{"status_token_file: /dev/null is empty; it must hold the token /status requires"},
	},
	{
		file: "status_token_missing.bad.yaml",
		want: []string{"status_token_file: cannot read the token: open /nonexistent/s3connector/status-token: no such file or directory"},
	},
	{
		file: "status_token_relative.bad.yaml",
		want: []string{`status_token_file: must be an absolute path, got "secrets/status-token"`},
	},
	{
		file: "sts_endpoint.bad.yaml",
		want: []string{`connections[0].sts_endpoint: scheme must be http or https, got "ftp"`},
	},
	{
		file: "unknown_key.bad.yaml",
		want: []string{`line 10: unknown key "extrnal_id" in a connection; did you mean "external_id"?`},
	},
	{
		file: "workers.bad.yaml",
		want: []string{"connections[0].workers: must be between 1 and 1024, got 2000"},
	},
	{
		file: "yaml_syntax.bad.yaml",
		// yaml.v3 reports some syntax errors a line early.
		want: []string{"yaml: line 4: did not find expected ',' or ']'"},
	},
}

// unsetEnv makes sure the variables are not set for the rest of the test.
func unsetEnv(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		t.Setenv(name, "") // restores the original value when the test ends
		if err := os.Unsetenv(name); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadBad(t *testing.T) {
	unsetEnv(t, "S3C_TEST_UNSET_ACCOUNT_ID", "S3C_TEST_UNSET_EXTERNAL_ID")
	t.Setenv("S3C_TEST_SECRET_MARKER", secretMarker)
	t.Setenv("S3C_TEST_IMPORT_DIR", "/srv/import")
	for _, tt := range badFiles {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(testdataDir, tt.file)
			cfg, err := Load(path)
			if err == nil {
				t.Fatalf("Load(%q) = %+v, want an error", path, cfg)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, path+":") {
				t.Errorf("error does not start with the file name %q:\n%s", path, msg)
			}
			problems := []string{msg}
			if ve := (*ValidationError)(nil); errors.As(err, &ve) {
				problems = ve.Problems
			}
			for _, w := range tt.want {
				if !containsAny(problems, w) {
					t.Errorf("no problem contains %q; got:\n%s", w, msg)
				}
			}
			for _, p := range problems {
				if !containedInAny(p, tt.want) {
					t.Errorf("unexpected problem %q", p)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(msg, a) {
					t.Errorf("error contains %q, which it must not show:\n%s", a, msg)
				}
			}
		})
	}
}

// TestBadFilesCovered fails when a *.bad.yaml file has no entry in
// badFiles, or an entry names a file that does not exist.
func TestBadFilesCovered(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testdataDir, "*.bad.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no *.bad.yaml files in %s", testdataDir)
	}
	inTable := make(map[string]bool)
	for _, tt := range badFiles {
		if inTable[tt.file] {
			t.Errorf("%s is in badFiles twice", tt.file)
		}
		inTable[tt.file] = true
	}
	onDisk := make(map[string]bool)
	for _, f := range files {
		name := filepath.Base(f)
		onDisk[name] = true
		if !inTable[name] {
			t.Errorf("%s has no entry in badFiles", name)
		}
	}
	for name := range inTable {
		if !onDisk[name] {
			t.Errorf("badFiles names %s, which is not in %s", name, testdataDir)
		}
	}
}

func TestLoadGood(t *testing.T) {
	t.Setenv("S3C_TEST_ACME_EXTERNAL_ID", "acme-0123456789-external")
	t.Setenv("S3C_TEST_INGEST_TOKEN", "s3cr3t-token")
	unsetEnv(t, "S3C_TEST_NOT_SET_ANYWHERE")
	registerImporterTypeForTest(t, "kafka")
	// status_token_file must be absolute, so good.yaml takes it from the
	// environment; the token is trimmed.
	tokenFile := filepath.Join(t.TempDir(), "status-token")
	if err := os.WriteFile(tokenFile, []byte("  status-s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("S3C_TEST_STATUS_TOKEN_FILE", tokenFile)

	cfg, err := Load(filepath.Join(testdataDir, "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Listen:          DefaultListen,
		ShutdownGrace:   45 * time.Second,
		StatusTokenFile: tokenFile,
		StatusToken:     "status-s3cr3t",
		Log:             Log{Format: "console", Level: "debug"},
		PrincipalARN:    "arn:aws:iam::111122223333:role/s3connector-platform",
		DataDir:         "/var/lib/s3connector/data",
		Admin: Admin{
			Listen:       "0.0.0.0:9465",
			TokenFiles:   []string{"/run/secrets/admin/token-2026-01", "/run/secrets/admin/token-2026-07"},
			AllowedHosts: []string{"s3connector.tenant.svc", "admin.example.com:9465"},
			TLSCertFile:  "/run/secrets/admin-tls/tls.crt",
			TLSKeyFile:   "/run/secrets/admin-tls/tls.key",
			Template: Template{
				Include: []string{"**/*.csv"}, Exclude: []string{"**/_tmp/**"},
				MinAge: time.Minute, MaxFiles: 1000, MaxFileSize: 1 << 30, MaxAttempts: 3, LeaseTTL: time.Minute,
				Schedule: "@every 10m", Workers: 8,
				Importer:    Importer{Type: "dir", Path: "/var/lib/s3connector/stored"},
				Download:    Download{ParallelThreshold: Off, PartSize: DefaultDownloadPartSize, Concurrency: DefaultDownloadConcurrency},
				Endpoint:    "https://s3.example.internal",
				STSEndpoint: "https://sts.example.internal",
			},
		},
		Connections: []Connection{
			{
				Name:        "acme",
				Status:      StatusActive,
				AccountID:   "123456789012",
				Bucket:      "acme-exports",
				Region:      "eu-central-1",
				BasePath:    "incoming/daily/",
				Include:     []string{"**/*.csv", "orders/*.json"},
				Exclude:     []string{"**/_tmp/**", "**/*.partial"},
				MinAge:      10 * time.Minute,
				MaxFiles:    500,
				MaxAttempts: 5,
				LeaseTTL:    2 * time.Minute,
				MaxFileSize: 5 << 30,
				RoleName:    "acme-s3connector-reader",
				ExternalID:  "acme-0123456789-external",
				KMSKeyARN:   "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
				Schedule:    "CRON_TZ=Europe/Berlin 0 3 * * *",
				Workers:     4,
				Download:    Download{ParallelThreshold: Threshold{Size: 256 << 20}, PartSize: 16 << 20, Concurrency: 8},
				Endpoint:    "https://s3.eu-central-1.amazonaws.com",
				STSEndpoint: "https://sts.eu-central-1.amazonaws.com",
				Importer: Importer{
					Type:    "http",
					URL:     "https://ingest.example.com/v1/files",
					Headers: map[string]string{"Authorization": "Bearer s3cr3t-token", "X-Source": "acme"},
					// 415 left out on purpose: such an answer is transient here.
					PermanentStatus: []int{400, 413, 422},
					Timeout:         30 * time.Second,
				},
			},
			{
				Name:       "globex",
				Status:     StatusActive,
				AccountID:  "012345678901",
				Bucket:     "globex.data-drop",
				Region:     "us-east-1",
				RoleName:   "s3connector-globex",
				ExternalID: "globex-0123456789:abc/=+,.@_-",
				Schedule:   DefaultSchedule,
				Workers:    DefaultWorkers,
				Download:   defaultDownload,
				Importer: Importer{
					Type:    "exec",
					Command: []string{"/usr/local/bin/ingest", "--source", "globex"},
					Env:     map[string]string{"INGEST_DB": "postgres://ingest@db/globex", "TMPDIR": "/scratch"},
					Timeout: 2 * time.Minute,
				},
			},
			{
				Name:      "initech",
				Status:    StatusDraft,
				AccountID: "210987654321",
				Bucket:    "initech-reports",
				Region:    "ap-southeast-2",
				BasePath:  "reports/",
				RoleName:  "s3connector-initech",
				Schedule:  "@hourly",
				Workers:   DefaultWorkers,
				Download:  defaultDownload,
				Importer:  Importer{Type: "dir", Path: "/var/lib/s3connector/initech"},
			},
			{
				Name:       "umbrella-corp",
				Status:     StatusDisabled,
				AccountID:  "333344445555",
				Bucket:     "umbrella-archive",
				Region:     "us-gov-west-1",
				RoleName:   "s3connector-umbrella-corp",
				ExternalID: externalIDValue,
				Schedule:   DefaultSchedule,
				Workers:    DefaultWorkers,
				Download:   defaultDownload,
				Importer:   Importer{Type: "discard"},
			},
			{
				Name:      "hooli",
				Status:    StatusDraft,
				AccountID: "444455556666",
				Bucket:    "hooli-outbox",
				Region:    "us-west-2",
				RoleName:  "s3connector-hooli",
				Schedule:  DefaultSchedule,
				Workers:   DefaultWorkers,
				Download:  defaultDownload,
				Importer: Importer{
					Type:    "kafka",
					Timeout: 10 * time.Second,
					Options: map[string]any{
						"brokers": []any{"kafka-1:9092", "kafka-2:9092"},
						"topic":   "hooli-files",
						"batch":   map[string]any{"size": 100, "linger": "50ms"},
					},
				},
			},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load(good.yaml) =\n%+v\nwant\n%+v", cfg, want)
	}
	if got, ok := cfg.Connection("globex"); !ok || got.RoleARN() != "arn:aws:iam::012345678901:role/s3connector-globex" {
		t.Errorf("Connection(globex) = %+v, %v", got, ok)
	}
}

// TestLoadGoodFileIsComplete makes sure good.yaml keeps using every key, so
// that it stays the complete example. listen is left out on purpose.
func TestLoadGoodFileIsComplete(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testdataDir, "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, k := range yamlKeys {
		keys = append(keys, k.keys...)
	}
	for _, key := range keys {
		if key == "listen" {
			continue
		}
		if !strings.Contains(string(data), "\n"+key+":") && !strings.Contains(string(data), " "+key+":") && !strings.Contains(string(data), "{"+key+":") {
			t.Errorf("good.yaml does not use the key %q", key)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(%q) error = %v, want one naming the file and wrapping os.ErrNotExist", path, err)
	}
}

func TestParse(t *testing.T) {
	const conn = `
connections:
  - name: acme
    account_id: "123456789012"
    bucket: acme-exports
    region: eu-central-1
`
	tests := []struct {
		name    string
		yaml    string
		check   func(t *testing.T, c *Config)
		wantErr string
	}{
		{
			name: "defaults of a minimal draft",
			yaml: "principal_arn: arn:aws:iam::111122223333:root\n" + conn,
			check: func(t *testing.T, c *Config) {
				got := c.Connections[0]
				if c.Listen != DefaultListen || got.Status != StatusDraft || got.RoleName != "s3connector-acme" ||
					got.Schedule != DefaultSchedule || got.Workers != DefaultWorkers || got.BasePath != "" || got.Importer.Type != "" {
					t.Errorf("defaults not applied: %+v", c)
				}
			},
		},
		{
			name: "importer timeout defaults for exec and http only",
			yaml: "principal_arn: arn:aws:iam::111122223333:root\n" + conn + "    importer: {type: http, url: https://sink.example.com/files}\n" +
				"  - name: beta\n    account_id: \"123456789012\"\n    bucket: beta-exports\n    region: eu-central-1\n    importer: {type: dir, path: /srv/beta}\n",
			check: func(t *testing.T, c *Config) {
				if got := c.Connections[0].Importer.Timeout; got != DefaultImporterTimeout {
					t.Errorf("http importer timeout %s, want %s", got, DefaultImporterTimeout)
				}
				if got := c.Connections[1].Importer.Timeout; got != 0 {
					t.Errorf("dir importer timeout %s, want none", got)
				}
			},
		},
		{
			name: "listen set",
			yaml: "listen: \":9464\"\nprincipal_arn: arn:aws:iam::111122223333:user/ops/deployer\n" + conn,
			check: func(t *testing.T, c *Config) {
				if c.Listen != ":9464" {
					t.Errorf("listen = %q", c.Listen)
				}
			},
		},
		{
			name:    "scalar instead of mapping",
			yaml:    "just a string\n",
			wantErr: "line 1: cannot unmarshal !!str `just a ...` into config.Config",
		},
		{
			name:    "unknown top-level key",
			yaml:    "principal_arn: arn:aws:iam::111122223333:root\nlisten_addr: :80\n" + conn,
			wantErr: `line 2: unknown key "listen_addr" at the top level`,
		},
		{
			name:    "unknown importer key with hint",
			yaml:    "principal_arn: arn:aws:iam::111122223333:root\n" + conn + "    importer: {type: http, ulr: https://x}\n",
			wantErr: `line 8: unknown key "ulr" in an importer; did you mean "url"?`,
		},
		{
			name:    "invalid header",
			yaml:    "principal_arn: arn:aws:iam::111122223333:root\n" + conn + "    importer: {type: http, url: https://x, headers: {\"Bad Name\": v}}\n",
			wantErr: `connections[0].importer.headers["Bad Name"]: invalid header name`,
		},
		{
			name:    "negative timeout",
			yaml:    "principal_arn: arn:aws:iam::111122223333:root\n" + conn + "    importer: {type: exec, command: [x], timeout: -1s}\n",
			wantErr: "connections[0].importer.timeout: must not be negative, got -1s",
		},
		{
			name:    "importer keys without a type",
			yaml:    "principal_arn: arn:aws:iam::111122223333:root\n" + conn + "    importer: {path: /data}\n",
			wantErr: "connections[0].importer.type: is required when other importer keys are set",
		},
		{
			name:    "empty command name",
			yaml:    "principal_arn: arn:aws:iam::111122223333:root\n" + conn + "    importer: {type: exec, command: [\"\", x]}\n",
			wantErr: "connections[0].importer.command[0]: must name the program to run",
		},
		{
			name:    "kms key in unknown region",
			yaml:    "principal_arn: arn:aws:iam::111122223333:root\n" + conn + "    kms_key_arn: arn:aws:kms:xx-east-1:123456789012:alias/acme\n",
			wantErr: `connections[0].kms_key_arn: unknown AWS region "xx-east-1"`,
		},
		{
			name:    "options on a built-in importer",
			yaml:    "principal_arn: arn:aws:iam::111122223333:root\n" + conn + "    importer: {type: dir, path: /data, options: {}}\n",
			wantErr: `connections[0].importer.options: not used by the built-in importer type "dir"`,
		},
		{
			name:    "unregistered custom importer",
			yaml:    "principal_arn: arn:aws:iam::111122223333:root\n" + conn + "    importer: {type: mysink, options: {a: 1}}\n",
			wantErr: `connections[0].importer.type: unknown importer type "mysink"; must be one of dir, discard, exec, http`,
		},
		{
			name:    "empty include pattern",
			yaml:    "principal_arn: arn:aws:iam::111122223333:root\n" + conn + "    include: [\"*.csv\", \"\"]\n",
			wantErr: "connections[0].include[1]: must not be empty",
		},
		{
			name:    "unmatched brace in exclude",
			yaml:    "principal_arn: arn:aws:iam::111122223333:root\n" + conn + "    exclude: [\"*.{csv,tsv\"]\n",
			wantErr: `connections[0].exclude[0]: invalid glob pattern "*.{csv,tsv"`,
		},
		{
			name:    "min_age without a unit",
			yaml:    "principal_arn: arn:aws:iam::111122223333:root\n" + conn + "    min_age: 600\n",
			wantErr: "line 8: connections[0].min_age: cannot unmarshal !!int `600` into a duration (write it with a unit, e.g. \"30s\")",
		},
		{
			name: "selection keys",
			yaml: "principal_arn: arn:aws:iam::111122223333:root\n" + conn + "    include: [\"**/*.csv\"]\n    min_age: 90s\n    max_files: 0\n    max_attempts: 3\n",
			check: func(t *testing.T, c *Config) {
				got := c.Connections[0]
				if !slices.Equal(got.Include, []string{"**/*.csv"}) || got.Exclude != nil || got.MinAge != 90*time.Second ||
					got.MaxFiles != 0 || got.MaxAttempts != 3 {
					t.Errorf("selection keys = %+v", got)
				}
			},
		},
		{
			name:    "listen port not numeric",
			yaml:    "listen: localhost:http\nprincipal_arn: arn:aws:iam::111122223333:root\n" + conn,
			wantErr: `listen: port must be a number from 0 to 65535, got "http"`,
		},
		{
			name:    "principal is not an IAM ARN",
			yaml:    "principal_arn: 111122223333\n" + conn,
			wantErr: `principal_arn: must be an IAM principal ARN`,
		},
		{
			name:    "name too long for the role name",
			yaml:    "principal_arn: arn:aws:iam::111122223333:root\n" + strings.Replace(conn, "name: acme", "name: "+strings.Repeat("a", 53), 1),
			wantErr: "connections[0].name: must be at most 52 characters",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.yaml))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, cfg)
		})
	}
}

func TestValidationErrorThroughLoad(t *testing.T) {
	path := filepath.Join(testdataDir, "multiple.bad.yaml")
	_, err := Load(path)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Load(%q) error %T does not unwrap to *ValidationError", path, err)
	}
	want := path + ":\n  " + strings.Join(ve.Problems, "\n  ")
	if err.Error() != want {
		t.Errorf("error =\n%s\nwant\n%s", err, want)
	}
	if ve.Error() != strings.Join(ve.Problems, "\n") {
		t.Errorf("ValidationError.Error() does not join the problems with newlines")
	}
}

func TestApplyDefaultsIdempotent(t *testing.T) {
	c := &Config{Connections: []Connection{{Name: "acme", BasePath: "in"}}}
	c.ApplyDefaults()
	once := *c
	once.Connections = append([]Connection(nil), c.Connections...)
	c.ApplyDefaults()
	if !reflect.DeepEqual(&once, c) {
		t.Errorf("second ApplyDefaults changed %+v to %+v", once, c)
	}
}

func containsAny(problems []string, want string) bool {
	for _, p := range problems {
		if strings.Contains(p, want) {
			return true
		}
	}
	return false
}

func containedInAny(problem string, wants []string) bool {
	for _, w := range wants {
		if strings.Contains(problem, w) {
			return true
		}
	}
	return false
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
)

// runCLI runs the command line in-process and returns stdout, stderr and the
// exit code main would use.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	code := exitCode(err, &stderr)
	return stdout.String(), stderr.String(), code
}

func writeConfig(t *testing.T, endpoint, bucket, externalID string) string {
	t.Helper()
	yaml := `principal_arn: arn:aws:iam::049579744830:root
connections:
  - name: acme
    status: draft
    account_id: "123456789012"
    bucket: ` + bucket + `
    region: ap-southeast-2
    base_path: imports/
    external_id: ` + externalID + `
    endpoint: ` + endpoint + `
    sts_endpoint: ` + endpoint + `
`
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// platformEnv makes the default credential chain return the given keys and
// nothing from the host.
func platformEnv(t *testing.T, user, secret string) {
	t.Setenv("AWS_ACCESS_KEY_ID", user)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", miniotest.Region)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func TestValidateCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := miniotest.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.CreateBucket(ctx, "customer-data-imports"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"imports/a.csv", "imports/b/c.csv", "imports/archive/done.csv"} {
		if err := srv.Put(ctx, "customer-data-imports", k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	externalID, err := connector.NewExternalID()
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := writeConfig(t, srv.Endpoint, "customer-data-imports", externalID)

	// The platform user holds exactly the policy the CLI generates.
	policy, _, code := runCLI(t, "policy", "--config", cfgPath, "--connection", "acme", "--document", "permissions")
	if code != 0 {
		t.Fatalf("policy --document permissions exited %d", code)
	}
	if err := srv.AddUser(ctx, "platform", "platform-secret", []byte(policy)); err != nil {
		t.Fatal(err)
	}

	platformEnv(t, "platform", "platform-secret")
	out, _, code := runCLI(t, "validate", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("validate exited %d:\n%s", code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; last != "Connection successful. Found 2 files in bucket." {
		t.Errorf("last line = %q\n%s", last, out)
	}
	// The trust-policy check is shown skipped, with why: MinIO's STS
	// ignores ExternalId, so a wrong one being granted would prove nothing.
	for _, want := range []string{"  ok    assume role", "  SKIP  " + connector.CheckTrustPolicy, "skipped: sts_endpoint 127.0.0.1 is not AWS STS", "MinIO accept but ignore ExternalId"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}

	platformEnv(t, "platform", "wrong-secret")
	out, _, code = runCLI(t, "validate", "--config", cfgPath, "--connection", "acme")
	if code != 1 {
		t.Errorf("validate with bad platform credentials exited %d, want 1", code)
	}
	for _, want := range []string{"FAIL  assume role", "Not authorised to perform sts:AssumeRole", "arn:aws:iam::049579744830:root"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"wrong-secret", "platform-secret", externalID} {
		if strings.Contains(out, secret) {
			t.Errorf("output contains secret value %q", secret)
		}
	}
}

func TestConnectionNew(t *testing.T) {
	out, stderr, code := runCLI(t, "connection", "new", "--name", "acme", "--account-id", "123456789012",
		"--bucket", "customer-data-imports", "--region", "ap-southeast-2", "--base-path", "imports",
		"--principal-arn", "arn:aws:iam::049579744830:root")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// The YAML block is a valid connection once placed under connections:.
	block := out[:strings.Index(out, "\n\n")+1]
	cfg, err := config.Parse([]byte("principal_arn: arn:aws:iam::049579744830:root\nconnections:\n" + block))
	if err != nil {
		t.Fatalf("printed block does not load: %v\n%s", err, block)
	}
	c := cfg.Connections[0]
	if c.RoleName != "s3connector-acme" || c.BasePath != "imports/" || c.Status != config.StatusDraft {
		t.Errorf("parsed connection = %+v", c)
	}
	if err := config.ValidateExternalID(c.ExternalID); err != nil || len(c.ExternalID) < 26 {
		t.Errorf("generated external id %q: %v (want >= 128 bits)", c.ExternalID, err)
	}
	if !strings.Contains(out, `"sts:ExternalId": "`+c.ExternalID+`"`) {
		t.Errorf("setup steps do not carry the generated External ID in the trust policy")
	}
	out2, _, _ := runCLI(t, "connection", "new", "--name", "acme", "--principal-arn", "arn:aws:iam::049579744830:root")
	if strings.Contains(out2, c.ExternalID) {
		t.Error("two runs generated the same External ID")
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"connection", "new", "--name", "Bad Name", "--account-id", "1234", "--principal-arn", "arn:aws:iam::049579744830:root"}, `--account-id: must be exactly 12 digits, got "1234"`},
		{[]string{"validate"}, "--config is required"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"policy", "--config", "x.yaml"}, "--config and --connection are required"},
	}
	for _, tt := range tests {
		_, stderr, code := runCLI(t, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 mentioning %q", tt.args, code, stderr, tt.want)
		}
	}
	_, stderr, code := runCLI(t, "validate", "--config", filepath.Join("..", "..", "testdata", "config", "account_id.bad.yaml"))
	if code != 1 || !strings.Contains(stderr, "account_id") {
		t.Errorf("bad config: exit %d, stderr %q", code, stderr)
	}
}

// policy --platform prints the platform principal's identity policy, exactly
// the golden document of the connector package; the partition follows
// --partition, or the connections of --config.
func TestPolicyPlatformCommand(t *testing.T) {
	golden := func(partition string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "connector", "testdata", "policy", "platform-"+partition+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	externalID, err := connector.NewExternalID()
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := writeConfig(t, "http://127.0.0.1:1", "customer-data-imports", externalID)
	tests := []struct {
		args       []string
		partition  string
		wantStderr string
	}{
		{[]string{"policy", "--platform"}, "aws", ""},
		{[]string{"policy", "--platform", "--partition", "aws-cn"}, "aws-cn", ""},
		{[]string{"policy", "--platform", "--config", cfgPath}, "aws", ""},
	}
	for _, tt := range tests {
		out, stderr, code := runCLI(t, tt.args...)
		if code != 0 {
			t.Errorf("%q exited %d: %s", tt.args, code, stderr)
			continue
		}
		if out != golden(tt.partition) {
			t.Errorf("%q printed\n%s\nwant platform-%s.txt", tt.args, out, tt.partition)
		}
		if stderr != tt.wantStderr {
			t.Errorf("%q stderr %q, want %q", tt.args, stderr, tt.wantStderr)
		}
	}

	// A role name outside the prefix is not covered: say so.
	custom := strings.Replace(mustRead(t, cfgPath), "    base_path: imports/\n", "    base_path: imports/\n    role_name: CustomerChosenRole\n", 1)
	customPath := filepath.Join(t.TempDir(), "custom.yaml")
	if err := os.WriteFile(customPath, []byte(custom), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, "policy", "--platform", "--config", customPath)
	if code != 0 || out != golden("aws") || !strings.Contains(stderr, `connection "acme" uses role CustomerChosenRole, which this policy does not cover`) {
		t.Errorf("custom role name: exit %d, stderr %q", code, stderr)
	}
	// A config in one partition and --partition naming another cannot both hold.
	if _, stderr, code := runCLI(t, "policy", "--platform", "--config", cfgPath, "--partition", "aws-cn"); code == 0 || !strings.Contains(stderr, "partition") {
		t.Errorf("mismatched partition: exit %d, stderr %q", code, stderr)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
	"github.com/s3connector/s3connector/internal/proctest"
)

// runFixture is a MinIO bucket with an inbox and a platform user holding
// exactly the generated permissions policy.
type runFixture struct {
	srv    *miniotest.Server
	bucket string
	dir    string
}

func newRunFixture(t *testing.T, files map[string]string) *runFixture {
	t.Helper()
	srv := miniotest.Shared(t)
	ctx := t.Context()
	bucket := fmt.Sprintf("run-%d", time.Now().UnixNano()%1_000_000_000)
	if err := srv.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	for k, v := range files {
		if err := srv.Put(ctx, bucket, "imports/"+k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	return &runFixture{srv: srv, bucket: bucket, dir: t.TempDir()}
}

// config writes an active connection with the given importer block and
// makes the platform user with the CLI's own permissions policy.
func (f *runFixture) config(t *testing.T, listen, importer string) string {
	t.Helper()
	externalID, err := connector.NewExternalID()
	if err != nil {
		t.Fatal(err)
	}
	yaml := `principal_arn: arn:aws:iam::049579744830:root
listen: ` + listen + `
connections:
  - name: acme
    status: active
    account_id: "123456789012"
    bucket: ` + f.bucket + `
    region: ap-southeast-2
    base_path: imports/
    external_id: ` + externalID + `
    endpoint: ` + f.srv.Endpoint + `
    sts_endpoint: ` + f.srv.Endpoint + `
    schedule: "@every 1h"
    workers: 4
    importer:
` + importer
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	policy, stderr, code := runCLI(t, "policy", "--config", path, "--connection", "acme", "--document", "permissions")
	if code != 0 {
		t.Fatalf("policy exited %d: %s", code, stderr)
	}
	user := "run-" + f.bucket
	if err := f.srv.AddUser(t.Context(), user, user+"-secret", []byte(policy)); err != nil {
		t.Fatal(err)
	}
	platformEnv(t, user, user+"-secret")
	return path
}

// keys lists the bucket under prefix, leaving out the markers a
// validation writes under archive/ for a moment (the daemon validates a
// connection before it schedules it; a slow machine shows them).
func (f *runFixture) keys(t *testing.T, prefix string) []string {
	t.Helper()
	k, err := f.srv.Keys(t.Context(), f.bucket, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(k, func(key string) bool { return strings.Contains(key, "/archive/.s3connector-validate-") })
}

var summaryLine = regexp.MustCompile(`^acme: listed (\d+), imported (\d+), archived (\d+), errored (\d+), left for retry (\d+), .+ in .+ \(run [0-9a-f]{12}\)$`)

func TestRunOnceMovesEveryFile(t *testing.T) {
	f := newRunFixture(t, map[string]string{
		"orders/2026-11-01.csv": "id,total\n1,10\n",
		"orders/2026-11-02.csv": "id,total\n2,20\n",
		"customers.json":        `[{"id":1}]`,
		"broken.csv":            "id,total\nBROKEN\n",
	})
	// exec importer: reads the body, rejects content containing BROKEN
	// with exit 65 (permanent), accepts the rest.
	cfg := f.config(t, "127.0.0.1:0", `      type: exec
      command: ["sh", "-c", "data=$(cat); case \"$data\" in *BROKEN*) echo 'bad row' >&2; exit 65;; esac"]
      timeout: 30s
`)
	out, stderr, code := runCLI(t, "run", "--config", cfg, "--once")
	if code != 0 {
		t.Fatalf("run --once exited %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	m := summaryLine.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil {
		t.Fatalf("summary line %q does not match %s", out, summaryLine)
	}
	if got := strings.Join(m[1:], " "); got != "4 3 3 1 0" {
		t.Errorf("listed/imported/archived/errored/retry = %s, want 4 3 3 1 0", got)
	}
	if n := len(f.keys(t, "imports/archive/")); n != 3 {
		t.Errorf("archive/ holds %d files, want 3", n)
	}
	errored := f.keys(t, "imports/error/")
	if len(errored) != 2 || !strings.HasPrefix(errored[0], "imports/error/broken.") {
		t.Errorf("error/ holds %v, want broken.csv and its report", errored)
	}
	for _, k := range f.keys(t, "imports/") {
		if !strings.HasPrefix(k, "imports/archive/") && !strings.HasPrefix(k, "imports/error/") {
			t.Errorf("%s left in the inbox", k)
		}
	}
}

func TestRunOnceExitsNonZeroWhenFilesAreLeft(t *testing.T) {
	f := newRunFixture(t, map[string]string{"a.csv": "a", "b.csv": "b"})
	// Exit 75 (EX_TEMPFAIL): transient, the files stay.
	cfg := f.config(t, "127.0.0.1:0", `      type: exec
      command: ["sh", "-c", "cat >/dev/null; exit 75"]
`)
	out, _, code := runCLI(t, "run", "--config", cfg, "--once", "--connection", "acme")
	if code != 1 {
		t.Fatalf("run --once exited %d, want 1\n%s", code, out)
	}
	m := summaryLine.FindStringSubmatch(strings.TrimSpace(out))
	if m == nil || m[5] != "2" {
		t.Fatalf("summary %q, want 2 left for retry", out)
	}
	if got := f.keys(t, "imports/"); len(got) != 2 {
		t.Errorf("inbox holds %v, want both files", got)
	}
}

func TestRunRefusesDraftConnection(t *testing.T) {
	cfg := writeConfig(t, "http://127.0.0.1:1", "bucket-x", "s3connector-test-external-id-0001")
	_, stderr, code := runCLI(t, "run", "--config", cfg, "--once", "--connection", "acme")
	if code != 1 || !strings.Contains(stderr, `connection "acme" is draft, not active`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runCLI(t, "run", "--config", cfg, "--once")
	if code != 1 || !strings.Contains(stderr, "no connection has status: active") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	_, _, code = runCLI(t, "run", "--config", cfg, "--connection", "acme")
	if code != 2 {
		t.Errorf("--connection without --once exited %d, want 2", code)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The daemon runs at start, serves /healthz, /readyz and /metrics (which
// promtool accepts), and stops cleanly when its context ends.
func TestRunDaemonServesMetrics(t *testing.T) {
	f := newRunFixture(t, map[string]string{"a.csv": "a", "sub/b.csv": "bb"})
	addr := freeAddr(t)
	cfg := f.config(t, addr, `      type: dir
      path: `+f.dir+`
`)
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"run", "--config", cfg}, &stdout, &stderr) }()

	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Wait (bounded) until the start-up run has archived both files.
	deadline := time.Now().Add(30 * time.Second)
	for len(f.keys(t, "imports/archive/")) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(f.keys(t, "imports/archive/")); n != 2 {
		cancel()
		t.Fatalf("daemon archived %d files, want 2; stderr:\n%s", n, stderr.String())
	}
	if code, body := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}
	// The files' metrics are recorded as their deletes are answered, the
	// run's once every move has ended; give it a moment.
	var body string
	for time.Now().Before(deadline) {
		_, body = get("/metrics")
		if strings.Contains(body, `s3connector_files_total{connection="acme",outcome="archived"} 2`) &&
			strings.Contains(body, `s3connector_last_successful_run_timestamp_seconds{connection="acme"}`) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{
		`s3connector_files_total{connection="acme",outcome="archived"} 2`,
		// Two files, plus the validation marker read back at start.
		`s3connector_s3_requests_total{connection="acme",operation="GetObject",result="ok"} 3`,
		`s3connector_connection_up{connection="acme"} 1`,
		`s3connector_schedule_interval_seconds{connection="acme"} 3600`,
		`s3connector_assume_role_total{connection="acme",result="success"} 1`,
		`s3connector_build_info{`,
		`s3connector_credentials_expiry_timestamp_seconds{connection="acme"}`,
		`s3connector_last_successful_run_timestamp_seconds{connection="acme"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	promtool, err := miniotest.Tool("promtool")
	if err != nil {
		t.Fatal(err)
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon returned %v", err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("daemon did not stop")
	}
	if !strings.Contains(stderr.String(), `"msg":"stopped"`) {
		t.Errorf("no stop line in the log:\n%s", stderr.String())
	}
	if got, err := os.ReadFile(filepath.Join(f.dir, "sub", "b.csv")); err != nil || string(got) != "bb" {
		t.Errorf("imported sub/b.csv = %q, %v", got, err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	miniotest.CloseShared()
	proctest.Cleanup()
	os.Exit(code)
}

package ingest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestExec(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	f := File{Bucket: "b", Key: "imports/x.csv", RelKey: "x.csv", ETag: `"abc"`, IdempotencyKey: "b/imports/x.csv/abc"}
	tests := []struct {
		name          string
		script        string
		timeout       time.Duration
		wantErr       bool
		wantPermanent bool
	}{
		{name: "imported", script: `cat > "$OUT"; echo "$S3CONNECTOR_KEY $S3CONNECTOR_IDEMPOTENCY_KEY" >> "$OUT"`},
		{name: "rejected", script: `cat >/dev/null; echo "bad header" >&2; exit 65`, wantErr: true, wantPermanent: true},
		{name: "failed", script: `cat >/dev/null; exit 1`, wantErr: true},
		{name: "timeout", script: `sleep 5`, timeout: 100 * time.Millisecond, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Exec{Command: []string{"/bin/sh", "-c", tt.script}, Env: map[string]string{"OUT": out}, Timeout: tt.timeout}.
				Import(context.Background(), f, strings.NewReader("a,b\n1,2\n"))
			if (err != nil) != tt.wantErr || IsPermanent(err) != tt.wantPermanent {
				t.Fatalf("err = %v, want error %v permanent %v", err, tt.wantErr, tt.wantPermanent)
			}
			if tt.wantPermanent && !strings.Contains(err.Error(), "bad header") {
				t.Errorf("permanent error lacks the command's stderr: %v", err)
			}
			if tt.name == "timeout" && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("timeout error = %v, want DeadlineExceeded", err)
			}
		})
	}
	got, err := os.ReadFile(out)
	if err != nil || string(got) != "a,b\n1,2\nimports/x.csv b/imports/x.csv/abc\n" {
		t.Errorf("command saw %q, %v", got, err)
	}
}

// The command's environment is an allowlist: whatever else the daemon's
// environment holds (platform credentials under AWS_* or any other name)
// does not reach it.
func TestExecEnvironment(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_SECRET_ACCESS_KEY":              "platform-secret",
		"AWS_ACCESS_KEY_ID":                  "AKIAPLATFORM",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
		"AWS_WEB_IDENTITY_TOKEN_FILE":        "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
		"S3CONNECTOR_ADMIN_TOKEN":            "admin-secret",
		"DATABASE_PASSWORD":                  "db-secret",
		"PATH":                               "/usr/local/bin:/usr/bin:/bin",
		"HOME":                               "/home/s3connector",
		"LANG":                               "C.UTF-8",
		"TZ":                                 "Europe/Berlin",
		"LC_ALL":                             "C.UTF-8",
		"LC_TIME":                            "de_DE.UTF-8",
	} {
		t.Setenv(k, v)
	}
	f := File{Bucket: "b", Key: "imports/x.csv", RelKey: "x.csv", Size: 3, ETag: `"e"`, VersionID: "v1", ContentType: "text/csv",
		LastModified: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), IdempotencyKey: "b/imports/x.csv/e"}
	inherited := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/s3connector", "LANG=C.UTF-8", "TZ=Europe/Berlin", "LC_ALL=C.UTF-8", "LC_TIME=de_DE.UTF-8"}
	descriptor := []string{"S3CONNECTOR_BUCKET=b", "S3CONNECTOR_KEY=imports/x.csv", "S3CONNECTOR_REL_KEY=x.csv", "S3CONNECTOR_SIZE=3",
		"S3CONNECTOR_ETAG=\"e\"", "S3CONNECTOR_VERSION_ID=v1", "S3CONNECTOR_CONTENT_TYPE=text/csv",
		"S3CONNECTOR_LAST_MODIFIED=2026-01-02T03:04:05Z", "S3CONNECTOR_IDEMPOTENCY_KEY=b/imports/x.csv/e"}
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{
			name: "no env",
			want: slices.Concat(inherited, descriptor),
		},
		{
			name: "env added as is, overriding the inherited",
			env: map[string]string{
				"INGEST_DSN": "postgres://u:p@db/x?sslmode=require #not a comment",
				"MULTILINE":  "a\nb=c",
				"EMPTY":      "",
				"PATH":       "/opt/ingest/bin:/usr/bin:/bin",
				"AWS_REGION": "eu-central-1", // the user's own choice for the command
			},
			want: slices.Concat(
				[]string{"HOME=/home/s3connector", "LANG=C.UTF-8", "TZ=Europe/Berlin", "LC_ALL=C.UTF-8", "LC_TIME=de_DE.UTF-8"},
				[]string{"INGEST_DSN=postgres://u:p@db/x?sslmode=require #not a comment", "MULTILINE=a\nb=c", "EMPTY=", "PATH=/opt/ingest/bin:/usr/bin:/bin", "AWS_REGION=eu-central-1"},
				descriptor),
		},
		{
			// Config validation rejects these; a configuration built in
			// code still cannot forge the file's descriptor.
			name: "descriptor not overridden",
			env:  map[string]string{"S3CONNECTOR_KEY": "forged", "S3CONNECTOR_EXTRA": "x"},
			want: slices.Concat(inherited, descriptor),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			envFile := filepath.Join(t.TempDir(), "env")
			// NUL-separated: values may hold newlines.
			err := Exec{Command: []string{"/bin/sh", "-c", `cat >/dev/null; exec /usr/bin/env -0 > "$0"`, envFile}, Env: tt.env}.
				Import(context.Background(), f, strings.NewReader("x,y"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(envFile)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
			// The shell may export PWD; the rest must be exactly what is wanted.
			got = slices.DeleteFunc(got, func(kv string) bool { return strings.HasPrefix(kv, "PWD=") })
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("command environment =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			for _, secret := range []string{"platform-secret", "AKIAPLATFORM", "admin-secret", "db-secret", "169.254.170.23", "forged"} {
				if strings.Contains(string(b), secret) {
					t.Errorf("command got %q", secret)
				}
			}
		})
	}
}

// Variables of the allowlist that the daemon does not have are not made up.
func TestExecEnvironmentUnsetStaysUnset(t *testing.T) {
	for _, k := range []string{"HOME", "LANG", "TZ"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	envFile := filepath.Join(t.TempDir(), "env")
	err := Exec{Command: []string{"/bin/sh", "-c", `cat >/dev/null; /usr/bin/env > "$0"`, envFile}}.
		Import(context.Background(), File{Key: "k"}, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(envFile)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "HOME=") || strings.HasPrefix(l, "LANG=") || strings.HasPrefix(l, "TZ=") {
			t.Errorf("command got %s, which the daemon does not have", l)
		}
	}
}

func TestExecBackgroundChildAfterSuccess(t *testing.T) {
	if err := execWithBackgroundChild(t, 0); err != nil {
		t.Fatalf("err = %v, want nil: the command exited 0", err)
	}
}

// A failing command's leftover children are killed too.
func TestExecBackgroundChildAfterFailure(t *testing.T) {
	if err := execWithBackgroundChild(t, 3); err == nil || IsPermanent(err) {
		t.Fatalf("err = %v, want a transient error: the command exited 3", err)
	}
}

// execWithBackgroundChild runs a command that leaves a background child
// holding its stderr and exits with code, and checks that the child does
// not outlive Import.
func execWithBackgroundChild(t *testing.T, code int) error {
	t.Helper()
	defer func(d time.Duration) { execWaitDelay = d }(execWaitDelay)
	execWaitDelay = 100 * time.Millisecond
	pidFile := filepath.Join(t.TempDir(), "pid")
	script := `cat >/dev/null; sleep 30 & echo $! > "$1"; exit ` + strconv.Itoa(code)
	start := time.Now()
	err := Exec{Command: []string{"/bin/sh", "-c", script, "sh", pidFile}, Timeout: 10 * time.Second}.
		Import(context.Background(), File{Key: "imports/x.csv"}, strings.NewReader("x"))
	b, readErr := os.ReadFile(pidFile)
	pid, atoiErr := strconv.Atoi(strings.TrimSpace(string(b)))
	if readErr != nil || atoiErr != nil {
		t.Fatalf("background child's pid: %v, %v", readErr, atoiErr)
	}
	t.Cleanup(func() {
		if processRunning(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Import took %v", d)
	}
	// The orphan is reaped by init, or stays a zombie where init does not
	// reap (some containers): either way it must not be running.
	deadline := time.Now().Add(3 * time.Second)
	for processRunning(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("background child %d still running after Import returned", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// processRunning reports whether pid exists and is not a zombie.
func processRunning(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

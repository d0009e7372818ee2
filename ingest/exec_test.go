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
	t.Setenv("OUT", out)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Exec{Command: []string{"/bin/sh", "-c", tt.script}, Timeout: tt.timeout}.
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

func TestExecDropsAWSVariables(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "env")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "platform-secret")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAPLATFORM")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials")
	t.Setenv("S3CONNECTOR_TEST_ORDINARY", "kept")
	f := File{Bucket: "b", Key: "imports/x.csv"}
	err := Exec{Command: []string{"/bin/sh", "-c", `cat >/dev/null; env > "$1"`, "sh", envFile}}.
		Import(context.Background(), f, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(env), "\n")
	for _, l := range lines {
		if strings.HasPrefix(l, "AWS_") {
			t.Errorf("command got %s", l)
		}
	}
	if !slices.Contains(lines, "S3CONNECTOR_TEST_ORDINARY=kept") || !slices.Contains(lines, "S3CONNECTOR_KEY=imports/x.csv") {
		t.Errorf("command lacks an ordinary variable or the file's descriptor:\n%s", env)
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

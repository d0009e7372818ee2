package ingest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

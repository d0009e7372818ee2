package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// ExitDataErr is the exit status (EX_DATAERR from sysexits.h) by which an
// exec importer's command says the file's content is bad: a permanent error.
const ExitDataErr = 65

// Exec runs a command per file with the body on stdin and the descriptor in
// S3CONNECTOR_* environment variables. Exit 0: imported; exit 65: permanent;
// anything else, a signal or the timeout: transient.
type Exec struct {
	Command []string
	// Timeout bounds one file; 0 means no limit beyond the run's context.
	Timeout time.Duration
}

// Import implements Importer.
func (e Exec) Import(ctx context.Context, f File, body io.Reader) error {
	if e.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, e.Command[0], e.Command[1:]...)
	cmd.Stdin = body
	// Cancel the whole process group: a shell's children would otherwise
	// keep running and hold stderr open after the timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = append(os.Environ(),
		"S3CONNECTOR_BUCKET="+f.Bucket,
		"S3CONNECTOR_KEY="+f.Key,
		"S3CONNECTOR_REL_KEY="+f.RelKey,
		"S3CONNECTOR_SIZE="+strconv.FormatInt(f.Size, 10),
		"S3CONNECTOR_ETAG="+f.ETag,
		"S3CONNECTOR_VERSION_ID="+f.VersionID,
		"S3CONNECTOR_CONTENT_TYPE="+f.ContentType,
		"S3CONNECTOR_LAST_MODIFIED="+f.LastModified.UTC().Format(time.RFC3339),
		"S3CONNECTOR_IDEMPOTENCY_KEY="+f.IdempotencyKey,
	)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	err := cmd.Run()
	if err == nil {
		return nil
	}
	msg := bytes.TrimSpace(stderr.Bytes())
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == ExitDataErr {
		return Permanent(fmt.Errorf("%s rejected %q (exit %d): %s", e.Command[0], f.Key, ExitDataErr, msg))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s on %q: %w", e.Command[0], f.Key, ctx.Err())
	}
	return fmt.Errorf("%s on %q: %w: %s", e.Command[0], f.Key, err, msg)
}

// limitedWriter keeps the first n bytes (a command's stderr for the report).
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}

package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/s3connector/s3connector/config"
)

// ExitDataErr is the exit status (EX_DATAERR from sysexits.h) by which an
// exec importer's command says the file's content is bad: a permanent error.
const ExitDataErr = 65

// Exec runs a command per file with the body on stdin and the descriptor in
// S3CONNECTOR_* environment variables. Exit 0: imported; exit 65: permanent;
// anything else, a signal or the timeout: transient.
//
// The command's environment is an allowlist, not the daemon's: PATH, HOME,
// LANG, TZ and LC_* from the daemon (config.ExecInheritedEnv), then Env, then
// the S3CONNECTOR_* descriptor. The daemon's environment holds the
// platform's credentials (keys, session and web identity tokens, container
// credential endpoints, profiles) and whatever else its container was
// given; they can assume customer roles and must not reach an import
// command, which gets what it needs through Env. This is no sandbox: the
// command runs as the daemon's user, with its files (the web identity token
// file among them) and network.
//
// A command that exits 0 but leaves a background child holding its stderr
// has imported the file: once execWaitDelay has passed the process group is
// killed and the import counts as done, instead of being retried forever.
type Exec struct {
	Command []string
	// Env is added to the command's environment, values as they are; it may
	// override the inherited PATH, HOME, LANG, TZ and LC_*, not the
	// S3CONNECTOR_* descriptor.
	Env map[string]string
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
	cmd.WaitDelay = execWaitDelay
	cmd.Env = append(e.environ(),
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
	if cmd.Process != nil {
		// Whatever failed, nothing the command started may outlive the
		// import: kill its process group, as Cancel does on the timeout.
		// The kernel does not reuse a group id while a member lives.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success() {
		// Exited 0, but something it started held its stderr past
		// WaitDelay: the file is imported.
		return nil
	}
	msg := bytes.TrimSpace(stderr.Bytes())
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == ExitDataErr {
		return Rejected(fmt.Sprintf("the import command rejected the file (exit status %d)", ExitDataErr),
			fmt.Errorf("%s rejected %q (exit %d): %s", e.Command[0], f.Key, ExitDataErr, msg))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s on %q: %w", e.Command[0], f.Key, ctx.Err())
	}
	return fmt.Errorf("%s on %q: %w: %s", e.Command[0], f.Key, err, msg)
}

// execWaitDelay is how long Import waits, after the command exited or was
// killed, for its stdin and stderr to be released (by children it left
// behind) before closing them; a variable so that tests can shorten it.
var execWaitDelay = 5 * time.Second

// environ returns the command's environment without the descriptor: the
// allowed variables of the daemon's environment, then Env (see Exec). The
// S3CONNECTOR_* variables set afterwards come last and so win (os/exec uses
// the last value of a name).
func (e Exec) environ() []string {
	inherited := config.ExecInheritedEnv()
	env := make([]string, 0, len(inherited)+len(e.Env)+16)
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if slices.Contains(inherited, name) || strings.HasPrefix(name, "LC_") {
			env = append(env, kv)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(e.Env)) {
		if !strings.HasPrefix(name, config.ExecReservedEnvPrefix) {
			env = append(env, name+"="+e.Env[name])
		}
	}
	return env
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

package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// Dir writes each file under a local directory, keeping its path relative to
// the base path. Writes are atomic (temp file, fsync, rename): a reader of
// the directory never sees a partial file. The rename, and directories
// created for the file, are made durable by fsyncing their parent
// directories before Import returns: the S3 object is archived afterwards,
// and a power loss must not lose the file in both places. A key that would
// land outside the directory ("..", absolute, NUL) is a permanent error.
type Dir struct {
	Root string
}

// Import implements Importer.
func (d Dir) Import(ctx context.Context, f File, body io.Reader) error {
	target, err := d.target(f.RelKey)
	if err != nil {
		return Permanent(fmt.Errorf("key %q cannot be written under the import directory: %w; rename the file in the bucket", f.Key, err))
	}
	if err := d.mkdirAll(filepath.Dir(target)); err != nil {
		return fmt.Errorf("create directory for %q: %w", f.Key, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), ".s3connector-*.tmp")
	if err != nil {
		return fmt.Errorf("create temp file for %q: %w", f.Key, err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, contextReader{ctx, body}); err != nil {
		return fmt.Errorf("write %q: %w", f.Key, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %q: %w", f.Key, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %q: %w", f.Key, err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("rename %q: %w", f.Key, err)
	}
	committed = true
	// The file is in place; an error here is transient and the next run
	// rewrites it.
	if err := syncDir(filepath.Dir(target)); err != nil {
		return fmt.Errorf("sync directory of %q after writing it: %w", f.Key, err)
	}
	return nil
}

// mkdirAll creates dir and its missing parents, and fsyncs the parent of
// every directory it may have created (up to Root's parent) so that their
// entries survive a power loss.
func (d Dir) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root := filepath.Clean(d.Root)
	for p := dir; ; {
		parent := filepath.Dir(p)
		if err := syncDir(parent); err != nil {
			return err
		}
		if p == root || parent == p {
			return nil
		}
		p = parent
	}
}

// syncDir fsyncs a directory, making the entries created or renamed in it
// durable. File systems that cannot fsync a directory (EINVAL, ENOTSUP) are
// taken as they are: failing every file there would help nobody.
func syncDir(dir string) error {
	fd, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer fd.Close()
	if err := fd.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// target maps a relative key to a path under Root, refusing anything that
// would escape it.
func (d Dir) target(rel string) (string, error) {
	switch {
	case rel == "" || strings.HasSuffix(rel, "/"):
		return "", errors.New("not a file name")
	case strings.ContainsRune(rel, 0):
		return "", errors.New("contains NUL")
	case strings.HasPrefix(rel, "/") || strings.Contains(rel, `\`):
		return "", errors.New(`it is an absolute path or contains a backslash ("\\")`)
	}
	for _, seg := range strings.Split(rel, "/") {
		if seg == ".." || seg == "." || seg == "" {
			return "", fmt.Errorf("path segment %q not allowed", seg)
		}
	}
	clean := path.Clean(rel)
	if !filepath.IsLocal(filepath.FromSlash(clean)) {
		return "", errors.New("not a local path")
	}
	return filepath.Join(d.Root, filepath.FromSlash(clean)), nil
}

// contextReader stops a long copy when the context is cancelled.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

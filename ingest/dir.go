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
)

// Dir writes each file under a local directory, keeping its path relative to
// the base path. Writes are atomic (temp file, fsync, rename): a reader of
// the directory never sees a partial file. A key that would land outside the
// directory ("..", absolute, NUL) is a permanent error.
type Dir struct {
	Root string
}

// Import implements Importer.
func (d Dir) Import(ctx context.Context, f File, body io.Reader) error {
	target, err := d.target(f.RelKey)
	if err != nil {
		return Permanent(fmt.Errorf("key %q cannot be written under the import directory: %w; rename the file in the bucket", f.Key, err))
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
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

package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
// and a power loss must not lose the file in both places.
//
// Keys that cannot be written whatever the retry are permanent errors, so
// the file goes to error/ with a report instead of coming back every run: a
// key that would land outside the directory ("..", absolute, NUL); a key
// that collides with a folder (the file "a" exists and "a/b" arrives, or
// the folder "a/" exists and "a" arrives); a name segment, or the whole
// path, longer than the file system allows. The path is checked before
// the body is read; the same errors from creating the directories or from
// the rename (another worker wrote the colliding key meanwhile) are
// permanent too. They are told apart by errno, never by message text.
type Dir struct {
	Root string
}

// Import implements Importer.
func (d Dir) Import(ctx context.Context, f File, body io.Reader) error {
	target, err := d.target(f.RelKey)
	if err != nil {
		return Permanent(fmt.Errorf("key %q cannot be written under the import directory: %w; rename the file in the bucket", f.Key, err))
	}
	if err := d.checkPath(f, target); err != nil {
		return err
	}
	if err := d.mkdirAll(filepath.Dir(target)); err != nil {
		if pe := d.keyConflict(f, target, err, syscall.ENOTDIR, syscall.EEXIST, syscall.ENAMETOOLONG); pe != nil {
			return pe
		}
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
		// os.Rename reports a directory at target as EEXIST.
		if pe := d.keyConflict(f, target, err, syscall.ENOTDIR, syscall.EISDIR, syscall.EEXIST, syscall.ENAMETOOLONG); pe != nil {
			return pe
		}
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

// checkPath finds, before anything is read or written, the keys whose
// target cannot be created: a non-directory where a folder of the key must
// be, a directory where the file must be, a segment too long for the file
// system. Only the file system can tell the last: looking up a name longer
// than its limit fails with ENAMETOOLONG whether or not the name exists, so
// each segment the directory does not have yet is looked up in the deepest
// existing directory (the one it will be created on). Errors other than
// these (EACCES, EIO) are transient.
func (d Dir) checkPath(f File, target string) error {
	root := filepath.Clean(d.Root)
	if fi, err := os.Stat(root); err == nil && !fi.IsDir() {
		// The administrator's problem, the same for every file: transient.
		return fmt.Errorf("import directory %s is not a directory", root)
	} else if err != nil {
		// Missing (mkdirAll creates it) or unreadable (mkdirAll fails,
		// transiently): there is nothing to look up names in. The same
		// errnos are caught when mkdirAll and the rename meet them.
		return nil
	}
	rel, err := filepath.Rel(root, target)
	if err != nil {
		return fmt.Errorf("check the path of %q: %w", f.Key, err)
	}
	segs := strings.Split(rel, string(filepath.Separator))
	dir := root
	for i, seg := range segs {
		p := filepath.Join(dir, seg)
		last := i == len(segs)-1
		stat := os.Stat // a folder may be a symlink, as for os.MkdirAll
		if last {
			stat = os.Lstat // the rename replaces a symlink
		}
		fi, err := stat(p)
		switch {
		case err == nil && !last && !fi.IsDir():
			return d.conflict(f, target, &os.PathError{Op: "stat", Path: filepath.Join(p, segs[i+1]), Err: syscall.ENOTDIR})
		case err == nil && last && fi.IsDir():
			return d.conflict(f, target, &os.PathError{Op: "open", Path: p, Err: syscall.EISDIR})
		case err == nil:
			dir = p
			continue
		case errors.Is(err, fs.ErrNotExist):
			// The rest is created under dir: probe the remaining names there.
			for _, rest := range segs[i:] {
				if _, err := os.Lstat(filepath.Join(dir, rest)); errors.Is(err, syscall.ENAMETOOLONG) {
					return d.conflict(f, target, err)
				}
			}
			// The whole path's limit (PATH_MAX) is checked by the kernel
			// before any lookup.
			if _, err := os.Lstat(target); errors.Is(err, syscall.ENAMETOOLONG) {
				return d.conflict(f, target, err)
			}
			return nil
		default:
			if pe := d.keyConflict(f, target, err, syscall.ENOTDIR, syscall.ENAMETOOLONG); pe != nil {
				return pe
			}
			return fmt.Errorf("check the path of %q: %w", f.Key, err)
		}
	}
	return nil
}

// keyConflict returns the permanent error for err when it is one of errnos
// (the key's path cannot exist on this file system), else nil.
func (d Dir) keyConflict(f File, target string, err error, errnos ...syscall.Errno) error {
	for _, errno := range errnos {
		if errors.Is(err, errno) {
			return d.conflict(f, target, err)
		}
	}
	return nil
}

// conflict wraps err, which carries ENOTDIR, EEXIST, EISDIR or
// ENAMETOOLONG, as the permanent error explaining why key f.Key cannot be
// written to target. EEXIST is a non-directory where mkdir needs a folder,
// or (os.Rename's own check) a folder where the file goes: what is on disk
// tells which.
func (d Dir) conflict(f File, target string, err error) error {
	why := "it collides with another key's file or folder in the import directory"
	if errors.Is(err, syscall.ENAMETOOLONG) {
		longest := ""
		for _, seg := range strings.Split(f.RelKey, "/") {
			if len(seg) > len(longest) {
				longest = seg
			}
		}
		why = fmt.Sprintf("its path is longer than the import directory's file system allows (its longest name, %.40q..., has %d bytes; the usual limits are 255 bytes per name and 4096 per path)", longest, len(longest))
	} else if fi, statErr := os.Lstat(target); statErr == nil && fi.IsDir() {
		why = fmt.Sprintf("the folder %s exists in the import directory (other keys are stored under it), so a file cannot take its name", target)
	} else {
		root := filepath.Clean(d.Root) + string(filepath.Separator)
		for p := filepath.Dir(target); strings.HasPrefix(p, root); p = filepath.Dir(p) {
			if fi, statErr := os.Stat(p); statErr == nil && !fi.IsDir() {
				why = fmt.Sprintf("the file %s exists in the import directory (an earlier key), so it cannot also be a folder", p)
				break
			}
		}
	}
	return Permanent(fmt.Errorf("key %q cannot be written under the import directory: %s; rename the file in the bucket: %w", f.Key, why, err))
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

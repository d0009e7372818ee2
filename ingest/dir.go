package ingest

import (
	"container/list"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Dir writes each file under a local directory, keeping its path relative to
// the base path. Writes are atomic (temp file, fsync, rename): a reader of
// the directory never sees a partial file. The rename, and directories
// created for the file, are made durable by fsyncing their parent
// directories before Import returns: the S3 object is archived afterwards,
// and a power loss must not lose the file in both places.
//
// Containment (I8): every file system call goes through an os.Root opened
// on Root, and then on each folder of the key in turn, so no key, symbolic
// link or concurrent rename can take a write outside the directory. Beyond
// that, Dir never follows a symbolic link inside the directory at all: it
// creates none, so one found on a key's path (as a folder or as the file)
// was put there by someone else. That is a transient error naming the
// link: the link is the operator's problem, not the file's, and sending a
// good file to error/ for it would break I4; the file stays in the inbox
// and is imported once the link is removed.
//
// Keys that cannot be written whatever the retry are permanent errors, so
// the file goes to error/ with a report instead of coming back every run: a
// key that would land outside the directory ("..", absolute, NUL); a key
// that collides with a folder (the file "a" exists and "a/b" arrives, or
// the folder "a/" exists and "a" arrives); a name segment longer than the
// file system allows, or a whole path longer than PATH_MAX; and a name
// collision (ErrNameCollision). The path is checked before the body is
// downloaded (Precheck, see Prechecker) and again before it is read; the
// same errors from creating the directories or from the rename (another
// worker wrote the colliding key meanwhile) are permanent too. They are
// told apart by errno, never by message text.
//
// Name collisions: on a case-insensitive or Unicode-normalising file system
// (macOS, Windows, a share mounted from one, or a later copy of this
// directory onto one) "A.csv" and "a.csv", or "é" written as one code point
// (NFC) and as "e" plus a combining accent (NFD), are one name, and the
// second key would overwrite the first. The rule: within one folder, the
// first name written keeps its spelling; a later key whose name (of the
// file, or of any folder on its path) has the same case-folded NFC form as
// an entry of that folder but a different exact spelling is refused with a
// permanent error naming both keys. The same key again (at-least-once
// re-import) has the same spelling and simply replaces the file. Each
// folder's names are read once and then kept in step with what Dir writes
// (see dirNameIndex), so the check costs no directory scan per file; an
// entry deleted since (by a consumer of the directory) stops counting once
// a colliding key finds it gone, but names created by other programs after
// the folder was read are not seen.
type Dir struct {
	Root string

	// names is nil outside tests: the process-wide index (processDirNames).
	names *dirNameIndex
}

// ErrNameCollision is in the chain of the permanent error for a key whose
// name differs from an existing entry's only in letter case or Unicode
// normalisation (see Dir).
var ErrNameCollision = errors.New("name collision on a case-insensitive or normalising file system")

// ErrSymlinkInImportDir is in the chain of the (transient) error for a key
// whose path in the import directory meets a symbolic link (see Dir).
var ErrSymlinkInImportDir = errors.New("symbolic link in the import directory")

// Reasons of the dir importer's permanent errors, for the error/ report in
// the customer's bucket: they never name a local path (the log has it).
const (
	reasonNoLocalPath     = `the key has no safe local path (it has a ".." or "." segment, an empty segment, a leading "/", a backslash or a NUL); rename the file in the bucket`
	reasonFileFolderClash = "the key collides with another key's file or folder in the import directory (a file cannot also be a folder); rename the file in the bucket"
	reasonNameTooLong     = "a name in the key is longer than the import directory's file system allows (usually 255 bytes per name); rename the file in the bucket"
)

// pathMax is Linux's PATH_MAX, counting the terminating NUL: Dir reaches
// every folder by descriptor, so the kernel would not stop a longer path,
// but the readers of the directory open files by name.
const pathMax = 4096

// Import implements Importer.
func (d Dir) Import(ctx context.Context, f File, body io.Reader) error {
	segs, err := d.segments(f)
	if err != nil {
		return err
	}
	root, err := d.openRoot()
	if err != nil {
		return err
	}
	defer root.Close()
	w := &dirWrite{d: d, f: f, segs: segs, top: root}
	defer w.close()
	if err := w.prepare(); err != nil {
		return err
	}
	committed := false
	defer func() { w.finish(committed) }()

	dir, leaf := w.dir, segs[len(segs)-1]
	tmpName := ".s3connector-" + rand.Text() + ".tmp"
	// 0o600, as os.CreateTemp made it before; O_EXCL never opens an
	// existing file or link.
	tmp, err := dir.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create temp file for %q: %w", f.Key, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			dir.Remove(tmpName)
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
	// rename(2) replaces a link at leaf, never writes through it.
	if err := dir.Rename(tmpName, leaf); err != nil {
		return w.renameFailed(err)
	}
	renamed, committed = true, true
	// The file is in place; an error here is transient and the next run
	// rewrites it.
	if err := syncRootDir(dir); err != nil {
		return fmt.Errorf("sync directory of %q after writing it: %w", f.Key, err)
	}
	return nil
}

// Precheck implements Prechecker: it makes Import's checks of the key's
// path (an escaping or unsafe key, a file/folder clash, a name or path
// too long, a case or Unicode collision, see Dir) without creating
// anything: it walks the folders that exist and stops at the first name
// that does not (nothing below it can clash; the file system's name limit
// is still probed there). Transient trouble (a symbolic link, an
// unreadable folder, a missing import directory) is left to Import.
func (d Dir) Precheck(_ context.Context, f File) error {
	segs, err := d.segments(f)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(filepath.Clean(d.Root))
	if err != nil {
		// Missing (Import creates it, and nothing in it can clash) or
		// unusable (Import's transient error).
		return nil
	}
	defer root.Close()
	w := &dirWrite{d: d, f: f, segs: segs, top: root, dry: true}
	defer w.close()
	return w.prepare()
}

// segments is f's path in the import directory, or the permanent error of
// a key that has none.
func (d Dir) segments(f File) ([]string, error) {
	segs, err := keySegments(f.RelKey)
	if err != nil {
		return nil, Rejected(reasonNoLocalPath, fmt.Errorf("key %q cannot be written under the import directory: %w; rename the file in the bucket", f.Key, err))
	}
	if full := filepath.Join(d.Root, filepath.Join(segs...)); len(full) >= pathMax {
		return nil, d.conflict(f, segs, &os.PathError{Op: "open", Path: full, Err: syscall.ENAMETOOLONG})
	}
	return segs, nil
}

// openRoot opens the import directory, creating it (and fsyncing the
// parents of what it created) when missing. Trouble with the directory
// itself is the same for every file: transient.
func (d Dir) openRoot() (*os.Root, error) {
	root := filepath.Clean(d.Root)
	fi, err := os.Stat(root)
	switch {
	case err == nil && !fi.IsDir():
		return nil, fmt.Errorf("import directory %s is not a directory", root)
	case errors.Is(err, fs.ErrNotExist):
		if err := mkdirAllSynced(root); err != nil {
			return nil, fmt.Errorf("create import directory: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("import directory: %w", err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("import directory: %w", err)
	}
	return r, nil
}

// mkdirAllSynced creates dir and its missing parents (this is the
// configured path, outside any Root) and fsyncs the parent of each one it
// created.
func mkdirAllSynced(dir string) error {
	existing := dir
	for {
		if _, err := os.Stat(existing); err == nil {
			break
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			break
		}
		existing = parent
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for p := dir; p != existing; {
		parent := filepath.Dir(p)
		if err := syncDir(parent); err != nil {
			return err
		}
		if parent == p {
			return nil
		}
		p = parent
	}
	return nil
}

// dirWrite is one Import's walk down the key's folders.
type dirWrite struct {
	d    Dir
	f    File
	segs []string
	top  *os.Root
	// dir is the Root of the file's folder (top, or opened below it).
	dir    *os.Root
	opened []*os.Root
	// held are the folder name sets this write uses, released by close.
	held []*dirNames
	// leaf is the file's name, reserved in its folder's leafNames.
	leaf      *reservation
	leafNames *dirNames
	index     *dirNameIndex
	// dry makes prepare check only (Precheck): it creates no folder,
	// reserves no name, and stops at the first name that does not exist
	// (absent).
	dry, absent bool
}

// prepare walks the key's folders from the top, each opened as a Root of
// its own below the previous one, creating the missing ones; it checks every
// name against its folder's names (collisions), refuses links, folder/file
// clashes and over-long names, and reserves the file's name in its folder.
// Nothing is read from the body yet, and nothing is created for a key that
// a check refuses. A dry walk makes the same checks and creates nothing.
func (w *dirWrite) prepare() error {
	w.index = w.d.names
	if w.index == nil {
		w.index = processDirNames
	}
	cur := w.top
	var names *dirNames // cur's, when step has it already
	for i, seg := range w.segs {
		if names == nil {
			var err error
			if names, err = w.index.acquire(cur); err != nil {
				return fmt.Errorf("import directory: %w", err)
			}
			w.held = append(w.held, names)
		}
		sub, subNames, err := w.step(cur, names, i)
		if err != nil || w.absent {
			return err
		}
		if i == len(w.segs)-1 {
			w.dir = cur
			return nil
		}
		if sub == nil {
			if sub, err = cur.OpenRoot(seg); err != nil {
				// A link or a file swapped in since the check: never
				// followed outside cur (os.Root); transient, the next run
				// looks again.
				return fmt.Errorf("open folder %s for %q: %w", w.local(i+1), w.f.Key, err)
			}
			w.opened = append(w.opened, sub)
		}
		cur, names = sub, subNames
	}
	return nil
}

// step checks segment i in cur, whose names are names: it creates the
// folder if missing, or reserves the name if it is the file. names' lock is
// held across the check and the mkdir or reservation, so two workers cannot
// create "Data" and "data" side by side. A folder it creates it also opens,
// and returns with its names, known empty (whatever an earlier folder with
// the same inode number held).
func (w *dirWrite) step(cur *os.Root, names *dirNames, i int) (sub *os.Root, subNames *dirNames, err error) {
	names.mu.Lock()
	defer names.mu.Unlock()
	created, err := w.check(cur, names, i)
	if err != nil || !created {
		return nil, nil, err
	}
	seg := w.segs[i]
	if err := syncRootDir(cur); err != nil {
		return nil, nil, fmt.Errorf("create directory for %q: %w", w.f.Key, err)
	}
	if sub, err = cur.OpenRoot(seg); err != nil {
		return nil, nil, fmt.Errorf("open folder %s for %q: %w", w.local(i+1), w.f.Key, err)
	}
	w.opened = append(w.opened, sub)
	if subNames, err = w.index.acquire(sub); err != nil {
		return nil, nil, fmt.Errorf("import directory: %w", err)
	}
	w.held = append(w.held, subNames)
	subNames.mu.Lock()
	subNames.reset()
	subNames.mu.Unlock()
	return sub, subNames, nil
}

// check is step's work, under names' lock; it reports whether it created
// the folder.
func (w *dirWrite) check(cur *os.Root, names *dirNames, i int) (created bool, err error) {
	seg, last := w.segs[i], i == len(w.segs)-1
	if err := names.load(cur); err != nil {
		return false, fmt.Errorf("read folder %s for %q: %w", w.local(i), w.f.Key, err)
	}
	other, err := names.lookup(cur, seg)
	if err != nil {
		return false, fmt.Errorf("check name %s for %q: %w", w.local(i+1), w.f.Key, err)
	}
	if other != "" {
		return false, w.collision(cur, i, other)
	}
	fi, err := cur.Lstat(seg)
	if errors.Is(err, fs.ErrNotExist) {
		// Only the file system knows its name limit: a lookup of a name
		// longer than it fails with ENAMETOOLONG whether or not the name
		// exists. The rest of the path is created here, so its names are
		// probed here before the first mkdir.
		for _, rest := range w.segs[i:] {
			if _, err := cur.Lstat(rest); errors.Is(err, syscall.ENAMETOOLONG) {
				return false, w.conflict(err)
			}
		}
		if w.dry {
			w.absent = true
			return false, nil
		}
		if last {
			w.leaf, w.leafNames = names.reserve(seg), names
			return false, nil
		}
		err = cur.Mkdir(seg, 0o755)
		if err == nil {
			names.addOnDisk(seg)
			return true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			if pe := w.keyConflict(err, syscall.ENOTDIR, syscall.ENAMETOOLONG); pe != nil {
				return false, pe
			}
			return false, fmt.Errorf("create directory for %q: %w", w.f.Key, err)
		}
		// Created meanwhile by another program: look at what it is.
		fi, err = cur.Lstat(seg)
	}
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		return false, w.linkInTheWay(i + 1)
	case err == nil && !last && !fi.IsDir():
		return false, w.conflict(&os.PathError{Op: "stat", Path: w.local(i + 2), Err: syscall.ENOTDIR})
	case err == nil && last && fi.IsDir():
		return false, w.conflict(&os.PathError{Op: "open", Path: w.local(i + 1), Err: syscall.EISDIR})
	case err == nil && last:
		// The same key again (or a file of that exact name): replaced.
		if !w.dry {
			w.leaf, w.leafNames = names.reserve(seg), names
		}
		return false, nil
	case err == nil:
		names.addOnDisk(seg)
		return false, nil
	}
	if pe := w.keyConflict(err, syscall.ENOTDIR, syscall.ENAMETOOLONG); pe != nil {
		return false, pe
	}
	return false, fmt.Errorf("check the path of %q: %w", w.f.Key, err)
}

// finish ends the reservation of the file's name: written, the name is
// on disk in its folder's names.
func (w *dirWrite) finish(written bool) {
	if w.leaf == nil {
		return
	}
	w.leafNames.mu.Lock()
	w.leafNames.unreserve(w.leaf, written)
	w.leafNames.mu.Unlock()
}

func (w *dirWrite) close() {
	for _, r := range w.opened {
		r.Close()
	}
	for _, n := range w.held {
		w.index.release(n)
	}
}

// renameFailed classifies a failed rename. A folder or file that another
// worker or program put in the key's way meanwhile makes it permanent: the
// errno says so (EEXIST: Root.Rename's answer for a folder at the target),
// or the path now shows it (a folder of the key replaced by a file leaves
// this write in a deleted folder: ENOENT). A folder replaced by a symbolic
// link is not a file in the way but a link (Lstat does not follow it, so
// it is no folder either): transient, as any link on the path is (see
// Dir), never a permanent verdict on a good file.
func (w *dirWrite) renameFailed(err error) error {
	if pe := w.keyConflict(err, syscall.ENOTDIR, syscall.EISDIR, syscall.EEXIST, syscall.ENAMETOOLONG); pe != nil {
		return pe
	}
	if errors.Is(err, fs.ErrNotExist) {
		for i := 1; i < len(w.segs); i++ {
			fi, statErr := w.top.Lstat(path.Join(w.segs[:i]...))
			switch {
			case statErr != nil:
			case fi.Mode()&fs.ModeSymlink != 0:
				return w.linkInTheWay(i)
			case !fi.IsDir():
				return w.conflict(&os.PathError{Op: "rename", Path: w.local(i + 1), Err: syscall.ENOTDIR})
			}
		}
	}
	return fmt.Errorf("rename %q: %w", w.f.Key, err)
}

// linkInTheWay is the transient error for the symbolic link found at the
// key's first n segments. Transient on purpose: see Dir.
func (w *dirWrite) linkInTheWay(n int) error {
	return fmt.Errorf("%w: %s is a symbolic link; the dir importer never follows links in its directory (one could point outside it), so key %q stays in the inbox until an operator removes the link", ErrSymlinkInImportDir, w.local(n), w.f.Key)
}

// local is the local path of the key's first n segments (for the log).
func (w *dirWrite) local(n int) string {
	return filepath.Join(filepath.Clean(w.d.Root), filepath.Join(w.segs[:n]...))
}

// keyConflict returns the permanent error for err when it is one of errnos
// (the key's path cannot exist on this file system), else nil.
func (w *dirWrite) keyConflict(err error, errnos ...syscall.Errno) error {
	for _, errno := range errnos {
		if errors.Is(err, errno) {
			return w.conflict(err)
		}
	}
	return nil
}

func (w *dirWrite) conflict(err error) error { return w.d.conflictIn(w.top, w.f, w.segs, err) }

func (d Dir) conflict(f File, segs []string, err error) error { return d.conflictIn(nil, f, segs, err) }

// conflictIn wraps err, which carries ENOTDIR, EEXIST, EISDIR or
// ENAMETOOLONG, as the permanent error explaining why key f.Key cannot be
// written. EEXIST is a non-directory where mkdir needs a folder, or a
// folder where the file goes: what is on disk (read through top, when
// open) tells which.
func (d Dir) conflictIn(top *os.Root, f File, segs []string, err error) error {
	why := "it collides with another key's file or folder in the import directory"
	reason := reasonFileFolderClash
	rel := path.Join(segs...)
	local := func(p string) string { return filepath.Join(filepath.Clean(d.Root), filepath.FromSlash(p)) }
	if errors.Is(err, syscall.ENAMETOOLONG) {
		longest := ""
		for _, seg := range segs {
			if len(seg) > len(longest) {
				longest = seg
			}
		}
		reason = reasonNameTooLong
		why = fmt.Sprintf("its path is longer than the import directory's file system allows (its longest name, %.40q..., has %d bytes; the usual limits are 255 bytes per name and 4096 per path)", longest, len(longest))
	} else if top == nil {
		// Not opened yet: nothing to look at.
	} else if fi, statErr := top.Lstat(rel); statErr == nil && fi.IsDir() {
		why = fmt.Sprintf("the folder %s exists in the import directory (other keys are stored under it), so a file cannot take its name", local(rel))
	} else {
		for i := len(segs) - 1; i > 0; i-- {
			p := path.Join(segs[:i]...)
			if fi, statErr := top.Lstat(p); statErr == nil && !fi.IsDir() {
				why = fmt.Sprintf("the file %s exists in the import directory (an earlier key), so it cannot also be a folder", local(p))
				break
			}
		}
	}
	return Rejected(reason, fmt.Errorf("key %q cannot be written under the import directory: %s; rename the file in the bucket: %w", f.Key, why, err))
}

// collision is the permanent error for segment i, whose name differs from
// the entry other of its folder (cur) only in case or normalisation. It
// names both keys: other's is the key's prefix and folders (spelt as this
// key spells them: they matched exactly) and other.
func (w *dirWrite) collision(cur *os.Root, i int, other string) error {
	prefix := strings.TrimSuffix(w.f.Key, w.f.RelKey)
	otherKey := prefix + path.Join(append(w.segs[:i:i], other)...)
	mine, what := w.segs[i], "file"
	if fi, err := cur.Lstat(other); err == nil && fi.IsDir() {
		otherKey, what = otherKey+"/", "folder"
	}
	// Both keys are the customer's own, in their bucket: fit for the report.
	reason := fmt.Sprintf("the key differs from %q, imported earlier, only in letter case or Unicode normalisation (NFC/NFD), so the two would overwrite each other on a case-insensitive file system; the first one imported keeps the name; rename the file in the bucket", otherKey)
	return Rejected(reason, fmt.Errorf("key %q cannot be written under the import directory: its name %q and the %s %q in the same folder (key %q) differ only in letter case or Unicode normalisation (NFC/NFD), so a case-insensitive or normalising file system would store them as one and one would overwrite the other; the first one written keeps the name; rename the file in the bucket: %w",
		w.f.Key, mine, what, other, otherKey, ErrNameCollision))
}

// syncRootDir fsyncs the directory r is opened on.
func syncRootDir(r *os.Root) error {
	fd, err := r.Open(".")
	if err != nil {
		return err
	}
	defer fd.Close()
	if err := fd.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fmt.Errorf("sync directory %s: %w", r.Name(), err)
	}
	return nil
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

// keySegments splits a relative key into the names of its folders and
// file, refusing anything that would escape the directory.
func keySegments(rel string) ([]string, error) {
	switch {
	case rel == "" || strings.HasSuffix(rel, "/"):
		return nil, errors.New("not a file name")
	case strings.ContainsRune(rel, 0):
		return nil, errors.New("contains NUL")
	case strings.HasPrefix(rel, "/") || strings.Contains(rel, `\`):
		return nil, errors.New(`it is an absolute path or contains a backslash ("\\")`)
	}
	segs := strings.Split(rel, "/")
	for _, seg := range segs {
		if seg == ".." || seg == "." || seg == "" {
			return nil, fmt.Errorf("path segment %q not allowed", seg)
		}
	}
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		return nil, errors.New("not a local path")
	}
	return segs, nil
}

// foldName is the form two names share when a case-insensitive or
// Unicode-normalising file system takes them for one: full Unicode case
// folding of the canonical decomposition, recomposed (NFC), as Linux's
// casefold directories compare names. Full folding merges more than
// Windows' simple upcasing ("ß" and "ss", "ﬁ" and "fi"): refusing a few
// keys too many is the safe side. Compatibility forms ("①" and "1") stay
// apart: no common file system merges them.
func foldName(name string) string {
	return norm.NFC.String(caseFolder.String(norm.NFD.String(name)))
}

// caseFolder is stateless and safe for concurrent use (cases.Fold).
var caseFolder = cases.Fold()

// processDirNames is the process-wide index of folder names. It is process-wide
// rather than per Dir because the file system is: Dir values are copied,
// rebuilt on a configuration reload, and two of them writing one directory
// must see each other's names.
var processDirNames = newDirNameIndex(1 << 20)

// dirNameIndex keeps, per folder (by device and inode, however it is
// reached), a hash of each entry's folded name and of its exact name: read
// from the folder the first time a key needs it, then kept in step with
// what Dir creates. A name takes 20 to 40 bytes and a folder about as much
// as folderWeight names: the whole index holds about budget names (20 to 40
// MiB for the default); above that, the least recently used folders nobody
// is writing in are dropped, and read again when next needed. The most
// recent folder is always kept, so a single folder of millions of files is
// read once, not once per file.
//
// A folder deleted and another created with its inode number by some other
// program inherits the old names: stale names are harmless (a collision is
// always confirmed on disk), and the new folder's own entries are names
// created by another program after the read, which Dir does not promise to
// see. A folder Dir creates starts empty.
type dirNameIndex struct {
	budget int
	seed   maphash.Seed

	mu    sync.Mutex
	dirs  map[dirID]*dirNames
	lru   *list.List // of *dirNames, most recent first
	total int        // names held, as last counted by release
}

type dirID struct{ dev, ino uint64 }

// folderWeight is what a folder's own bookkeeping costs, in names: a
// bucket laid out one folder per file must not grow the index unbounded.
const folderWeight = 8

// dirNames is one folder's names. mu guards the fields below it and is held
// while a name is checked and created or reserved in the folder.
type dirNames struct {
	x       *dirNameIndex
	id      dirID
	elem    *list.Element
	users   int // under dirNameIndex.mu
	counted int // under dirNameIndex.mu: its weight in names as of the last release

	mu     sync.Mutex
	loaded bool
	// onDisk maps the hash of an entry's folded name to the hash of its
	// exact name. Only a match with a different exact hash costs a look at
	// the folder (scanFold), which also tells a stale entry (deleted since)
	// and a hash collision from a real name collision.
	onDisk map[uint64]uint64
	// pending are the file names being written, by folded hash: a
	// colliding key is refused while one is under way.
	pending map[uint64]*reservation
}

// reservation is a file name that writes under way will create.
type reservation struct {
	name    string
	writers int
}

func newDirNameIndex(budget int) *dirNameIndex {
	return &dirNameIndex{budget: budget, seed: maphash.MakeSeed(), dirs: map[dirID]*dirNames{}, lru: list.New()}
}

// acquire returns the names of the folder r is opened on; release it after
// use.
func (x *dirNameIndex) acquire(r *os.Root) (*dirNames, error) {
	fi, err := r.Stat(".")
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("%s: no device and inode numbers", r.Name())
	}
	id := dirID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
	x.mu.Lock()
	defer x.mu.Unlock()
	n := x.dirs[id]
	if n == nil {
		n = &dirNames{x: x, id: id, onDisk: map[uint64]uint64{}, pending: map[uint64]*reservation{}}
		n.elem = x.lru.PushFront(n)
		x.dirs[id] = n
	} else {
		x.lru.MoveToFront(n.elem)
	}
	n.users++
	return n, nil
}

// release gives back a folder's names, counts them and drops least recently
// used folders while the index holds more than its budget.
func (x *dirNameIndex) release(n *dirNames) {
	n.mu.Lock()
	count := folderWeight + len(n.onDisk)
	n.mu.Unlock()
	x.mu.Lock()
	defer x.mu.Unlock()
	n.users--
	x.total += count - n.counted
	n.counted = count
	for e := x.lru.Back(); e != nil && x.total > x.budget && e != x.lru.Front(); {
		prev := e.Prev()
		if old := e.Value.(*dirNames); old.users == 0 {
			x.lru.Remove(e)
			delete(x.dirs, old.id)
			x.total -= old.counted
		}
		e = prev
	}
}

func (n *dirNames) hash(s string) uint64 { return maphash.String(n.x.seed, s) }

// isTemp reports whether name is one of Dir's temp files.
func isTemp(name string) bool {
	return strings.HasPrefix(name, ".s3connector-") && strings.HasSuffix(name, ".tmp")
}

// load reads the folder's names once.
func (n *dirNames) load(r *os.Root) error {
	if n.loaded {
		return nil
	}
	err := readNames(r, func(name string) {
		if !isTemp(name) {
			n.addOnDisk(name)
		}
	})
	if err != nil {
		clear(n.onDisk)
		return err
	}
	n.loaded = true
	return nil
}

// readNames calls fn with each name in the folder r is opened on, a batch
// at a time.
func readNames(r *os.Root, fn func(string)) error {
	fd, err := r.Open(".")
	if err != nil {
		return err
	}
	defer fd.Close()
	for {
		batch, err := fd.Readdirnames(4096)
		for _, name := range batch {
			fn(name)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// lookup returns the name that name collides with in the folder, or "".
// A write under way always collides. An entry on disk is confirmed by
// reading the folder (scanFold): one deleted since (by a consumer of the
// directory) is forgotten, and if the folder has name itself as well (two
// spellings written before this check existed), name is a re-import.
func (n *dirNames) lookup(r *os.Root, name string) (other string, err error) {
	fold := foldName(name)
	fh := n.hash(fold)
	if p := n.pending[fh]; p != nil && p.name != name {
		return p.name, nil
	}
	eh, ok := n.onDisk[fh]
	if !ok || eh == n.hash(name) {
		return "", nil
	}
	var same []string
	err = readNames(r, func(entry string) {
		if !isTemp(entry) && foldName(entry) == fold {
			same = append(same, entry)
		}
	})
	switch {
	case err != nil:
		return "", err
	case slices.Contains(same, name):
		return "", nil
	case len(same) > 0:
		return same[0], nil
	}
	delete(n.onDisk, fh)
	return "", nil
}

// reset makes the names those of an empty folder, just created.
func (n *dirNames) reset() {
	clear(n.onDisk)
	n.loaded = true
}

// addOnDisk records name as an entry of the folder, unless its folded form
// is there already (under another spelling: the first one stays).
func (n *dirNames) addOnDisk(name string) {
	fh := n.hash(foldName(name))
	if _, ok := n.onDisk[fh]; !ok {
		n.onDisk[fh] = n.hash(name)
	}
}

// reserve records a write of the file name under way.
func (n *dirNames) reserve(name string) *reservation {
	fh := n.hash(foldName(name))
	p := n.pending[fh]
	if p == nil {
		p = &reservation{name: name}
		n.pending[fh] = p
	}
	p.writers++
	return p
}

// unreserve ends a write of p; written, its name is on disk.
func (n *dirNames) unreserve(p *reservation, written bool) {
	if written {
		n.addOnDisk(p.name)
	}
	if p.writers--; p.writers == 0 {
		delete(n.pending, n.hash(foldName(p.name)))
	}
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

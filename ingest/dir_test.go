package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestDirWritesAtomicallyUnderRoot(t *testing.T) {
	root := t.TempDir()
	d := Dir{Root: root}
	body := bytes.Repeat([]byte("0123456789"), 100_000)
	for _, rel := range []string{"a.csv", "nested/ü ñ/space and+plus.csv", "empty.txt"} {
		content := body
		if rel == "empty.txt" {
			content = nil
		}
		if err := d.Import(context.Background(), File{Key: "imports/" + rel, RelKey: rel}, bytes.NewReader(content)); err != nil {
			t.Fatalf("Import %q: %v", rel, err)
		}
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil || !bytes.Equal(got, content) {
			t.Errorf("%q: read back %d bytes, %v; want %d bytes equal", rel, len(got), err, len(content))
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(root, "*", ".s3connector-*.tmp"))
	if len(leftovers) > 0 {
		t.Errorf("temp files left: %q", leftovers)
	}
}

func TestDirRefusesEscapingKeys(t *testing.T) {
	root := t.TempDir()
	d := Dir{Root: filepath.Join(root, "inside")}
	tests := []string{"../outside.csv", "a/../../outside.csv", "/etc/passwd", "a\x00b", "a/./b", "a//b", "dir/", `..\x`}
	for _, rel := range tests {
		err := d.Import(context.Background(), File{Key: rel, RelKey: rel}, strings.NewReader("x"))
		if !IsPermanent(err) {
			t.Errorf("Import(%q) = %v, want a permanent error", rel, err)
		}
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		if e.Name() != "inside" {
			t.Errorf("file escaped the directory: %s", e.Name())
		}
	}
}

func TestDirFailedWriteLeavesNothing(t *testing.T) {
	root := t.TempDir()
	failing := errors.New("network reset")
	err := Dir{Root: root}.Import(context.Background(), File{Key: "k", RelKey: "k.csv"}, &errReader{n: 4096, err: failing})
	if !errors.Is(err, failing) || IsPermanent(err) {
		t.Fatalf("err = %v, want the transient read error", err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 0 {
		t.Errorf("failed import left %d entries", len(entries))
	}
}

type errReader struct {
	n   int
	err error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, r.err
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestPermanent(t *testing.T) {
	base := errors.New("bad csv header")
	err := Permanent(base)
	if !IsPermanent(err) || !errors.Is(err, base) {
		t.Errorf("Permanent(%v): IsPermanent=%v Is=%v", base, IsPermanent(err), errors.Is(err, base))
	}
	if IsPermanent(base) || Permanent(nil) != nil {
		t.Error("plain errors must be transient and Permanent(nil) nil")
	}
}

// The fsync of the parent directories cannot be observed without a power
// loss; this checks that creating the root and nested directories (each of
// whose parents is synced) still puts the file in place.
func TestDirCreatesMissingRootAndDirectories(t *testing.T) {
	root := filepath.Join(t.TempDir(), "not", "yet")
	d := Dir{Root: root + string(filepath.Separator)}
	for _, rel := range []string{"a/b/c.csv", "a/b/d.csv", "e.csv"} {
		if err := d.Import(context.Background(), File{Key: rel, RelKey: rel}, strings.NewReader(rel)); err != nil {
			t.Fatalf("Import %q: %v", rel, err)
		}
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil || string(got) != rel {
			t.Errorf("%q: read back %q, %v", rel, got, err)
		}
	}
}

// Keys that can never be written, whatever the retry, are permanent errors
// naming the key, found before the body is read; others stay transient.
func TestDirKeysThatCannotBeWritten(t *testing.T) {
	long := strings.Repeat("x", 300) // over NAME_MAX (255) on every common file system
	// Keys of exactly S3's 1,024-byte limit (a connection whose base_path
	// is empty lists them as they are): names of up to 255 bytes, the
	// longest every common file system allows, are written; one name of
	// 256 bytes is not.
	name255 := func(c string) string { return strings.Repeat(c, 255) }
	limitKey := name255("a") + "/" + name255("b") + "/" + name255("c") + "/" + strings.Repeat("d", 250) + "/x.csv"
	limitKeyUTF8 := strings.Repeat("\u00e9", 127) + "e/" + strings.Repeat("\u00fc", 127) + "u/" + name255("c") + "/" + strings.Repeat("d", 250) + "/x.csv"
	limitKeyLongName := name255("a") + "/" + name255("b") + "/" + name255("c") + "/" + strings.Repeat("d", 256)
	for _, k := range []string{limitKey, limitKeyUTF8, limitKeyLongName} {
		if len(k) != 1024 {
			t.Fatalf("test key of %d bytes, want 1024", len(k))
		}
	}
	tests := []struct {
		name     string
		files    []string // existing files under the root ("a") and folders ("a/")
		rel      string
		want     syscall.Errno // 0: imported
		wantText string
		// created lists what must not exist afterwards: nothing is made for
		// a key rejected up front.
		absent []string
	}{
		{name: "file where a folder must be", files: []string{"a"}, rel: "a/b.csv", want: syscall.ENOTDIR, wantText: "/a exists in the import directory (an earlier key), so it cannot also be a folder"},
		{name: "file deeper up", files: []string{"a/b"}, rel: "a/b/c/d.csv", want: syscall.ENOTDIR, wantText: "/a/b exists", absent: []string{"a/b/c"}},
		{name: "folder where the file must be", files: []string{"a/", "a/x.csv"}, rel: "a", want: syscall.EISDIR, wantText: "the folder"},
		{name: "empty folder where the file must be", files: []string{"d/e/"}, rel: "d/e", want: syscall.EISDIR},
		{name: "name too long", rel: long + ".csv", want: syscall.ENAMETOOLONG, wantText: "304 bytes"},
		{name: "folder name too long", rel: long + "/b.csv", want: syscall.ENAMETOOLONG, absent: []string{long}},
		{name: "too long below new folders", rel: "new/deeper/" + long, want: syscall.ENAMETOOLONG, absent: []string{"new"}},
		{name: "too long below an existing folder", files: []string{"old/"}, rel: "old/" + long + "/c", want: syscall.ENAMETOOLONG},
		{name: "longest name allowed", rel: "ok/" + strings.Repeat("y", 255)},
		{name: "key of S3's 1,024-byte limit", rel: limitKey},
		{name: "key of S3's 1,024-byte limit, two-byte characters", rel: limitKeyUTF8},
		{name: "key of S3's 1,024-byte limit with a name too long", rel: limitKeyLongName, want: syscall.ENAMETOOLONG, wantText: "256 bytes", absent: []string{name255("a")}},
		{name: "same key again overwrites", files: []string{"a.csv"}, rel: "a.csv"},
		{name: "sibling of a file", files: []string{"a/b"}, rel: "a/c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, p := range tt.files {
				path := filepath.Join(root, filepath.FromSlash(p))
				if strings.HasSuffix(p, "/") {
					if err := os.MkdirAll(path, 0o755); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte("earlier"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			f := File{Key: "imports/" + tt.rel, RelKey: tt.rel}
			body := &countingReader{r: strings.NewReader("new")}
			err := Dir{Root: root}.Import(context.Background(), f, body)
			if tt.want == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(tt.rel))); err != nil || string(got) != "new" {
					t.Errorf("read back %q, %v", got, err)
				}
				return
			}
			if !IsPermanent(err) || !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want a permanent error wrapping %v", err, tt.want)
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("key %q", f.Key)) || !strings.Contains(msg, tt.wantText) || !strings.Contains(msg, "rename the file in the bucket") {
				t.Errorf("error %q does not name the key, say %q and what to do", msg, tt.wantText)
			}
			if r := publicReason(err); strings.Contains(r, root) || !strings.Contains(r, "rename the file in the bucket") {
				t.Errorf("report reason %q names a local path or not what to do", r)
			}
			if body.n != 0 {
				t.Errorf("%d bytes of the body read for a key rejected by its path", body.n)
			}
			for _, p := range tt.absent {
				if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
					t.Errorf("%s created for a rejected key", p)
				}
			}
			for _, p := range tt.files {
				if !strings.HasSuffix(p, "/") {
					if got, _ := os.ReadFile(filepath.Join(root, p)); string(got) != "earlier" {
						t.Errorf("%s changed to %q", p, got)
					}
				}
			}
			leftovers, _ := filepath.Glob(filepath.Join(root, "*", ".s3connector-*.tmp"))
			if top, _ := filepath.Glob(filepath.Join(root, ".s3connector-*.tmp")); len(leftovers)+len(top) > 0 {
				t.Errorf("temp files left: %q %q", leftovers, top)
			}
		})
	}
}

// A colliding key written by another worker while the body was being read
// (the path check passed) is caught at the rename, by errno, as permanent.
func TestDirCollisionDuringTheWrite(t *testing.T) {
	tests := []struct {
		name  string
		rel   string
		other func(root string) error // what the other worker does meanwhile
		want  syscall.Errno
		text  string
	}{
		{
			name:  "folder appears where the file goes",
			rel:   "a",
			other: func(root string) error { return os.MkdirAll(filepath.Join(root, "a", "b"), 0o755) },
			want:  syscall.EEXIST, // os.Rename's answer for a directory at the target
			text:  "the folder",
		},
		{
			name: "file appears where a folder is",
			rel:  "p/q/r.csv",
			other: func(root string) error {
				if err := os.RemoveAll(filepath.Join(root, "p", "q")); err != nil {
					return err
				}
				return os.WriteFile(filepath.Join(root, "p", "q"), []byte("other"), 0o644)
			},
			want: syscall.ENOTDIR,
			text: "/p/q exists in the import directory (an earlier key)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			body := &hookReader{r: strings.NewReader("body"), hook: func() error { return tt.other(root) }}
			err := Dir{Root: root}.Import(context.Background(), File{Key: tt.rel, RelKey: tt.rel}, body)
			if !errors.Is(err, tt.want) || !IsPermanent(err) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err = %v, want a permanent error wrapping %v and saying %q", err, tt.want, tt.text)
			}
		})
	}
}

// Trouble with the import directory itself is the same for every file:
// transient, never a reason to send a good file to error/.
func TestDirRootNotADirectoryIsTransient(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	if err := os.WriteFile(root, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := Dir{Root: root}.Import(context.Background(), File{Key: "a/b", RelKey: "a/b"}, strings.NewReader("x"))
	if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("err = %v, want a transient error saying the import directory is not a directory", err)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// hookReader calls hook once, at the first Read.
type hookReader struct {
	r    io.Reader
	hook func() error
	done bool
}

func (h *hookReader) Read(p []byte) (int, error) {
	if !h.done {
		h.done = true
		if err := h.hook(); err != nil {
			return 0, err
		}
	}
	return h.r.Read(p)
}

// A symbolic link on a key's path in the import directory is never
// followed, whether it points outside (to a file or a folder) or inside,
// and whether it is the file or one of its folders: a transient error
// names it (the operator's problem, not the file's: see Dir), nothing is
// read from the body, and nothing outside changes.
func TestDirNeverFollowsSymlinks(t *testing.T) {
	tests := []struct {
		name string
		// links maps a link's path under the root to its target; a target
		// starting with "OUT" is under the outside directory.
		links map[string]string
		dirs  []string // folders to create under the root first
		rel   string
		link  string // the link the error names
	}{
		{name: "leaf to an outside file", links: map[string]string{"a.csv": "OUT/victim"}, rel: "a.csv", link: "a.csv"},
		{name: "leaf to an outside file, relative", links: map[string]string{"a.csv": "../outside/victim"}, rel: "a.csv", link: "a.csv"},
		{name: "leaf to an outside folder", links: map[string]string{"d": "OUT"}, rel: "d", link: "d"},
		{name: "leaf dangling outside", links: map[string]string{"new.csv": "OUT/new.csv"}, rel: "new.csv", link: "new.csv"},
		{name: "folder to outside", links: map[string]string{"sub": "OUT"}, rel: "sub/x.csv", link: "sub"},
		{name: "folder to outside, relative", links: map[string]string{"sub": "../outside"}, rel: "sub/victim", link: "sub"},
		{name: "folder in the middle to outside", dirs: []string{"a"}, links: map[string]string{"a/sub": "OUT"}, rel: "a/sub/b/x.csv", link: "a/sub"},
		{name: "leaf in a subfolder to outside", dirs: []string{"a/b"}, links: map[string]string{"a/b/victim": "OUT/victim"}, rel: "a/b/victim", link: "a/b/victim"},
		{name: "folder to a folder inside", dirs: []string{"real"}, links: map[string]string{"alias": "real"}, rel: "alias/x.csv", link: "alias"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
			for _, d := range append([]string{""}, tt.dirs...) {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.MkdirAll(outside, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("outside"), 0o644); err != nil {
				t.Fatal(err)
			}
			for p, target := range tt.links {
				if rest, ok := strings.CutPrefix(target, "OUT"); ok {
					target = outside + rest
				}
				if err := os.Symlink(target, filepath.Join(root, filepath.FromSlash(p))); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, base)
			body := &countingReader{r: strings.NewReader("new")}
			f := File{Key: "imports/" + tt.rel, RelKey: tt.rel}
			err := Dir{Root: root, names: newDirNameIndex(1 << 10)}.Import(context.Background(), f, body)
			if after := snapshot(t, base); !maps.Equal(before, after) {
				t.Errorf("the tree changed:\nbefore %q\nafter  %q", before, after)
			}
			if err == nil || IsPermanent(err) || !errors.Is(err, ErrSymlinkInImportDir) {
				t.Fatalf("err = %v, want a transient error wrapping ErrSymlinkInImportDir", err)
			}
			if msg := err.Error(); !strings.Contains(msg, filepath.Join(root, filepath.FromSlash(tt.link))+" is a symbolic link") || !strings.Contains(msg, fmt.Sprintf("key %q", f.Key)) {
				t.Errorf("error %q does not name the link %s and the key", msg, tt.link)
			}
			if body.n != 0 {
				t.Errorf("%d bytes of the body read", body.n)
			}
		})
	}
}

// snapshot maps every path under dir (relative to it) to its content
// ("dir/" for folders, "-> target" for links).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case e.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			m[rel] = "-> " + target
			return err
		case e.IsDir():
			m[rel] = "dir/"
		default:
			b, err := os.ReadFile(p)
			m[rel] = string(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Keys whose names differ only in letter case or Unicode normalisation,
// in the same folder, would overwrite each other on a case-insensitive or
// normalising file system: the first written keeps its name, the later
// one is refused (permanent, naming both keys, before its body is read).
// The exact same key again replaces the file.
func TestDirNameCollisions(t *testing.T) {
	const (
		nfc = "caf\u00e9.csv"  // é as one code point
		nfd = "cafe\u0301.csv" // e + combining acute accent
	)
	tests := []struct {
		name    string
		onDisk  []string // files already in the directory (not written by Dir)
		earlier []string // keys imported first, in order
		removed []string // files deleted (by a consumer) after that
		rel     string
		other   string // the earlier key the refusal names; "" = imported
	}{
		{name: "case", earlier: []string{"A.csv"}, rel: "a.csv", other: "imports/A.csv"},
		{name: "case, other way", earlier: []string{"a.csv"}, rel: "A.CSV", other: "imports/a.csv"},
		{name: "NFD after NFC", earlier: []string{nfc}, rel: nfd, other: "imports/" + nfc},
		{name: "NFC after NFD", earlier: []string{nfd}, rel: nfc, other: "imports/" + nfd},
		{name: "case and normalisation", earlier: []string{"CAF\u00c9.csv"}, rel: nfd, other: "imports/CAF\u00c9.csv"},
		{name: "full case folding", earlier: []string{"stra\u00dfe.csv"}, rel: "STRASSE.csv", other: "imports/stra\u00dfe.csv"},
		{name: "in a subfolder", earlier: []string{"x/y/Report.csv"}, rel: "x/y/report.csv", other: "imports/x/y/Report.csv"},
		{name: "folder", earlier: []string{"Data/a.csv"}, rel: "data/b.csv", other: "imports/Data/"},
		{name: "folder deeper", earlier: []string{"x/Data/a.csv"}, rel: "x/DATA/b/c.csv", other: "imports/x/Data/"},
		{name: "file then folder", earlier: []string{"report"}, rel: "REPORT/x.csv", other: "imports/report"},
		{name: "folder then file", earlier: []string{"report/x.csv"}, rel: "Report", other: "imports/report/"},
		{name: "file in the directory before", onDisk: []string{"A.csv"}, rel: "a.csv", other: "imports/A.csv"},
		{name: "folder in the directory before", onDisk: []string{"Q/z"}, rel: "q/z", other: "imports/Q/"},

		{name: "same key again replaces", earlier: []string{"a.csv", nfd}, rel: "a.csv"},
		{name: "same NFD key again replaces", earlier: []string{nfd}, rel: nfd},
		{name: "same folder again", earlier: []string{"Data/a.csv"}, rel: "Data/b.csv"},
		{name: "different folders", earlier: []string{"x/A.csv"}, rel: "y/a.csv"},
		{name: "different accents", earlier: []string{"a.csv"}, rel: "\u00e1.csv"},
		{name: "compatibility forms stay apart", earlier: []string{"\u2460.csv"}, rel: "1.csv"},
		{name: "full case folding of a ligature", earlier: []string{"\ufb01le.csv"}, rel: "FILE.csv", other: "imports/\ufb01le.csv"},
		{name: "earlier one deleted since", earlier: []string{"A.csv"}, removed: []string{"A.csv"}, rel: "a.csv"},
		{name: "both spellings on disk before: either is re-imported", onDisk: []string{"A.csv", "a.csv"}, rel: "a.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, p := range tt.onDisk {
				full := filepath.Join(root, filepath.FromSlash(p))
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte("earlier"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d := Dir{Root: root, names: newDirNameIndex(1 << 10)}
			for _, rel := range tt.earlier {
				if err := d.Import(context.Background(), File{Key: "imports/" + rel, RelKey: rel}, strings.NewReader("earlier")); err != nil {
					t.Fatalf("earlier %q: %v", rel, err)
				}
			}
			for _, p := range tt.removed {
				if err := os.Remove(filepath.Join(root, p)); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshot(t, root)
			f := File{Key: "imports/" + tt.rel, RelKey: tt.rel}
			body := &countingReader{r: strings.NewReader("new")}
			err := d.Import(context.Background(), f, body)
			if tt.other == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(tt.rel))); err != nil || string(got) != "new" {
					t.Errorf("read back %q, %v", got, err)
				}
				return
			}
			if !IsPermanent(err) || !errors.Is(err, ErrNameCollision) {
				t.Fatalf("err = %v, want a permanent error wrapping ErrNameCollision", err)
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("key %q", f.Key)) || !strings.Contains(msg, fmt.Sprintf("(key %q)", tt.other)) || !strings.Contains(msg, "rename the file in the bucket") {
				t.Errorf("error %q does not name both keys (%q, %q) and what to do", msg, f.Key, tt.other)
			}
			if r := publicReason(err); strings.Contains(r, root) || !strings.Contains(r, fmt.Sprintf("%q", tt.other)) {
				t.Errorf("report reason %q names a local path or not the earlier key", r)
			}
			if body.n != 0 {
				t.Errorf("%d bytes of the body read for a refused key", body.n)
			}
			if after := snapshot(t, root); !maps.Equal(before, after) {
				t.Errorf("the directory changed:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// Workers importing spellings of one name at once into one folder: the
// name's reservation during the write refuses the others, so exactly one
// spelling is written, whatever the timing, and every refusal is a
// collision with it.
func TestDirConcurrentNameCollisions(t *testing.T) {
	root := t.TempDir()
	d := Dir{Root: root, names: newDirNameIndex(1 << 10)}
	spellings := []string{"k.csv", "K.csv", "k.CSV", "K.CSV"}
	const perSpelling = 4
	var wg sync.WaitGroup
	errs := make([]error, len(spellings)*perSpelling)
	for i := range errs {
		wg.Go(func() {
			rel := "in/" + spellings[i%len(spellings)]
			body := &hookReader{r: strings.NewReader(rel), hook: func() error { time.Sleep(20 * time.Millisecond); return nil }}
			errs[i] = d.Import(context.Background(), File{Key: rel, RelKey: rel}, body)
		})
	}
	wg.Wait()
	written := map[string]bool{}
	for i, err := range errs {
		switch {
		case err == nil:
			written[spellings[i%len(spellings)]] = true
		case !errors.Is(err, ErrNameCollision) || !IsPermanent(err):
			t.Errorf("worker %d: %v, want nil or a collision", i, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(root, "in"))
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 1 || len(entries) != 1 || !written[entries[0].Name()] {
		t.Fatalf("written spellings %v, folder holds %v: want one, the same", written, entries)
	}
	for i, err := range errs {
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("(key %q)", "in/"+entries[0].Name())) {
			t.Errorf("worker %d's refusal does not name the written key: %v", i, err)
		}
	}
}

// The names of folders written long ago are dropped to keep the index
// within its budget, and read again when a key needs them: collisions are
// still refused, and the most recent folder is always kept.
func TestDirNameIndexBudget(t *testing.T) {
	root := t.TempDir()
	names := newDirNameIndex(4 * folderWeight)
	d := Dir{Root: root, names: names}
	for i := range 20 {
		rel := fmt.Sprintf("f%02d/A.csv", i)
		if err := d.Import(context.Background(), File{Key: rel, RelKey: rel}, strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
	}
	names.mu.Lock()
	held, total := len(names.dirs), names.total
	names.mu.Unlock()
	if held > 5 || total > 5*folderWeight+5 {
		t.Errorf("index holds %d folders, %d names; want about its budget", held, total)
	}
	err := d.Import(context.Background(), File{Key: "f00/a.csv", RelKey: "f00/a.csv"}, strings.NewReader("x"))
	if !errors.Is(err, ErrNameCollision) {
		t.Errorf("collision in a dropped folder: err = %v, want ErrNameCollision", err)
	}
}

// midReader hands out the first `after` bytes of r, then calls hook once
// before the rest: the import is mid-body, its temp file open and partly
// written.
type midReader struct {
	r     io.Reader
	after int
	hook  func()
	n     int
	done  bool
}

func (m *midReader) Read(p []byte) (int, error) {
	if m.n >= m.after && !m.done {
		m.done = true
		m.hook()
	}
	if !m.done {
		p = p[:min(len(p), m.after-m.n)]
	}
	n, err := m.r.Read(p)
	m.n += n
	return n, err
}

// A folder of the key swapped for a symbolic link to a folder outside the
// import directory while the body is being read (another program racing
// the import; the path checks all passed before): the write, made through
// the folders Import opened as os.Root, never follows the link. The file
// lands inside the directory (in the folder moved away) or the import
// fails, with the transient link error (the link is not a file in the
// key's way: a good file must not go to error/ for it); nothing outside
// changes, and no temp file is left. The outside
// folder has the key's layout, so a write by path through the link would
// succeed there. The same key imported again then meets the link: the
// transient error of TestDirNeverFollowsSymlinks.
func TestDirFolderSwappedForLinkMidBody(t *testing.T) {
	tests := []struct {
		name    string
		dirs    []string // folders under the root before the import
		rel     string
		swapped string // the folder replaced by a link to outside
		// remove deletes the folder instead of moving it aside.
		remove bool
		// landsAt is where the file must be if the import succeeds ("": it
		// must fail).
		landsAt string
	}{
		{name: "folder moved aside", dirs: []string{"sub"}, rel: "sub/x.csv", swapped: "sub", landsAt: "sub.moved/x.csv"},
		{name: "folder created by the import, moved aside", rel: "new/x.csv", swapped: "new", landsAt: "new.moved/x.csv"},
		{name: "top folder of a deep key moved aside", dirs: []string{"a/b"}, rel: "a/b/c.csv", swapped: "a", landsAt: "a.moved/b/c.csv"},
		{name: "folder holding the file, deep, moved aside", dirs: []string{"a/b"}, rel: "a/b/c.csv", swapped: "a/b", landsAt: "a/b.moved/c.csv"},
		{name: "folder removed", dirs: []string{"sub"}, rel: "sub/x.csv", swapped: "sub", remove: true},
		{name: "top folder of a deep key removed", dirs: []string{"a/b"}, rel: "a/b/c.csv", swapped: "a", remove: true},
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB: several writes
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
			for _, d := range append([]string{""}, tt.dirs...) {
				if err := os.MkdirAll(filepath.Join(root, filepath.FromSlash(d)), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// outside mirrors the key's folders below the swapped one.
			below := strings.TrimPrefix(path.Dir(tt.rel), tt.swapped)
			if err := os.MkdirAll(filepath.Join(outside, filepath.FromSlash(below)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("outside"), 0o644); err != nil {
				t.Fatal(err)
			}
			outsideBefore := snapshot(t, outside)

			swapped := filepath.Join(root, filepath.FromSlash(tt.swapped))
			swapErr := make(chan error, 1)
			r := &midReader{r: bytes.NewReader(body), after: len(body) / 3, hook: func() {
				var err error
				if tt.remove {
					err = os.RemoveAll(swapped)
				} else {
					err = os.Rename(swapped, swapped+".moved")
				}
				if err == nil {
					err = os.Symlink(outside, swapped)
				}
				swapErr <- err
			}}
			d := Dir{Root: root, names: newDirNameIndex(1 << 10)}
			f := File{Key: "imports/" + tt.rel, RelKey: tt.rel}
			err := d.Import(context.Background(), f, r)
			if err := <-swapErr; err != nil {
				t.Fatalf("swap: %v", err)
			}

			if after := snapshot(t, outside); !maps.Equal(outsideBefore, after) {
				t.Errorf("the import wrote outside the import directory:\nbefore %q\nafter  %q", outsideBefore, after)
			}
			inside := snapshot(t, root)
			for p := range inside {
				if strings.HasPrefix(filepath.Base(p), ".s3connector-") {
					t.Errorf("temp file left: %s", p)
				}
			}
			switch {
			case err == nil && tt.landsAt == "":
				t.Errorf("import succeeded, want it to fail: its folder was removed (files inside: %q)", slices.Sorted(maps.Keys(inside)))
			case err == nil:
				if got := inside[filepath.FromSlash(tt.landsAt)]; got != string(body) {
					t.Errorf("import succeeded but %s holds %d bytes, want the body's %d (files inside: %q)", tt.landsAt, len(got), len(body), slices.Sorted(maps.Keys(inside)))
				}
			case IsPermanent(err) || !errors.Is(err, ErrSymlinkInImportDir):
				// The link is the operator's problem, not the file's (I4):
				// a permanent error would send a good file to error/.
				t.Errorf("import failed with %v, want the transient error wrapping ErrSymlinkInImportDir", err)
			default:
				t.Logf("import failed (transient): %v", err)
			}

			// The next run of the same key meets the link.
			err = d.Import(context.Background(), f, strings.NewReader("again"))
			if err == nil || IsPermanent(err) || !errors.Is(err, ErrSymlinkInImportDir) {
				t.Errorf("import again = %v, want the transient error wrapping ErrSymlinkInImportDir", err)
			}
			if after := snapshot(t, outside); !maps.Equal(outsideBefore, after) {
				t.Errorf("the second import wrote outside the import directory:\nbefore %q\nafter  %q", outsideBefore, after)
			}
		})
	}
}

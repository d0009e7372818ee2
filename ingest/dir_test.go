package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
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

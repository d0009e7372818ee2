package ingest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

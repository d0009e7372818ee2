package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/s3connector/s3connector/config"
)

// tree lists every entry under root with its content ("/" for a folder,
// "-> target" for a link).
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			got[rel] = "-> " + target
		case d.IsDir():
			got[rel] = "/"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = string(b)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return got
}

// makeTree creates files ("a/b") and folders ("a/") under root.
func makeTree(t *testing.T, root string, entries []string) {
	t.Helper()
	for _, p := range entries {
		full := filepath.Join(root, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte("earlier"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Dir's Precheck refuses, before any body is downloaded, exactly the keys
// Import would refuse for their path (permanent, with the same cause), and
// creates nothing, not even the folders of a key it passes; transient
// trouble (a link) is left to Import.
func TestDirPrecheckAgreesWithImport(t *testing.T) {
	long := strings.Repeat("x", 300) // over NAME_MAX (255)
	// 17 names of 250 bytes: more than PATH_MAX (4096) under any root.
	tooDeep := strings.TrimSuffix(strings.Repeat(strings.Repeat("d", 250)+"/", 17), "/")
	const (
		nfc = "caf\u00e9.csv"
		nfd = "cafe\u0301.csv"
	)
	var noLocalPath = errors.New("no local path")
	tests := []struct {
		name  string
		files []string
		link  string // a symbolic link made at this path, to /tmp
		rel   string
		// want: nil (written); a syscall.Errno, ErrNameCollision or
		// noLocalPath (permanent); ErrSymlinkInImportDir (transient:
		// Precheck does not refuse it, Import does not write it).
		want error
	}{
		{name: "file where a folder must be", files: []string{"a"}, rel: "a/b.csv", want: syscall.ENOTDIR},
		{name: "file deeper up", files: []string{"a/b"}, rel: "a/b/c/d.csv", want: syscall.ENOTDIR},
		{name: "folder where the file must be", files: []string{"a/", "a/x.csv"}, rel: "a", want: syscall.EISDIR},
		{name: "name too long", rel: long + ".csv", want: syscall.ENAMETOOLONG},
		{name: "folder name too long", rel: long + "/b.csv", want: syscall.ENAMETOOLONG},
		{name: "too long below new folders", rel: "new/deeper/" + long, want: syscall.ENAMETOOLONG},
		{name: "too long below an existing folder", files: []string{"old/"}, rel: "old/" + long + "/c", want: syscall.ENAMETOOLONG},
		{name: "path too long", rel: tooDeep + "/f.csv", want: syscall.ENAMETOOLONG},
		{name: "NUL", rel: "a\x00b.csv", want: noLocalPath},
		{name: "escaping", rel: "../outside.csv", want: noLocalPath},
		{name: "escaping deeper", rel: "a/../../outside.csv", want: noLocalPath},
		{name: "absolute", rel: "/etc/passwd", want: noLocalPath},
		{name: "backslash", rel: `a\b.csv`, want: noLocalPath},
		{name: "empty segment", rel: "a//b.csv", want: noLocalPath},
		{name: "case", files: []string{"Report.csv"}, rel: "report.csv", want: ErrNameCollision},
		{name: "NFD after NFC", files: []string{nfc}, rel: nfd, want: ErrNameCollision},
		{name: "folder case", files: []string{"Data/a.csv"}, rel: "data/b.csv", want: ErrNameCollision},
		{name: "folder case deeper", files: []string{"x/Data/a.csv"}, rel: "x/DATA/b/c.csv", want: ErrNameCollision},

		{name: "new file", rel: "a.csv"},
		{name: "new folders", rel: "p/q/r.csv"},
		{name: "longest name allowed", rel: "ok/" + strings.Repeat("y", 255)},
		{name: "same key again", files: []string{"a/b.csv"}, rel: "a/b.csv"},
		{name: "sibling of a file", files: []string{"a/b"}, rel: "a/c"},
		{name: "link on the path", link: "l", rel: "l/x.csv", want: ErrSymlinkInImportDir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			makeTree(t, root, tt.files)
			if tt.link != "" {
				if err := os.Symlink(os.TempDir(), filepath.Join(root, tt.link)); err != nil {
					t.Fatal(err)
				}
			}
			d := Dir{Root: root, names: newDirNameIndex(1 << 10)}
			f := File{Key: "imports/" + tt.rel, RelKey: tt.rel}
			before := tree(t, root)
			err := d.Precheck(context.Background(), f)
			if after := tree(t, root); !maps.Equal(before, after) {
				t.Errorf("Precheck changed the directory:\nbefore %q\nafter  %q", before, after)
			}
			permanent := tt.want != nil && !errors.Is(tt.want, ErrSymlinkInImportDir)
			switch {
			case !permanent && IsPermanent(err):
				t.Fatalf("Precheck refused a key Import may write: %v", err)
			case permanent && !IsPermanent(err):
				t.Fatalf("Precheck = %v, want a permanent error", err)
			case tt.want == noLocalPath && publicReason(err) != reasonNoLocalPath:
				t.Errorf("Precheck's report reason = %q", publicReason(err))
			case permanent && tt.want != noLocalPath && !errors.Is(err, tt.want):
				t.Errorf("Precheck = %v, want it to wrap %v", err, tt.want)
			}
			if r := publicReason(err); err != nil && strings.Contains(r, root) {
				t.Errorf("report reason %q names a local path", r)
			}

			// Import, asked next, agrees.
			ierr := d.Import(context.Background(), f, strings.NewReader("new"))
			switch {
			case tt.want == nil && ierr != nil:
				t.Fatalf("Import of a key Precheck passed: %v", ierr)
			case permanent && (!IsPermanent(ierr) || publicReason(ierr) != publicReason(err)):
				t.Errorf("Import = %v, Precheck = %v: not the same refusal", ierr, err)
			case !permanent && tt.want != nil && !errors.Is(ierr, tt.want):
				t.Errorf("Import = %v, want %v", ierr, tt.want)
			}
		})
	}
}

// Precheck never creates the import directory, which Import does.
func TestDirPrecheckMissingRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "not", "yet")
	if err := (Dir{Root: root}).Precheck(context.Background(), File{Key: "in/a/b.csv", RelKey: "a/b.csv"}); err != nil {
		t.Fatalf("Precheck = %v, want nil", err)
	}
	if _, err := os.Lstat(filepath.Dir(root)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Precheck created %s (%v)", filepath.Dir(root), err)
	}
}

// A key the dir importer cannot write is decided before its body is
// downloaded: sent to error/ with the report Import's refusal has, with no
// GetObject for it (a HEAD reads what the move keeps), also for a file
// above the parallel download threshold, whose ranges would otherwise be
// fetched in the background. The proxy records every request.
func TestRunPrecheckRefusesUnwritableKeysUnread(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	// A root deep enough that one key makes the path longer than PATH_MAX
	// (MinIO refuses keys with a name over 255 bytes or a NUL; the unit
	// test above has those).
	root := t.TempDir()
	for range 14 {
		root = filepath.Join(root, strings.Repeat("r", 250))
	}
	makeTree(t, root, []string{"clash", "folder/x.csv", "Report.csv", "caf\u00e9.csv"})
	before := tree(t, root)
	const threshold = 64 << 10
	refused := map[string]string{
		"clash/x.csv":    reasonFileFolderClash,
		"clash/big.bin":  reasonFileFolderClash, // above the parallel threshold
		"folder":         reasonFileFolderClash,
		`a\b.csv`:        reasonNoLocalPath,
		"report.csv":     "differs from \"in/Report.csv\"",
		"cafe\u0301.csv": "differs from \"in/caf\u00e9.csv\"",
		strings.Repeat("y", 250) + "/" + strings.Repeat("z", 250) + "/" + strings.Repeat("w", 200) + ".csv": reasonNameTooLong,
	}
	for rel := range refused {
		n := 1 << 10
		if strings.HasSuffix(rel, ".bin") {
			n = 4 * threshold
		}
		put(t, srv, bucket, "in/"+rel, randomBody(n))
	}
	put(t, srv, bucket, "in/good.csv", randomBody(1<<10))
	put(t, srv, bucket, "in/new/good.bin", randomBody(4*threshold))

	p := srv.NewProxy(t)
	conn := testConnection(t, srv, bucket, "in/", p.URL, nil)
	r, err := NewRunner(conn, Options{Importer: Dir{Root: root}, ParallelDownloadThreshold: threshold, DownloadPartSize: threshold / 2, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Run(t.Context())
	if s.Archived != 2 || s.Errored != len(refused) || !s.OK() {
		t.Fatalf("summary %+v, want the 2 good files archived and %d in error/", s, len(refused))
	}
	gets := map[string]int{}
	for _, q := range p.Requests() {
		if q.Method == http.MethodGet {
			gets[strings.TrimPrefix(q.Path, "/"+bucket+"/")]++
		}
	}
	for rel := range refused {
		if n := gets["in/"+rel]; n != 0 {
			t.Errorf("%d GetObject requests for %q, which the importer cannot write", n, rel)
		}
	}
	if gets["in/good.csv"] != 1 || gets["in/new/good.bin"] < 2 {
		t.Errorf("GETs of the good files: %v (the proxy should see them)", gets)
	}
	text := bucketText(t, srv, bucket, "in/error/")
	if n := strings.Count(text, `"reason_code": "rejected"`); n != len(refused) {
		t.Errorf("%d rejected reports in error/, want %d:\n%s", n, len(refused), text)
	}
	for rel, why := range refused {
		quoted, _ := json.Marshal(why) // as the report has it
		if !strings.Contains(text, strings.Trim(string(quoted), `"`)) {
			t.Errorf("no report for %q saying %q", rel, why)
		}
	}
	if strings.Contains(text, root) {
		t.Error("a report names the import directory")
	}
	after := tree(t, root)
	delete(after, "good.csv")
	delete(after, "new")
	delete(after, filepath.Join("new", "good.bin"))
	if !maps.Equal(before, after) {
		t.Errorf("refused keys changed the import directory:\nbefore %q\nafter  %q", before, after)
	}
}

// An importer's precheck that panics is the importer's crash on that
// file (importer_crashed), decided unread as a refusal is.
func TestRunPrecheckPanicIsTheImportersCrash(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "in/boom.csv", []byte("boom"))
	put(t, srv, bucket, "in/fine.csv", []byte("fine"))
	imp := &precheckImporter{precheck: func(f File) error {
		if strings.HasSuffix(f.Key, "boom.csv") {
			panic("precheck bug")
		}
		return nil
	}}
	r, err := NewRunner(testConnection(t, srv, bucket, "in/", "", func(c *config.Connection) { c.Workers = 1 }), Options{Importer: imp})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Run(t.Context())
	if s.Archived != 1 || s.Errored != 1 || !s.OK() {
		t.Fatalf("summary %+v, want fine.csv archived and boom.csv in error/", s)
	}
	if imp.imported["in/boom.csv"] != 0 || imp.imported["in/fine.csv"] != 1 {
		t.Error("boom.csv was imported")
	}
	if !strings.Contains(bucketText(t, srv, bucket, "in/error/"), `"reason_code": "importer_crashed"`) {
		t.Error("no importer_crashed report in error/")
	}
}

// precheckImporter is a Prechecker that counts its imports.
type precheckImporter struct {
	precheck func(File) error
	mu       sync.Mutex
	imported map[string]int
}

func (p *precheckImporter) Precheck(_ context.Context, f File) error { return p.precheck(f) }

func (p *precheckImporter) Import(_ context.Context, f File, body io.Reader) error {
	if _, err := io.Copy(io.Discard, body); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.imported == nil {
		p.imported = map[string]int{}
	}
	p.imported[f.Key]++
	return nil
}

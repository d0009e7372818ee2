package ingest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Any two keys imported by the dir importer: nothing is ever written
// outside its directory, a key it accepts is where the key says with its
// body, and two accepted keys never overwrite each other (case-only and
// Unicode-normalisation variants are refused, not merged).
func FuzzDirKeys(f *testing.F) {
	// A key of exactly S3's 1,024-byte limit, in names of 255 bytes.
	limit := strings.Repeat("a", 255) + "/" + strings.Repeat("b", 255) + "/" + strings.Repeat("c", 255) + "/" + strings.Repeat("d", 250) + "/x.csv"
	for _, k := range [][2]string{
		{limit, strings.ToUpper(limit)},
		{limit, limit[:len(limit)-len("x.csv")] + "y.csv"}, // a sibling, also 1,024 bytes
		{"a.csv", "A.csv"},
		{"caf\u00e9.csv", "cafe\u0301.csv"},
		{"../escape", "a/../../b"},
		{"/abs/path", "a\x00b"},
		{strings.Repeat("n", 300), strings.Repeat("d/", 300) + "f"},
		{"a", "a/b"},
		{"dir/x", "DIR/y"},
		{"stra\u00dfe", "strasse"},
	} {
		f.Add(k[0], k[1])
	}
	f.Fuzz(func(t *testing.T, k1, k2 string) {
		parent := t.TempDir()
		root := filepath.Join(parent, "root")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		d := Dir{Root: root, names: newDirNameIndex(1 << 10)}
		accepted := map[string][]byte{}
		for i, k := range []string{k1, k2} {
			body := []byte{byte('A' + i), '\n'}
			f := File{Bucket: "b", Key: "in/" + k, RelKey: k, Size: int64(len(body)), ETag: `"e"`}
			if err := d.Import(context.Background(), f, bytes.NewReader(body)); err == nil {
				accepted[k] = body
			}
		}
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != "root" {
			t.Fatalf("keys %q, %q wrote outside the import directory: %v", k1, k2, entries)
		}
		for k, body := range accepted {
			got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(k)))
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("accepted key %q holds %q (%v), want %q (keys %q, %q)", k, got, err, body, k1, k2)
			}
		}
	})
}

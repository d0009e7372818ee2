package archive

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Archive names for any key, version and time: within S3's limit (with
// room for the report in error/), under the connection's folder, valid
// UTF-8 for a valid key, the same for the same version and different for
// another ETag.
func FuzzDestKey(f *testing.F) {
	f.Add("imports/", "orders/2026-11.csv", `"9a0364b9e99bb480dd25e1f0284c8555"`, "", int64(1764000000123456789))
	f.Add("", "a", `"x"`, "null", int64(0))
	f.Add("in/", strings.Repeat("d/", 505)+"f.csv", `"e"`, "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", int64(-1))
	f.Add("in/", strings.Repeat("é", 500)+".csv", `"e"`, "", int64(42))
	f.Add("b/", "..", "", "", int64(1))
	f.Fuzz(func(t *testing.T, base, rel, etag, versionID string, nanos int64) {
		if len(base) > 200 || (base != "" && !strings.HasSuffix(base, "/")) || len(base)+len(rel) > MaxKeyLength || rel == "" {
			t.Skip() // not a key a connection can list
		}
		v := Version{ID: versionID, ETag: etag, Modified: time.Unix(0, nanos)}
		for _, folder := range []Folder{Archive, Error} {
			k := DestKey(base, folder, rel, v)
			if len(k) > MaxDestLength(folder) {
				t.Fatalf("%s: %d bytes, limit %d: %q", folder, len(k), MaxDestLength(folder), k)
			}
			if folder == Error && len(ReportKey(k)) > MaxKeyLength {
				t.Fatalf("report key of %d bytes", len(ReportKey(k)))
			}
			if !strings.HasPrefix(k, base+string(folder)) {
				t.Fatalf("%q is not under %q", k, base+string(folder))
			}
			if utf8.ValidString(base+rel) && !utf8.ValidString(k) {
				t.Fatalf("invalid UTF-8 from a valid key: %q", k)
			}
			if again := DestKey(base, folder, rel, v); again != k {
				t.Fatalf("not a function of the version: %q then %q", k, again)
			}
			other := v
			other.ETag += "x"
			if !v.Versioned() && DestKey(base, folder, rel, other) == k {
				t.Fatalf("another ETag gets the same name %q", k)
			}
		}
	})
}

package archive

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The ETag and time of the fixtures; tagOf* are their version tags, kept
// literally: a change of the derivation would rename the copies of moves
// already under way when the daemon is upgraded.
var (
	fixtureAt      = time.Date(2026, 11, 22, 10, 49, 10, 123, time.FixedZone("AEDT", 11*3600))
	fixtureVersion = Version{ETag: `"9a0364b9e99bb480dd25e1f0284c8555"`, Modified: fixtureAt}
)

const tagOfFixture = "ddbfbfc8ce90"

func TestDestKey(t *testing.T) {
	v := fixtureVersion
	for _, tc := range []struct{ base, rel, want string }{
		{"imports/", "orders/2026-11.csv", "imports/archive/orders/2026-11.20261121T234910Z-" + tagOfFixture + ".csv"},
		{"", "a.csv", "archive/a.20261121T234910Z-" + tagOfFixture + ".csv"},
		{"", "data.tar.gz", "archive/data.tar.20261121T234910Z-" + tagOfFixture + ".gz"},
		{"", "README", "archive/README.20261121T234910Z-" + tagOfFixture},
		{"", ".hidden", "archive/.hidden.20261121T234910Z-" + tagOfFixture},
		{"", "trailing.", "archive/trailing..20261121T234910Z-" + tagOfFixture},
		{"in/", "dir with space/a+b été.csv", "in/archive/dir with space/a+b été.20261121T234910Z-" + tagOfFixture + ".csv"},
		{"in/", "dir.v2/file", "in/archive/dir.v2/file.20261121T234910Z-" + tagOfFixture},
	} {
		if got := DestKey(tc.base, Archive, tc.rel, v); got != tc.want {
			t.Errorf("DestKey(%q, %q) = %q, want %q", tc.base, tc.rel, got, tc.want)
		}
	}
	if got, want := DestKey("in/", Error, "x.json", v), "in/error/x.20261121T234910Z-"+tagOfFixture+".json"; got != want {
		t.Errorf("error folder: got %q, want %q", got, want)
	}
	if got, want := ReportKey("in/error/x.json"), "in/error/x.json.error.json"; got != want {
		t.Errorf("ReportKey = %q, want %q", got, want)
	}
}

// The name is a function of the source version alone: the same version
// always gets the same name (a retried move cannot archive it twice),
// another version of the same key gets another (I2).
func TestDestKeyIsAFunctionOfTheVersion(t *testing.T) {
	v := fixtureVersion
	name := func(v Version) string { return DestKey("in/", Archive, "f.csv", v) }
	same := []Version{
		v,
		{ETag: strings.Trim(v.ETag, `"`), Modified: v.Modified},          // quotes do not matter
		{ETag: v.ETag, Modified: v.Modified.UTC()},                       // nor the time zone
		{ID: "null", ETag: v.ETag, Modified: v.Modified},                 // "null" is no version of its own
		{ID: "", ETag: v.ETag, Modified: v.Modified.Add(0).In(time.UTC)}, // nor the location pointer
	}
	for _, s := range same {
		if got := name(s); got != name(v) {
			t.Errorf("%+v named %q, want %q as for %+v", s, got, name(v), v)
		}
	}
	other := []Version{
		{ETag: `"another"`, Modified: v.Modified},                                     // new content
		{ETag: v.ETag, Modified: v.Modified.Add(time.Millisecond)},                    // same content, uploaded again
		{ID: "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", ETag: v.ETag, Modified: v.Modified}, // a real version
		{ID: "Vb0oTJ6ItUdThDwIGyx8sHnfUC2eB0Mp", ETag: v.ETag, Modified: v.Modified},  // another one
	}
	seen := map[string]Version{name(v): v}
	for _, o := range other {
		n := name(o)
		if prev, dup := seen[n]; dup {
			t.Errorf("%+v and %+v share the name %q", o, prev, n)
		}
		seen[n] = o
	}
	if (Version{ID: "null"}).Versioned() || (Version{}).Versioned() || !(Version{ID: "v1"}).Versioned() {
		t.Error("Versioned: only a version id other than \"null\" is a version of its own")
	}
}

func TestDestKeyLongNamesStayWithinLimitAndUnique(t *testing.T) {
	v := Version{ETag: `"e"`, Modified: time.Date(2026, 11, 22, 10, 49, 10, 0, time.UTC)}
	suffix := ".20261122T104910Z-" + v.tag() + ".csv"
	base := "base/"
	// Two source keys of S3's maximum length that share their first 1,000
	// bytes (multi-byte runes so truncation must respect UTF-8).
	common := strings.Repeat("é", 500)
	rel1 := common + strings.Repeat("a", 1024-len(base)-len(common)-4) + ".csv"
	rel2 := common + strings.Repeat("b", 1024-len(base)-len(common)-4) + ".csv"
	k1 := DestKey(base, Archive, rel1, v)
	k2 := DestKey(base, Archive, rel2, v)
	for _, k := range []string{k1, k2} {
		if len(k) > MaxKeyLength {
			t.Errorf("key of %d bytes exceeds %d", len(k), MaxKeyLength)
		}
		if !utf8.ValidString(k) {
			t.Errorf("key is not valid UTF-8: %q", k)
		}
		if !strings.HasPrefix(k, base+"archive/") || !strings.HasSuffix(k, suffix) {
			t.Errorf("key lost its folder or suffix: %q", k)
		}
	}
	if k1 == k2 {
		t.Fatalf("truncated names collide: %q", k1)
	}
	// In error/ the report's name must fit too, for every length of name
	// around the limit.
	for n := 990; n <= 1024-len(base); n++ {
		rel := strings.Repeat("x", n-4) + ".csv"
		k := DestKey(base, Error, rel, v)
		if len(ReportKey(k)) > MaxKeyLength {
			t.Fatalf("relative key of %d bytes: report key of %d bytes exceeds %d", n, len(ReportKey(k)), MaxKeyLength)
		}
	}
}

func TestCopySource(t *testing.T) {
	for key, want := range map[string]string{
		"in/a.csv":             "b/in/a.csv",
		"in/dir with space/x":  "b/in/dir%20with%20space/x",
		"in/a+b.csv":           "b/in/a%2Bb.csv",
		"in/données/été.csv":   "b/in/donn%C3%A9es/%C3%A9t%C3%A9.csv",
		"in/q?x=1#frag%20.csv": "b/in/q%3Fx=1%23frag%2520.csv",
	} {
		if got := CopySource("b", key); got != want {
			t.Errorf("CopySource(%q) = %q, want %q", key, got, want)
		}
	}
}

// Folders so deep that no name fits under them: the copy goes to ~long/,
// within the limit, one name per source key and version.
func TestDestKeyDeepFolders(t *testing.T) {
	v := Version{ETag: `"e"`, Modified: time.Date(2026, 11, 22, 10, 49, 10, 0, time.UTC)}
	base := "base/"
	deep := func(leaf string) string { return strings.Repeat("d/", 505) + leaf }
	for _, folder := range []Folder{Archive, Error} {
		k1, k2 := DestKey(base, folder, deep("f.csv"), v), DestKey(base, folder, deep("g.csv"), v)
		for _, k := range []string{k1, k2} {
			if len(k) > MaxDestLength(folder) {
				t.Errorf("%s: key of %d bytes exceeds %d", folder, len(k), MaxDestLength(folder))
			}
			if !strings.HasPrefix(k, base+string(folder)+LongFolder) || !strings.HasSuffix(k, ".csv") {
				t.Errorf("%s: deep key named %q, want it under %s keeping .csv", folder, k, LongFolder)
			}
		}
		if k1 == k2 {
			t.Errorf("%s: two deep keys share %q", folder, k1)
		}
		if again := DestKey(base, folder, deep("f.csv"), v); again != k1 {
			t.Errorf("%s: same version named %q, then %q", folder, k1, again)
		}
	}
}

func TestCopySourcePinsRealVersionsOnly(t *testing.T) {
	for _, tc := range []struct{ version, want string }{
		{"", "b/in/a+b.csv"},
		{"null", "b/in/a+b.csv"},
		{"3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY", "b/in/a+b.csv?versionId=3HL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY"},
	} {
		got := copySource(Source{Bucket: "b", Key: "in/a+b.csv", VersionID: tc.version})
		if want := strings.Replace(tc.want, "a+b", "a%2Bb", 1); got != want {
			t.Errorf("version %q: copy source %q, want %q", tc.version, got, want)
		}
	}
}

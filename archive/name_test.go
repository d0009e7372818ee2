package archive

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestDestKey(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 49, 10, 123, time.FixedZone("AEDT", 11*3600))
	const run = "3f9a1c0b7d2e"
	for _, tc := range []struct{ base, rel, want string }{
		{"imports/", "orders/2026-11.csv", "imports/archive/orders/2026-11.20261121T234910Z-3f9a1c0b7d2e.csv"},
		{"", "a.csv", "archive/a.20261121T234910Z-3f9a1c0b7d2e.csv"},
		{"", "data.tar.gz", "archive/data.tar.20261121T234910Z-3f9a1c0b7d2e.gz"},
		{"", "README", "archive/README.20261121T234910Z-3f9a1c0b7d2e"},
		{"", ".hidden", "archive/.hidden.20261121T234910Z-3f9a1c0b7d2e"},
		{"", "trailing.", "archive/trailing..20261121T234910Z-3f9a1c0b7d2e"},
		{"in/", "dir with space/a+b été.csv", "in/archive/dir with space/a+b été.20261121T234910Z-3f9a1c0b7d2e.csv"},
		{"in/", "dir.v2/file", "in/archive/dir.v2/file.20261121T234910Z-3f9a1c0b7d2e"},
	} {
		if got := DestKey(tc.base, Archive, tc.rel, at, run); got != tc.want {
			t.Errorf("DestKey(%q, %q) = %q, want %q", tc.base, tc.rel, got, tc.want)
		}
	}
	if got, want := DestKey("in/", Error, "x.json", at, run), "in/error/x.20261121T234910Z-3f9a1c0b7d2e.json"; got != want {
		t.Errorf("error folder: got %q, want %q", got, want)
	}
	if got, want := ReportKey("in/error/x.json"), "in/error/x.json.error.json"; got != want {
		t.Errorf("ReportKey = %q, want %q", got, want)
	}
}

func TestDestKeyDiffersPerRunAndTime(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 49, 10, 0, time.UTC)
	a := DestKey("", Archive, "f.csv", at, "aaaaaaaaaaaa")
	b := DestKey("", Archive, "f.csv", at, "bbbbbbbbbbbb")
	c := DestKey("", Archive, "f.csv", at.Add(time.Second), "aaaaaaaaaaaa")
	if a == b || a == c || b == c {
		t.Fatalf("names collide: %q %q %q", a, b, c)
	}
}

func TestDestKeyLongNamesStayWithinLimitAndUnique(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 49, 10, 0, time.UTC)
	base := "base/"
	// Two source keys of S3's maximum length that share their first 1,000
	// bytes (multi-byte runes so truncation must respect UTF-8).
	common := strings.Repeat("é", 500)
	rel1 := common + strings.Repeat("a", 1024-len(base)-len(common)-4) + ".csv"
	rel2 := common + strings.Repeat("b", 1024-len(base)-len(common)-4) + ".csv"
	k1 := DestKey(base, Archive, rel1, at, "run000000001")
	k2 := DestKey(base, Archive, rel2, at, "run000000001")
	for _, k := range []string{k1, k2} {
		if len(k) > MaxKeyLength {
			t.Errorf("key of %d bytes exceeds %d", len(k), MaxKeyLength)
		}
		if !utf8.ValidString(k) {
			t.Errorf("key is not valid UTF-8: %q", k)
		}
		if !strings.HasPrefix(k, base+"archive/") || !strings.HasSuffix(k, ".20261122T104910Z-run000000001.csv") {
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
		k := DestKey(base, Error, rel, at, "run000000001")
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

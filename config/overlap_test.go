package config

import (
	"strings"
	"testing"
)

func TestBasePathOverlap(t *testing.T) {
	tests := []struct {
		p, q string
		want string // "" for no overlap
	}{
		{"a/", "a/", `"a/" is also x's base path`},
		{"", "", `"" (the whole bucket) is also x's base path`},
		{"a/b/", "a/", `"a/b/" is inside x's base path "a/"`},
		{"a/", "a/b/", `"a/" contains x's base path "a/b/"`},
		{"a/", "", `"a/" is inside x's base path "" (the whole bucket)`},
		{"", "a/", `"" (the whole bucket) contains x's base path "a/"`},
		{"a/", "ab/", ""},
		{"ab/", "a/", ""},
		{"a/b/", "a/c/", ""},
		{"A/", "a/", ""}, // S3 keys are case-sensitive
	}
	for _, tt := range tests {
		t.Run(tt.p+"|"+tt.q, func(t *testing.T) {
			got, ok := basePathOverlap(tt.p, tt.q, "x")
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("basePathOverlap(%q, %q) = %q, %v; want %q", tt.p, tt.q, got, ok, tt.want)
			}
		})
	}
}

func TestDirOverlap(t *testing.T) {
	tests := []struct {
		p, q string
		want string // "" for no overlap
	}{
		{"/srv/a", "/srv/a", `"/srv/a" is also x's import directory`},
		{"/srv/a/", "/srv//a", `"/srv/a/" is also x's import directory`},
		{"/srv/a/b", "/srv/a", `"/srv/a/b" is inside x's import directory "/srv/a"`},
		{"/srv/a", "/srv/a/b", `"/srv/a" contains x's import directory "/srv/a/b"`},
		{"/srv/x/../a/b", "/srv/a", `"/srv/x/../a/b" is inside x's import directory "/srv/a"`},
		{"/", "/srv", `"/" contains x's import directory "/srv"`},
		{"/srv", "/", `"/srv" is inside x's import directory "/"`},
		{"/srv/ab", "/srv/a", ""},
		{"/srv/a", "/srv/ab", ""},
		{"/srv/a-b", "/srv/a", ""},
	}
	for _, tt := range tests {
		t.Run(tt.p+"|"+tt.q, func(t *testing.T) {
			got, ok := dirOverlap(tt.p, tt.q, "x")
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("dirOverlap(%q, %q) = %q, %v; want %q", tt.p, tt.q, got, ok, tt.want)
			}
		})
	}
}

// TestValidateOverlaps checks which connections are compared: invalid
// buckets, base paths and importer paths are left to their own problems,
// every status counts, and each connection is reported once.
func TestValidateOverlaps(t *testing.T) {
	conn := func(name, bucket, basePath string, status Status, dir string) Connection {
		c := Connection{Name: name, Bucket: bucket, BasePath: basePath, Status: status}
		if dir != "" {
			c.Importer = Importer{Type: ImporterDir, Path: dir}
		}
		return c
	}
	tests := []struct {
		name  string
		conns []Connection
		want  []string
	}{
		{
			name:  "distinct",
			conns: []Connection{conn("a", "bkt-1", "in/", StatusActive, "/srv/a"), conn("b", "bkt-1", "out/", StatusActive, "/srv/b"), conn("c", "bkt-2", "in/", StatusActive, "")},
		},
		{
			name:  "drafts and disabled connections count",
			conns: []Connection{conn("a", "bkt-1", "", StatusDraft, ""), conn("b", "bkt-1", "in/", StatusDisabled, "")},
			want:  []string{`connections[1].base_path: "in/" is inside connections[0] ("a")'s base path "" (the whole bucket)`},
		},
		{
			name:  "unnormalised base paths",
			conns: []Connection{conn("a", "bkt-1", "in", StatusActive, ""), conn("b", "bkt-1", "in/x", StatusActive, "")},
			want:  []string{`connections[1].base_path: "in/x/" is inside connections[0] ("a")'s base path "in/"`},
		},
		{
			name:  "reported once, against the first",
			conns: []Connection{conn("a", "bkt-1", "in/", StatusActive, "/srv/a"), conn("", "bkt-1", "in/", StatusActive, "/srv/a"), conn("c", "bkt-1", "in/", StatusActive, "/srv/a/c")},
			want: []string{
				`connections[1].base_path: "in/" is also connections[0] ("a")'s base path`,
				`connections[1].importer.path: "/srv/a" is also connections[0] ("a")'s import directory`,
				`connections[2].base_path: "in/" is also connections[0] ("a")'s base path`,
				`connections[2].importer.path: "/srv/a/c" is inside connections[0] ("a")'s import directory "/srv/a"`,
			},
		},
		{
			name:  "an unnamed connection is named by its index",
			conns: []Connection{conn("", "bkt-1", "in/", StatusActive, ""), conn("b", "bkt-1", "in/", StatusActive, "")},
			want:  []string{`connections[1].base_path: "in/" is also connections[0]'s base path`},
		},
		{
			name: "invalid values are not compared",
			conns: []Connection{
				conn("a", "BKT-1", "", StatusActive, "relative"),
				conn("b", "BKT-1", "", StatusActive, "relative"),
				conn("c", "bkt-1", "in/*", StatusActive, ""),
				conn("d", "bkt-1", "in/", StatusActive, ""),
			},
		},
		{
			name:  "other importer types have no directory",
			conns: []Connection{{Name: "a", Bucket: "bkt-1", Importer: Importer{Type: ImporterHTTP, Path: "/srv"}}, {Name: "b", Bucket: "bkt-2", Importer: Importer{Type: ImporterDir, Path: "/srv"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p problems
			(&Config{Connections: tt.conns}).validateOverlaps(&p)
			if len(p) != len(tt.want) {
				t.Fatalf("problems =\n%s\nwant\n%s", strings.Join(p, "\n"), strings.Join(tt.want, "\n"))
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(p[i], want) {
					t.Errorf("problem %d = %q, want it to start with %q", i, p[i], want)
				}
			}
		})
	}
}

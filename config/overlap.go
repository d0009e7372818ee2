package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// validateOverlaps reports connections that would share objects or files:
// two connections in one bucket whose base paths are equal or nested (one
// would ingest the other's inbox, archive/ and error/ folders), and two dir
// importers whose directories are equal or nested. Each connection is
// reported once, against the first earlier connection it overlaps, under
// its own field path. Every status counts: a draft or disabled connection
// is one edit away from running. Connections whose own values are invalid
// are left to their own problems.
func (c *Config) validateOverlaps(p *problems) {
	for j := range c.Connections {
		b := &c.Connections[j]
		path := fmt.Sprintf("connections[%d]", j)
		if basePathComparable(b) {
			for i := range j {
				a := &c.Connections[i]
				if !basePathComparable(a) || a.Bucket != b.Bucket {
					continue
				}
				if msg, ok := basePathOverlap(NormalizeBasePath(b.BasePath), NormalizeBasePath(a.BasePath), label(i, a)); ok {
					p.addf(path+".base_path", "%s; one connection would ingest the other's inbox, archive/ and error/ folders", msg)
					break
				}
			}
		}
		if dirComparable(b) {
			for i := range j {
				a := &c.Connections[i]
				if !dirComparable(a) {
					continue
				}
				if msg, ok := dirOverlap(b.Importer.Path, a.Importer.Path, label(i, a)); ok {
					p.addf(path+".importer.path", "%s; the two connections' files would mix and overwrite each other", msg)
					break
				}
			}
		}
	}
}

// label names a connection in a message: connections[0] ("acme").
func label(i int, c *Connection) string {
	if c.Name == "" {
		return fmt.Sprintf("connections[%d]", i)
	}
	return fmt.Sprintf("connections[%d] (%q)", i, c.Name)
}

func basePathComparable(c *Connection) bool {
	return ValidateBucket(c.Bucket) == nil && ValidateBasePath(c.BasePath) == nil
}

func dirComparable(c *Connection) bool {
	return c.Importer.Type == ImporterDir && filepath.IsAbs(c.Importer.Path)
}

// basePathOverlap compares the normalised base path p of one connection
// with the base path q of the connection other in the same bucket. Both end
// with "/" or are empty (the whole bucket), so a plain prefix test follows
// folder boundaries: "a/" nests "a/b/" but not "ab/".
func basePathOverlap(p, q, other string) (string, bool) {
	switch {
	case p == q:
		return fmt.Sprintf("%s is also %s's base path", showBasePath(p), other), true
	case strings.HasPrefix(p, q):
		return fmt.Sprintf("%s is inside %s's base path %s", showBasePath(p), other, showBasePath(q)), true
	case strings.HasPrefix(q, p):
		return fmt.Sprintf("%s contains %s's base path %s", showBasePath(p), other, showBasePath(q)), true
	}
	return "", false
}

func showBasePath(p string) string {
	if p == "" {
		return `"" (the whole bucket)`
	}
	return fmt.Sprintf("%q", p)
}

// dirOverlap compares the dir importer directory p of one connection with
// the directory q of the connection other, after filepath.Clean, on path
// segment boundaries: "/data/a" nests "/data/a/b" but not "/data/ab".
func dirOverlap(p, q, other string) (string, bool) {
	cp, cq := filepath.Clean(p), filepath.Clean(q)
	switch {
	case cp == cq:
		return fmt.Sprintf("%q is also %s's import directory", p, other), true
	case inDir(cp, cq):
		return fmt.Sprintf("%q is inside %s's import directory %q", p, other, q), true
	case inDir(cq, cp):
		return fmt.Sprintf("%q contains %s's import directory %q", p, other, q), true
	}
	return "", false
}

// inDir reports whether the clean path p is strictly below the clean
// directory dir.
func inDir(p, dir string) bool {
	if !strings.HasSuffix(dir, string(os.PathSeparator)) { // only the root ends with one
		dir += string(os.PathSeparator)
	}
	return strings.HasPrefix(p, dir) && len(p) > len(dir)
}

package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fieldPath is a field's path as Validate and the decoding pass (see
// expandEnv) write it: connections[0].download.part_size, principal_arn,
// importer.env["X"], or under a key no field takes, the key as written
// (x-defaults, ["my key"]).
const fieldPath = `(?:[A-Za-z_][A-Za-z0-9_]*|\["(?:[^"\\]|\\.)*"\])(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\]|\["(?:[^"\\]|\\.)*"\])*`

// namesItsField is how every configuration problem starts: the field's
// path, after the line for a problem found while decoding the file.
var namesItsField = regexp.MustCompile(`^(line \d+: )?` + fieldPath + `: `)

// noField are the only problems that name no field path, each for a reason:
//   - an unknown key is named as written, with where it is (the strict pass
//     in load.go, which reads the file before its structure is known);
//   - a top-level key that is not a string has no name;
//   - a second document, and a document that is not a mapping, are about
//     the file as a whole.
var noField = regexp.MustCompile(`(?s)^line \d+: (unknown key "|at the top level: |a second YAML document; |cannot unmarshal [^ ]+ .*into config\.Config$|environment variable \w+ is not set, used in a document that is not a mapping$)`)

// Any file: Parse never panics, and every problem it reports names its
// field (a line alone is not enough: a field's value may span lines, and
// the same line may hold several fields).
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../testdata/config/*.yaml")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("principal_arn: ${UNSET}\nconnections: [{name: a, bucket: ${B}}]\n"))
	f.Add([]byte("connections:\n  - name: a\n    base_path: \"/x/../*\"\n    max_file_size: 5XB\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := parse(data, func(name string) (string, bool) {
			if name == "B" {
				return "bucket-from-env", true
			}
			return "", false
		})
		var ve *ValidationError
		if err == nil || !errors.As(err, &ve) {
			return // valid, or the YAML parser's own syntax error
		}
		for _, p := range ve.Problems {
			if !namesItsField.MatchString(p) && !noField.MatchString(p) {
				t.Fatalf("problem does not name its field: %q\n(all: %s)", p, strings.Join(ve.Problems, " | "))
			}
		}
	})
}

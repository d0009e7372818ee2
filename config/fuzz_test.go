package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// wherePrefix is how every configuration problem starts: the field's path
// (connections[0].base_path, principal_arn, importer.env["X"], ...) or the
// line of the file it is on.
var wherePrefix = regexp.MustCompile(`^(line \d+: |[a-z_]+(\[\d+\])?(\.[a-z_]+(\[\d+\]|\["[^"]*"\])?)*: )`)

// Any file: Parse never panics, and every problem it reports names its
// field or its line.
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
			if !wherePrefix.MatchString(p) {
				t.Fatalf("problem does not name its field or line: %q\n(all: %s)", p, strings.Join(ve.Problems, " | "))
			}
		}
	})
}

package config

import (
	"errors"
	"strings"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{"0", 0, false},
		{"1048576", 1 << 20, false},
		{"512MiB", 512 << 20, false},
		{"5GB", 5e9, false},
		{"1.5GiB", 3 << 29, false},
		{" 10 KiB ", 10 << 10, false},
		{"7B", 7, false},
		{"-1", 0, true},
		{"ten", 0, true},
		{"5XB", 0, true},
		{"NaN", 0, true},
		{"1e30TB", 0, true},
	} {
		got, err := ParseByteSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if s := ByteSize(512 << 20).String(); s != "512MiB" {
		t.Errorf("String() = %q", s)
	}
}

// A value that is not a size is reported with its line and field, like any
// problem of decoding, and together with the file's other problems (it
// used to stop decoding, naming only the line); a value from the
// environment is shown as its reference.
func TestSizeProblemsNameTheirField(t *testing.T) {
	const conn = "connections:\n  - name: a\n"
	tests := []struct {
		name     string
		yaml     string
		problems []string // the whole list, in order
	}{
		{
			name: "every size field",
			yaml: conn + "    max_file_size: 5XB\n    download: {part_size: lots, parallel_threshold: [1]}\n" +
				"admin:\n  template:\n    max_file_size: {a: 1}\n",
			problems: []string{
				`line 3: connections[0].max_file_size: "5XB" is not a size: use a number of bytes or a number with a unit (KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 512MiB`,
				`line 4: connections[0].download.part_size: "lots" is not a size`,
				"line 4: connections[0].download.parallel_threshold: a size must be a number or a string such as 512MiB, or off",
				"line 7: admin.template.max_file_size: a size must be a number or a string such as 512MiB",
			},
		},
		{
			name: "with the other problems of decoding",
			yaml: conn + "    workers: many\n    max_file_size: -1\n    max_files: ${UNSET}\n",
			problems: []string{
				"line 3: connections[0].workers: cannot unmarshal !!str `many` into int",
				`line 4: connections[0].max_file_size: size "-1" is out of range`,
				"line 5: connections[0].max_files: environment variable UNSET is not set",
			},
		},
		{
			name:     "from the environment",
			yaml:     conn + "    max_file_size: ${SIZE}\n",
			problems: []string{`line 3: connections[0].max_file_size: (the value of "${SIZE}") is not a size`},
		},
		{
			name: "through an alias, reported once",
			yaml: conn + "    max_file_size: &s 5XB\n  - name: b\n    max_file_size: *s\n" +
				"  - name: c\n    max_files: &n x\n    max_file_size: *n\n",
			problems: []string{
				`line 3: connections[0].max_file_size: "5XB" is not a size`,
				"line 7: connections[2].max_files: cannot unmarshal !!str `x` into int",
			},
		},
		{
			name: "merged from an anchor",
			yaml: conn + "    download: {concurrency: 2}\n  - name: b\n    download: &d {part_size: 5XB}\n  - name: c\n    download: {<<: *d}\n" +
				"  - name: d\n    importer: {type: mine, options: &o {part_size: 2x}}\n    download: {<<: *o}\n" +
				"admin: {template: {download: {<<: [{part_size: 1x}]}}}\n",
			problems: []string{
				`line 5: connections[1].download.part_size: "5XB" is not a size`,
				// The anchor is options, which takes anything; merged into
				// a download block, its part_size must be a size.
				`line 9: connections[3].download.part_size: "2x" is not a size`,
				`line 11: admin.template.download.part_size: "1x" is not a size`,
			},
		},
	}
	lookup := func(name string) (string, bool) {
		if name == "SIZE" {
			return "s3cr3t-size", true
		}
		return "", false
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse([]byte(tt.yaml), lookup)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("parse error = %v, want a *ValidationError", err)
			}
			if len(ve.Problems) != len(tt.problems) {
				t.Fatalf("problems =\n%s\nwant\n%s", ve, strings.Join(tt.problems, "\n"))
			}
			for i, want := range tt.problems {
				if !strings.HasPrefix(ve.Problems[i], want) {
					t.Errorf("problem %d = %q, want it to start with %q", i, ve.Problems[i], want)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error shows the variable's value:\n%s", err)
			}
		})
	}
}

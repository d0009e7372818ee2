package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestExpandString(t *testing.T) {
	env := map[string]string{
		"ACME_ID": "abc123",
		"EMPTY":   "",
		"_X1":     "x",
		"NESTED":  "${ACME_ID}",
	}
	lookup := func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	tests := []struct {
		name  string
		in    string
		want  string
		unset []string
	}{
		{name: "no references", in: "a b", want: "a b"},
		{name: "one reference", in: "${ACME_ID}", want: "abc123"},
		{name: "inside a word", in: "pre-${ACME_ID}-post", want: "pre-abc123-post"},
		{name: "two in a value", in: "${ACME_ID}${_X1}", want: "abc123x"},
		{name: "set but empty", in: "${EMPTY}", want: ""},
		{name: "bare dollar left alone", in: "$ACME_ID $$ $ ${ $}", want: "$ACME_ID $$ $ ${ $}"},
		{name: "invalid name left alone", in: "${1ABC} ${A-B} ${}", want: "${1ABC} ${A-B} ${}"},
		{name: "double dollar not special", in: "$${ACME_ID}", want: "$abc123"},
		{name: "a value is not expanded again", in: "${NESTED}", want: "${ACME_ID}"},
		{name: "unset", in: "a${NOT_SET}b", want: "ab", unset: []string{"NOT_SET"}},
		{name: "every unset variable once", in: "${ONE}${ACME_ID}${TWO}${ONE}", want: "abc123", unset: []string{"ONE", "TWO"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, unset := expandString(tt.in, lookup)
			if got != tt.want || !slices.Equal(unset, tt.unset) {
				t.Errorf("expandString(%q) = %q, %q; want %q, %q", tt.in, got, unset, tt.want, tt.unset)
			}
		})
	}
}

// TestParseEnv checks that ${VAR} is expanded inside parsed values: what a
// variable holds arrives intact, whatever YAML syntax it contains, and no
// message shows it.
func TestParseEnv(t *testing.T) {
	const tricky = "a #b: 'c' \"d\": e\n    bogus_key: [f"
	env := map[string]string{
		"TRICKY":      tricky,
		"WORKERS":     "4",
		"MIN_AGE":     "90s",
		"EMPTY":       "",
		"NULLISH":     "null",
		"TILDE":       "~",
		"TRUE":        "true",
		"REF":         "${WORKERS}",
		"ACCOUNT":     "012345678901",
		"SECRET":      "s3cr3t-m4rker-value",
		"SECRET_LINE": "s3cr3t-m4rker\nvalue",
	}
	lookup := func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	const head = `principal_arn: arn:aws:iam::111122223333:root
connections:
  - name: acme
    status: active
    account_id: "123456789012"
    bucket: acme-exports
    region: eu-central-1
    external_id: abcdefghijklmnopqrstuvwxyz234567
`
	tests := []struct {
		name     string
		yaml     string
		check    func(t *testing.T, c *Connection)
		problems []string // the whole list, in order
	}{
		{
			name: "YAML syntax in a value arrives intact",
			yaml: head + "    importer:\n      type: exec\n      command:\n        - /bin/ingest\n        - ${TRICKY}\n        - \"${TRICKY}\"\n        - '${TRICKY}'\n",
			check: func(t *testing.T, c *Connection) {
				if want := []string{"/bin/ingest", tricky, tricky, tricky}; !slices.Equal(c.Importer.Command, want) {
					t.Errorf("command = %q, want %q", c.Importer.Command, want)
				}
			},
		},
		{
			name: "block scalar",
			yaml: head + "    importer:\n      type: exec\n      command:\n        - |\n          x ${TRICKY} y\n",
			check: func(t *testing.T, c *Connection) {
				if want := "x " + tricky + " y\n"; c.Importer.Command[0] != want {
					t.Errorf("command[0] = %q, want %q", c.Importer.Command[0], want)
				}
			},
		},
		{
			name: "plain scalars are typed after expansion",
			yaml: head + "    workers: ${WORKERS}\n    min_age: ${MIN_AGE}\n    max_files: ${EMPTY}\n    importer:\n      type: exec\n      command:\n" +
				"        - ${NULLISH}\n        - ${TILDE}\n        - ${TRUE}\n        - ${WORKERS}\n        - ${ACCOUNT}\n        - ${EMPTY}\n",
			check: func(t *testing.T, c *Connection) {
				if c.Workers != 4 || c.MinAge != 90*time.Second || c.MaxFiles != 0 {
					t.Errorf("workers %d, min_age %s, max_files %d; want 4, 1m30s, 0", c.Workers, c.MinAge, c.MaxFiles)
				}
				// An empty value is as if nothing were written: a null,
				// which leaves the default or drops the list item.
				if want := []string{"null", "~", "true", "4", "012345678901"}; !slices.Equal(c.Importer.Command, want) {
					t.Errorf("command = %q, want %q", c.Importer.Command, want)
				}
			},
		},
		{
			name: "an anchor is expanded once, an expanded value never",
			yaml: head + "    importer: {type: exec, command: &cmd [/bin/x, \"${REF}\"]}\n" +
				"  - name: beta\n    account_id: \"123456789012\"\n    bucket: beta-exports\n    region: eu-central-1\n    importer: {type: exec, command: *cmd}\n",
			check: func(t *testing.T, c *Connection) {
				if want := []string{"/bin/x", "${WORKERS}"}; !slices.Equal(c.Importer.Command, want) {
					t.Errorf("command = %q, want %q", c.Importer.Command, want)
				}
			},
		},
		{
			name: "comments are not expanded",
			yaml: "# ${NOT_SET}\n" + head + "    workers: 2 # ${NOT_SET}\n    # importer: ${NOT_SET}\n    importer: {type: discard}\n",
			check: func(t *testing.T, c *Connection) {
				if c.Workers != 2 {
					t.Errorf("workers %d, want 2", c.Workers)
				}
			},
		},
		{
			name:     "keys are not expanded",
			yaml:     head + "    importer:\n      type: http\n      url: https://sink.example.com\n      headers:\n        X-${WORKERS}: v\n",
			problems: []string{`connections[0].importer.headers["X-${WORKERS}"]: invalid header name`},
		},
		{
			name: "unset variables name their line and field",
			yaml: strings.Replace(head, "abcdefghijklmnopqrstuvwxyz234567", "${NOT_SET}", 1) +
				"    importer:\n      type: http\n      url: https://${HOST}/${HOST}${PATH}\n      headers: {X-Token: \"${TOKEN}\"}\n",
			problems: []string{
				"line 8: connections[0].external_id: environment variable NOT_SET is not set",
				"line 11: connections[0].importer.url: environment variable HOST is not set",
				"line 11: connections[0].importer.url: environment variable PATH is not set",
				`line 12: connections[0].importer.headers["X-Token"]: environment variable TOKEN is not set`,
			},
		},
		{
			name: "unset variables in maps and lists",
			yaml: head + "    importer:\n      type: exec\n      command: [/bin/x, \"${ARG}\"]\n      env:\n        TOKEN: ${TOKEN}\n        \"my key\": ${OTHER}\n",
			problems: []string{
				"line 11: connections[0].importer.command[1]: environment variable ARG is not set",
				`line 13: connections[0].importer.env["TOKEN"]: environment variable TOKEN is not set`,
				`line 14: connections[0].importer.env["my key"]: environment variable OTHER is not set`,
			},
		},
		{
			name: "with unknown keys and type errors, in the order of the file",
			yaml: head + "    workers: ${NOT_SET}\n    min_age: 5\n    importr: {}\n    max_files: ${UNSET_TOO}\n",
			problems: []string{
				"line 9: connections[0].workers: environment variable NOT_SET is not set",
				"line 10: connections[0].min_age: cannot unmarshal !!int `5` into a duration",
				`line 11: unknown key "importr" in a connection; did you mean "importer"?`,
				"line 12: connections[0].max_files: environment variable UNSET_TOO is not set",
			},
		},
		{
			name: "a type error does not show an expanded value",
			yaml: head + "    workers: ${SECRET}\n    max_files: x${SECRET}\n",
			problems: []string{
				"line 9: connections[0].workers: cannot unmarshal !!str (the value of \"${SECRET}\") into int",
				"line 10: connections[0].max_files: cannot unmarshal !!str (the value of \"x${SECRET}\") into int",
			},
		},
		{
			name: "a validation error does not show an expanded External ID",
			yaml: strings.Replace(head, "abcdefghijklmnopqrstuvwxyz234567", "${SECRET_LINE}", 1),
			problems: []string{
				"connections[0].external_id: contains a line break; copy it again without spaces or line breaks",
				`connections[0].importer.type: is required for an active connection`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse([]byte(tt.yaml), lookup)
			if tt.problems != nil {
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
				for _, secret := range []string{"s3cr3t", "m4rker"} {
					if strings.Contains(err.Error(), secret) {
						t.Errorf("error shows the variable's value:\n%s", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, &cfg.Connections[0])
		})
	}
}

func TestParseExpandsEnv(t *testing.T) {
	t.Setenv("S3C_TEST_PARSE_EXTERNAL_ID", "abcdefghijklmnopqrstuvwxyz234567")
	t.Setenv("S3C_TEST_PARSE_BUCKET", "acme-exports")
	cfg, err := Parse([]byte(`principal_arn: arn:aws:iam::111122223333:root
connections:
  - name: acme
    status: active
    account_id: "123456789012"
    bucket: ${S3C_TEST_PARSE_BUCKET}
    region: eu-central-1
    external_id: "${S3C_TEST_PARSE_EXTERNAL_ID}"
    importer: {type: discard}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Connections[0]; c.Bucket != "acme-exports" || c.ExternalID != "abcdefghijklmnopqrstuvwxyz234567" {
		t.Errorf("not expanded: %+v", c)
	}
}

package config

import (
	"errors"
	"strings"
	"testing"
)

func TestExpandEnv(t *testing.T) {
	env := map[string]string{
		"ACME_ID": "abc123",
		"EMPTY":   "",
		"_X1":     "x",
	}
	lookup := func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	tests := []struct {
		name     string
		in       string
		want     string
		problems []string
	}{
		{name: "no references", in: "a: b\n", want: "a: b\n"},
		{name: "one reference", in: "id: ${ACME_ID}\n", want: "id: abc123\n"},
		{name: "inside a word", in: "id: pre-${ACME_ID}-post\n", want: "id: pre-abc123-post\n"},
		{name: "two on a line", in: "x: ${ACME_ID}${_X1}\n", want: "x: abc123x\n"},
		{name: "set but empty", in: "x: \"${EMPTY}\"\n", want: "x: \"\"\n"},
		{name: "bare dollar left alone", in: "x: $ACME_ID $$ $ ${ $}\n", want: "x: $ACME_ID $$ $ ${ $}\n"},
		{name: "invalid name left alone", in: "x: ${1ABC} ${A-B} ${}\n", want: "x: ${1ABC} ${A-B} ${}\n"},
		{name: "double dollar not special", in: "x: $${ACME_ID}\n", want: "x: $abc123\n"},
		{name: "no trailing newline", in: "x: ${ACME_ID}", want: "x: abc123"},
		{name: "comment line skipped", in: "  # x: ${NOT_SET}\nx: 1\n", want: "  # x: ${NOT_SET}\nx: 1\n"},
		{
			name:     "unset",
			in:       "a: 1\nb: 2\nc: ${NOT_SET}\n",
			problems: []string{"line 3: environment variable NOT_SET is not set"},
		},
		{
			name: "every unset variable, each line once",
			in:   "a: ${ONE}\nb: ${ACME_ID}\nc: ${TWO} ${ONE} ${TWO}\n\nd: ${ONE}",
			problems: []string{
				"line 1: environment variable ONE is not set",
				"line 3: environment variable TWO is not set",
				"line 3: environment variable ONE is not set",
				"line 5: environment variable ONE is not set",
			},
		},
		{
			name:     "trailing comment is not skipped",
			in:       "a: 1 # ${NOT_SET}\n",
			problems: []string{"line 1: environment variable NOT_SET is not set"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expandEnv([]byte(tt.in), lookup)
			if tt.problems != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("expandEnv error = %v, want a *ValidationError", err)
				}
				if strings.Join(ve.Problems, "\n") != strings.Join(tt.problems, "\n") {
					t.Errorf("problems =\n%s\nwant\n%s", ve, strings.Join(tt.problems, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("expandEnv(%q) = %q, want %q", tt.in, got, tt.want)
			}
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

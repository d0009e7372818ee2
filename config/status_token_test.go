package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStatusToken(t *testing.T) {
	const conn = `principal_arn: arn:aws:iam::111122223333:root
connections:
  - name: acme
    account_id: "123456789012"
    bucket: acme-exports
    region: eu-central-1
`
	tests := []struct {
		name    string
		content string
		want    string
		wantErr string
	}{
		{name: "trimmed", content: "\n  tok-3f9a_x.Y~+/=  \r\n", want: "tok-3f9a_x.Y~+/="},
		{name: "two words", content: "tokmarker1 tokmarker2\n", wantErr: "holds more than one word, or a control character"},
		{name: "two lines", content: "tokmarker1\ntokmarker2\n", wantErr: "holds more than one word"},
		{name: "only whitespace", content: " \n\t\n", wantErr: "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse([]byte("status_token_file: " + path + "\n" + conn))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), "status_token_file: "+path+" "+tt.wantErr) {
					t.Fatalf("Parse error = %v, want one containing %q", err, tt.wantErr)
				}
				for _, word := range strings.Fields(tt.content) {
					if strings.Contains(err.Error(), word) {
						t.Errorf("error shows the token's content %q: %v", word, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.StatusToken != tt.want {
				t.Errorf("StatusToken = %q, want %q", cfg.StatusToken, tt.want)
			}
		})
	}
	// Unset: no token, /status is open (redacted).
	cfg, err := Parse([]byte(conn))
	if err != nil || cfg.StatusToken != "" {
		t.Errorf("without status_token_file: token %q, error %v", cfg.StatusToken, err)
	}
}

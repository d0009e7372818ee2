package config

import (
	"testing"
)

// With data_dir the file may hold no connection: they come from the store.
// The template gets the connection defaults; the admin listener its own.
func TestParseStoredOnly(t *testing.T) {
	cfg, err := Parse([]byte(`principal_arn: arn:aws:iam::111122223333:role/s3connector-platform
data_dir: /var/lib/s3connector
admin:
  token_files: [/run/secrets/admin/token]
  template:
    importer: {type: http, url: "https://ingest.example.com/files"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Admin.Enabled() || cfg.Admin.Listen != DefaultAdminListen {
		t.Errorf("admin = %+v", cfg.Admin)
	}
	tc := cfg.Admin.Template.Connection()
	if tc.Status != StatusActive || tc.Schedule != DefaultSchedule || tc.Workers != DefaultWorkers || tc.Importer.Timeout != DefaultImporterTimeout {
		t.Errorf("template connection = %+v", tc)
	}
	if got := cfg.StorePath(); got != "/var/lib/s3connector/connections.db" {
		t.Errorf("StorePath = %q", got)
	}
}

func TestLoopbackListen(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9465", true},
		{"[::1]:9465", true},
		{"localhost:9465", true},
		{":9465", false},
		{"0.0.0.0:9465", false},
		{"10.0.0.5:9465", false},
		{"localhost.example.com:9465", false},
	}
	for _, tt := range tests {
		if got := loopbackListen(tt.addr); got != tt.want {
			t.Errorf("loopbackListen(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

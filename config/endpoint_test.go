package config

import (
	"strings"
	"testing"
)

// TestValidateEndpoint covers what endpoint_http*.bad.yaml cannot: the
// accepted forms (https anywhere, http on loopback only).
func TestValidateEndpoint(t *testing.T) {
	const onlyLoopback = "plain http is accepted only for a loopback address"
	runValidatorCases(t, validateEndpoint, []validatorCase{
		{"https://s3.eu-central-1.amazonaws.com", ""},
		{"https://minio.internal:9000", ""},
		{"HTTPS://minio.internal:9000", ""},
		{"http://127.0.0.1:9000", ""},
		{"http://127.10.20.30:9000", ""},
		{"http://localhost:9000", ""},
		{"http://LocalHost:9000", ""},
		{"http://[::1]:9000", ""},
		{"http://[::ffff:127.0.0.1]:9000", ""},
		{"http://minio.internal:9000", onlyLoopback + ` (127.0.0.0/8, ::1, localhost), got host "minio.internal"; use https://`},
		{"http://10.0.0.5", `got host "10.0.0.5"`},
		{"http://128.0.0.1", `got host "128.0.0.1"`},
		{"http://0.0.0.0:9000", `got host "0.0.0.0"`},
		{"http://[::]:9000", `got host "::"`},
		{"http://localhost.attacker.example", `got host "localhost.attacker.example"`},
		{"http://127.0.0.1.nip.io", `got host "127.0.0.1.nip.io"`},
		{"http://2130706433", `got host "2130706433"`}, // 127.0.0.1 as an integer: not parsed, not trusted
		{"minio:9000", "must be an absolute URL"},
		{"ftp://127.0.0.1", `scheme must be http or https, got "ftp"`},
	})
	// Like validateHTTPURL, the path and query (which may carry a token)
	// are not echoed.
	if err := validateEndpoint("http://minio.internal/?token=s3cr3t"); err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("validateEndpoint error %v shows the URL", err)
	}
}

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap"
)

func TestStatusRedactAccounts(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{
			"assume role arn:aws:iam::123456789012:role/s3connector-acme: api error AccessDenied",
			"assume role arn:aws:iam::************:role/…: api error AccessDenied",
		},
		{
			"User: arn:aws:sts::111122223333:assumed-role/platform/i-0abc is not authorized to perform: sts:AssumeRole on resource: arn:aws-cn:iam::123456789012:role/team/x",
			"User: arn:aws:sts::************:assumed-role/… is not authorized to perform: sts:AssumeRole on resource: arn:aws-cn:iam::************:role/…",
		},
		{
			"kms key arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab denied",
			"kms key arn:aws:kms:eu-central-1:************:key/… denied",
		},
		{"principal arn:aws:iam::049579744830:root.", "principal arn:aws:iam::************:…"},
		{"the role in account 123456789012, i.e. the customer's", "the role in account ************, i.e. the customer's"},
		{"id123456789012x", "id************x"},
		// Not account ids: other lengths, S3 ARNs (no account).
		{"listed 1234567890123 bytes in 12345678901 ms", "listed 1234567890123 bytes in 12345678901 ms"},
		{"s3://acme/imports/ arn:aws:s3:::acme-exports/imports/*", "s3://acme/imports/ arn:aws:s3:::acme-exports/imports/*"},
	}
	for _, tt := range tests {
		if got := redactAccounts(tt.in); got != tt.want {
			t.Errorf("redactAccounts(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
	}
	f := outputFilter{full: true, secrets: []string{"ext-id-0123456789abcdef"}}
	if got := f.text("x ext-id-0123456789abcdef 123456789012"); got != "x [redacted] 123456789012" {
		t.Errorf("full view = %q: want the External ID hidden, the account shown", got)
	}
}

func TestStatusAccess(t *testing.T) {
	d := &daemon{statusToken: "s3cr3t-status-token"}
	tests := []struct {
		header  string
		full    bool
		refused string
	}{
		{"Bearer s3cr3t-status-token", true, ""},
		{"bearer  s3cr3t-status-token ", true, ""},
		{"", false, "no bearer token"},
		{"Bearer", false, "no bearer token"},
		{"Basic s3cr3t-status-token", false, "no bearer token"},
		{"Bearer s3cr3t-status-toke", false, "invalid token"},
		{"Bearer s3cr3t-status-token-and-more", false, "invalid token"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/status", nil)
		if tt.header != "" {
			r.Header.Set("Authorization", tt.header)
		}
		if full, refused := d.statusAccess(r); full != tt.full || refused != tt.refused {
			t.Errorf("Authorization %q: full %v refused %q, want %v %q", tt.header, full, refused, tt.full, tt.refused)
		}
	}
	// No token configured: everyone gets the redacted view, a header or not.
	open := &daemon{log: zap.NewNop()}
	r := httptest.NewRequest("GET", "/status", nil)
	r.Header.Set("Authorization", "Bearer anything")
	if full, refused := open.statusAccess(r); full || refused != "" {
		t.Errorf("without a token: full %v refused %q, want the redacted view", full, refused)
	}
	w := httptest.NewRecorder()
	open.status(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("/status without a token configured: %d", w.Code)
	}
}

// A connection whose validation fails (the platform's secret key is wrong)
// is reported by /status and /readyz without its account id, role ARN or
// External ID, except to a caller with the status token; the token is read
// again on reload; /healthz and /metrics need none. Built binary, real MinIO.
func TestStatusTokenAndRedaction(t *testing.T) {
	f := newRunFixture(t, map[string]string{"a.csv": "a"})
	addr := freeAddr(t)
	cfg := f.config(t, addr, "      type: discard\n")
	externalID := configValue(t, cfg, "external_id")
	// Bad credentials: the role cannot be assumed.
	user := os.Getenv("AWS_ACCESS_KEY_ID")
	platformEnv(t, user, "not-the-secret-of-"+user)
	tokenFile := filepath.Join(t.TempDir(), "status-token")
	writeToken := func(token string) {
		if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeToken("first-status-token")
	setConfig(t, cfg, "listen:", "status_token_file: "+tokenFile+"\nlisten:")
	d := startDaemon(t, cfg, addr)

	const account, roleARN = "123456789012", "arn:aws:iam::123456789012:role/s3connector-acme"
	secretKey := os.Getenv("AWS_SECRET_ACCESS_KEY")
	mustNotShow := func(what, body string, values ...string) {
		t.Helper()
		for _, v := range append(values, externalID, secretKey) {
			if strings.Contains(body, v) {
				t.Errorf("%s shows %q:\n%s", what, v, body)
			}
		}
	}
	var readyz string
	waitFor(t, "/readyz to report the failing connection", func() bool {
		var code int
		code, readyz = d.get("/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(readyz, "acme: failing")
	})
	t.Logf("/readyz:\n%s", readyz)
	mustNotShow("/readyz", readyz, account)
	if !strings.Contains(readyz, "arn:aws:iam::************:role/…") {
		t.Errorf("/readyz does not show the redacted role ARN (is the failure about assuming the role?):\n%s", readyz)
	}

	for _, header := range []string{"", "Bearer wrong-token", "Basic first-status-token"} {
		code, body, hdr := getWithAuth(t, d, "/status", header)
		if code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") == "" || hdr.Get("Content-Type") != "application/json" {
			t.Errorf("/status with Authorization %q: %d %v, want 401 with WWW-Authenticate, JSON", header, code, hdr)
		}
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.Contains(e.Error, "status_token_file") {
			t.Errorf("/status 401 body %q (%v), want a JSON error naming status_token_file", body, err)
		}
		mustNotShow("/status (401)", body, account, "acme", "first-status-token")
	}
	full := statusLastError(t, d, "Bearer first-status-token")
	if !strings.Contains(full, roleARN) {
		t.Errorf("authenticated /status last_error %q does not name %s", full, roleARN)
	}
	mustNotShow("authenticated /status", full)

	// Unauthenticated endpoints, and nothing secret in /metrics.
	if code, _ := d.get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	code, metrics := d.get("/metrics")
	if code != http.StatusOK || !strings.Contains(metrics, `s3connector_connection_up{connection="acme"} 0`) {
		t.Errorf("/metrics without a token: %d, want 200 with connection_up 0", code)
	}
	mustNotShow("/metrics", metrics, account, roleARN, "first-status-token")

	// The token is read again on reload: the old one stops working.
	writeToken("second-status-token")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the new token", func() bool {
		code, _, _ := getWithAuth(t, d, "/status", "Bearer second-status-token")
		return code == http.StatusOK
	})
	if code, _, _ := getWithAuth(t, d, "/status", "Bearer first-status-token"); code != http.StatusUnauthorized {
		t.Errorf("/status with the replaced token: %d, want 401", code)
	}

	// Without status_token_file, /status is open and redacted.
	setConfig(t, cfg, "status_token_file: "+tokenFile+"\n", "")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "/status open", func() bool { code, _ := d.get("/status"); return code == http.StatusOK })
	redacted := statusLastError(t, d, "")
	if !strings.Contains(redacted, "assume role arn:aws:iam::************:role/…") {
		t.Errorf("open /status last_error %q, want the role ARN redacted", redacted)
	}
	_, body := d.get("/status")
	t.Logf("open /status:\n%s\nfull last_error: %s", body, full)
	mustNotShow("open /status", body, account, "s3connector-acme")
	if err := d.signalAndWait(t, syscall.SIGTERM); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

func getWithAuth(t *testing.T, d *daemonProc, path, authorization string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+d.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// statusLastError is the one connection's last_error in /status.
func statusLastError(t *testing.T, d *daemonProc, authorization string) string {
	t.Helper()
	code, body, _ := getWithAuth(t, d, "/status", authorization)
	var st struct {
		Connections []connectionStatus `json:"connections"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != http.StatusOK || len(st.Connections) != 1 {
		t.Fatalf("/status: %d %v\n%s", code, err, body)
	}
	return st.Connections[0].LastError
}

// configValue is the value of the first "key: value" line in the file.
func configValue(t *testing.T, path, key string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s has no %s", path, key)
	return ""
}

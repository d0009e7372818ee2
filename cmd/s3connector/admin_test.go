package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector/miniotest"
)

const adminToken = "admin-token-0123456789abcdef0123456789abcdef"

// storedConfig writes a configuration without file connections: a
// data_dir, the admin API on its own loopback port with one token, and the
// template pointing at MinIO.
func storedConfig(t *testing.T, srv *miniotest.Server, listen, adminListen, dataDir, importDir string) string {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "ops-token")
	if err := os.WriteFile(tokenFile, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := `principal_arn: arn:aws:iam::049579744830:root
listen: ` + listen + `
data_dir: ` + dataDir + `
admin:
  listen: ` + adminListen + `
  token_files: [` + tokenFile + `]
  template:
    schedule: "@every 1s"
    workers: 2
    importer:
      type: dir
      path: ` + importDir + `
    endpoint: ` + srv.Endpoint + `
    sts_endpoint: ` + srv.Endpoint + `
`
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type apiAnswer struct {
	Code   int
	Body   string
	Status string          `json:"status"`
	Data   json.RawMessage `json:"data"`
	Error  struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// call sends an admin API request with the token and prints it like the
// demo does, for the test log.
func call(t *testing.T, addr, method, path, body string) *apiAnswer {
	t.Helper()
	return callWith(t, adminToken, addr, method, path, body)
}

func callWith(t *testing.T, token, addr, method, path, body string) *apiAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := &apiAnswer{Code: resp.StatusCode, Body: string(b)}
	if err := json.Unmarshal(b, a); err != nil {
		t.Fatalf("%s %s: answer %d is not JSON: %s", method, path, resp.StatusCode, b)
	}
	return a
}

func (a *apiAnswer) want(t *testing.T, code int) *apiAnswer {
	t.Helper()
	if a.Code != code {
		t.Fatalf("status %d, want %d:\n%s", a.Code, code, a.Body)
	}
	return a
}

func (a *apiAnswer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.Data, v); err != nil {
		t.Fatalf("data: %v\n%s", err, a.Body)
	}
}

// The wizard on the built binary against MinIO: create a connection
// through the API, validate before the customer's policy exists (fails,
// Activate refused), create the platform user with the API's own
// permissions policy, validate (the seeds' success line), activate; the
// daemon archives the files; one the importer rejects is listed in error/
// and requeued through the API; after a restart the connection is still
// there, active, and ingesting.
func TestDaemonStoredConnectionThroughAdminAPI(t *testing.T) {
	f := newRunFixture(t, map[string]string{"a.csv": "1\n", "b.csv": "2\n"})
	user := "stored-" + f.bucket
	platformEnv(t, user, user+"-secret") // the user does not exist yet
	dataDir := filepath.Join(t.TempDir(), "data")
	importDir := t.TempDir()
	listen, adminAddr := freeAddr(t), freeAddr(t)
	cfg := storedConfig(t, f.srv, listen, adminAddr, dataDir, importDir)
	d := startDaemon(t, cfg, listen)
	waitFor(t, "the admin API", func() bool {
		resp, err := http.Get("http://" + adminAddr + "/api/v1/regions")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})

	// The page is served on the same listener, without a token.
	resp, err := http.Get("http://" + adminAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The API is not on the metrics listener.
	if code, _ := d.get("/api/v1/connections"); code != http.StatusNotFound {
		t.Errorf("/api/v1 on the metrics listener: %d", code)
	}

	call(t, adminAddr, "POST", "/api/v1/connections", `{"name":"acme","account_id":"123456789012","bucket":"`+f.bucket+`","region":"`+miniotest.Region+`","base_path":"imports"}`).want(t, http.StatusCreated)
	var iam struct {
		Permissions json.RawMessage `json:"permissions_policy"`
		ExternalID  string          `json:"external_id"`
	}
	call(t, adminAddr, "GET", "/api/v1/connections/acme/iam", "").want(t, http.StatusOK).decode(t, &iam)

	type result struct {
		Passed      bool   `json:"passed"`
		Message     string `json:"message"`
		SuccessLine string `json:"success_line"`
		CanActivate bool   `json:"can_activate"`
	}
	var res result
	call(t, adminAddr, "POST", "/api/v1/connections/acme/validate", "").want(t, http.StatusOK).decode(t, &res)
	if res.Passed || res.CanActivate || res.Message != "Validation Failed" {
		t.Fatalf("before the policy: %+v", res)
	}
	call(t, adminAddr, "POST", "/api/v1/connections/acme/activate", "").want(t, http.StatusConflict)

	if err := f.srv.AddUser(t.Context(), user, user+"-secret", iam.Permissions); err != nil {
		t.Fatal(err)
	}
	res = result{}
	validateWhenAllowed(t, adminAddr, "acme").want(t, http.StatusOK).decode(t, &res)
	if !res.Passed || !res.CanActivate || res.SuccessLine != "Connection successful. Found 2 files in bucket." {
		t.Fatalf("with the API's policy: %+v", res)
	}
	call(t, adminAddr, "POST", "/api/v1/connections/acme/activate", "").want(t, http.StatusOK)

	waitFor(t, "both files archived", func() bool { return len(f.keys(t, "imports/archive/")) == 2 })
	for name, body := range map[string]string{"a.csv": "1\n", "b.csv": "2\n"} {
		got, err := os.ReadFile(filepath.Join(importDir, "acme", name))
		if err != nil || string(got) != body {
			t.Errorf("imported %s = %q, %v", name, got, err)
		}
	}

	// A key the dir importer rejects goes to error/; the API lists it with
	// its report and puts it back in the inbox.
	const bad = `imports/orders\2026.csv`
	if err := f.srv.Put(t.Context(), f.bucket, bad, []byte("x\n")); err != nil {
		t.Fatal(err)
	}
	type errorFile struct {
		Key    string `json:"key"`
		Report *struct {
			OriginalKey string `json:"original_key"`
			Reason      string `json:"reason"`
		} `json:"report"`
	}
	var list struct {
		Files []errorFile `json:"files"`
	}
	waitFor(t, "the rejected file in error/", func() bool {
		call(t, adminAddr, "GET", "/api/v1/connections/acme/errors", "").want(t, http.StatusOK).decode(t, &list)
		return len(list.Files) == 1
	})
	ef := list.Files[0]
	if ef.Report == nil || ef.Report.OriginalKey != bad || ef.Report.Reason == "" {
		t.Fatalf("error file %+v", ef)
	}
	call(t, adminAddr, "POST", "/api/v1/connections/acme/requeue", `{"keys":["`+ef.Key+`.error.json"]}`).want(t, http.StatusBadRequest)
	call(t, adminAddr, "POST", "/api/v1/connections/acme/requeue", `{"keys":["imports/error/.s3connector/lease"]}`).want(t, http.StatusBadRequest)
	// Disable first, so the daemon does not reject it again at once.
	call(t, adminAddr, "POST", "/api/v1/connections/acme/disable", "").want(t, http.StatusOK)
	var rq struct {
		Requeued []struct {
			Key        string `json:"key"`
			RequeuedTo string `json:"requeued_to"`
		} `json:"requeued"`
	}
	// The daemon's lease of the disabled connection may still be held
	// for a moment by its last run; the requeue itself needs no lease.
	call(t, adminAddr, "POST", "/api/v1/connections/acme/requeue", `{"keys":[`+jsonString(ef.Key)+`]}`).want(t, http.StatusOK).decode(t, &rq)
	if len(rq.Requeued) != 1 || rq.Requeued[0].RequeuedTo != bad {
		t.Errorf("requeued %+v", rq)
	}
	if keys := f.keys(t, "imports/"); !slices.Contains(keys, bad) {
		t.Errorf("inbox after requeue: %v", keys)
	}

	// Activate again (a new passing validation first), then restart.
	validateWhenAllowed(t, adminAddr, "acme").want(t, http.StatusOK)
	call(t, adminAddr, "POST", "/api/v1/connections/acme/activate", "").want(t, http.StatusOK)
	if err := d.signalAndWait(t, syscall.SIGTERM); err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
	info, err := os.Stat(filepath.Join(dataDir, config.StoreFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("store file: %v, %v", info, err)
	}

	d = startDaemon(t, cfg, listen)
	var conn struct {
		Status   string `json:"status"`
		Source   string `json:"source"`
		RunState string `json:"run_state"`
	}
	waitFor(t, "the restarted admin API", func() bool {
		resp, err := http.Get("http://" + adminAddr + "/api/v1/regions")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	call(t, adminAddr, "GET", "/api/v1/connections/acme", "").want(t, http.StatusOK).decode(t, &conn)
	if conn.Status != "active" {
		t.Errorf("after restart: %+v", conn)
	}
	if err := f.srv.Put(t.Context(), f.bucket, "imports/c.csv", []byte("3\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the file uploaded after the restart archived", func() bool {
		_, err := os.Stat(filepath.Join(importDir, "acme", "c.csv"))
		return err == nil && len(f.keys(t, "imports/archive/")) == 3
	})

	// SIGHUP applies a rotated token file and a changed template: the
	// old token is refused, and the stored connection now imports into the
	// template's new directory.
	const newToken = "rotated-token-0123456789abcdef0123456789abcdef"
	newTokenFile := filepath.Join(t.TempDir(), "rotated-token")
	if err := os.WriteFile(newTokenFile, []byte(newToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	newImportDir := t.TempDir()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b = regexp.MustCompile(`token_files: \[.*\]`).ReplaceAll(b, []byte("token_files: ["+newTokenFile+"]"))
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	setConfig(t, cfg, "path: "+importDir, "path: "+newImportDir)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the old token refused after SIGHUP", func() bool {
		return callWith(t, adminToken, adminAddr, "GET", "/api/v1/connections", "").Code == http.StatusUnauthorized
	})
	callWith(t, newToken, adminAddr, "GET", "/api/v1/connections/acme", "").want(t, http.StatusOK)
	if err := f.srv.Put(t.Context(), f.bucket, "imports/e.csv", []byte("5\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the file uploaded after the reload imported into the new template's directory", func() bool {
		got, err := os.ReadFile(filepath.Join(newImportDir, "acme", "e.csv"))
		return err == nil && string(got) == "5\n"
	})
	if _, err := os.Stat(filepath.Join(importDir, "acme", "e.csv")); err == nil {
		t.Errorf("e.csv was imported into the old template's directory")
	}
	importDir = newImportDir

	// run --once: while the daemon holds the store, its connections are
	// the daemon's to run; once it has stopped, run --once runs them too.
	stdout, stderr, code := runCLI(t, "run", "--once", "--config", cfg)
	if code == 0 || !strings.Contains(stdout, "stored connections skipped") || !strings.Contains(stderr, "no connection") {
		t.Errorf("run --once next to the daemon: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if _, stderr, code := runCLI(t, "run", "--once", "--config", cfg, "--connection", "acme"); code == 0 || !strings.Contains(stderr, "daemon") {
		t.Errorf("run --once --connection acme next to the daemon: exit %d: %s", code, stderr)
	}
	if err := d.signalAndWait(t, syscall.SIGTERM); err != nil {
		t.Fatalf("daemon exit: %v", err)
	}
	if err := f.srv.Put(t.Context(), f.bucket, "imports/d.csv", []byte("4\n")); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runCLI(t, "run", "--once", "--config", cfg, "--connection", "acme")
	if code != 0 || !strings.Contains(stdout, "acme: listed 1, imported 1, archived 1") {
		t.Errorf("run --once --connection acme: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if got, err := os.ReadFile(filepath.Join(importDir, "acme", "d.csv")); err != nil || string(got) != "4\n" {
		t.Errorf("run --once imported d.csv = %q, %v", got, err)
	}
	if _, stderr, code := runCLI(t, "run", "--once", "--config", cfg, "--connection", "nobody"); code != 2 || !strings.Contains(stderr, "in the store of data_dir") {
		t.Errorf("run --once --connection nobody: exit %d: %s", code, stderr)
	}
}

// validateWhenAllowed validates once the per-connection interval
// between validations (10 s) has passed.
func validateWhenAllowed(t *testing.T, addr, name string) *apiAnswer {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		a := call(t, addr, "POST", "/api/v1/connections/"+name+"/validate", "")
		if a.Code != http.StatusTooManyRequests || time.Now().After(deadline) {
			return a
		}
		time.Sleep(time.Second)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// A store that cannot be read stops the start: it is never emptied.
func TestDaemonRefusesCorruptStore(t *testing.T) {
	platformEnv(t, "nobody", "nobody-secret")
	dataDir := t.TempDir()
	garbage := bytes.Repeat([]byte("not a bbolt file "), 512)
	storeFile := filepath.Join(dataDir, config.StoreFile)
	if err := os.WriteFile(storeFile, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := `principal_arn: arn:aws:iam::049579744830:root
listen: ` + freeAddr(t) + `
data_dir: ` + dataDir + `
admin:
  listen: ` + freeAddr(t) + `
  template:
    importer: {type: discard}
`
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var stderr string
	var code int
	go func() {
		defer close(done)
		_, stderr, code = runCLI(t, "run", "--config", cfg)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon started on a corrupt store")
	}
	if code != 1 || !strings.Contains(stderr, storeFile) || !strings.Contains(stderr, "corrupt") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr)
	}
	if got, _ := os.ReadFile(storeFile); !bytes.Equal(got, garbage) {
		t.Error("the corrupt store file was changed")
	}
}

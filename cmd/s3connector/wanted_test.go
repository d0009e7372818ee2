package main

import (
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/s3connector/s3connector/admin"
	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/store"
	"github.com/s3connector/s3connector/supervisor"
)

// The wanted set: stored connections run with the template (a dir
// importer in its own subdirectory, active only when stored active); one
// that clashes with the configuration file (its name, or a nested base
// path in the same bucket) is left out, the file's never.
func TestWantedCheckStored(t *testing.T) {
	w := &wanted{sup: supervisor.New(supervisor.Options{}), log: zap.NewNop(), principal: "arn:aws:iam::049579744830:root",
		template: config.Connection{Status: config.StatusActive, Schedule: "@every 1m", Workers: 2, Importer: config.Importer{Type: config.ImporterDir, Path: "/srv/stored"}}}
	file := []config.Connection{{Name: "from-file", Status: config.StatusActive, AccountID: "123456789012", Bucket: "shared", Region: "us-east-1",
		BasePath: "a/", ExternalID: "file0external0id0file0external0", Importer: config.Importer{Type: config.ImporterDiscard}}}
	stored := func(name, bucket, base string, status store.Status) store.Connection {
		return store.Connection{Name: name, Settings: store.Settings{AccountID: "123456789012", Bucket: bucket, Region: "us-east-1", BasePath: base},
			ExternalID: "stored0external0id0stored0extern", RoleName: config.RoleNamePrefix + name, Status: status}
	}
	got := w.checkStored(file, []store.Connection{
		stored("ok", "shared", "b/", store.StatusActive),
		stored("draft", "other", "", store.StatusValidated),
		stored("from-file", "elsewhere", "", store.StatusActive), // the file took the name
		stored("nested", "shared", "a/inner/", store.StatusActive),
	})
	byName := map[string]config.Connection{}
	for _, c := range got {
		byName[c.Name] = c
	}
	if len(got) != 2 {
		t.Fatalf("kept %v, want ok and draft", got)
	}
	if c := byName["ok"]; c.Status != config.StatusActive || c.Importer.Path != "/srv/stored/ok" || c.Workers != 2 {
		t.Errorf("ok = %+v", c)
	}
	if c := byName["draft"]; c.Status != config.StatusDraft {
		t.Errorf("a validated connection runs as %s, want draft", c.Status)
	}

	// The list shows the left-out active ones as not running, saying why;
	// the file's connection of a taken name keeps its own state.
	for _, name := range []string{"from-file", "nested"} {
		st, ok := w.State(name, true)
		if !ok || st.State != admin.StateNotRunning || !strings.Contains(st.Problem, "connections[") {
			t.Errorf("State(%q, stored) = %+v, %v; want not running with the problem", name, st, ok)
		}
	}
	w.file = file
	if st, ok := w.State("from-file", false); ok && st.State == admin.StateNotRunning {
		t.Errorf("the file's connection shows the stored one's conflict: %+v", st)
	}
	if st, ok := w.State("ok", true); ok && st.State == admin.StateNotRunning {
		t.Errorf("a stored connection that runs shows %+v", st)
	}
	if st, ok := w.State("draft", true); ok {
		t.Errorf("a draft shows a run state %+v", st)
	}
}

// The admin API's error routes keep one connection per connection's
// settings: paging and requeueing do not assume the role on every request
// (each AssumeRole spends the platform's STS quota); a changed setting gets
// a connection of its own. The STS requests are counted on a recording
// proxy in front of MinIO's STS.
func TestErrorFilesReuseTheConnection(t *testing.T) {
	f := newRunFixture(t, nil)
	path := f.config(t, freeAddr(t), "      type: discard\n")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	proxy := f.srv.NewProxy(t)
	c := cfg.Connections[0]
	c.STSEndpoint = proxy.URL
	platform, err := connector.LoadPlatformConfig(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	e := &errorFiles{platform: platform, principal: cfg.PrincipalARN}
	assumes := func() int { return len(proxy.Matching(http.MethodPost, "")) }
	for range 3 {
		if _, err := e.List(t.Context(), c, 10); err != nil {
			t.Fatal(err)
		}
	}
	if n := assumes(); n != 1 {
		t.Errorf("3 listings of error/ assumed the role %d times, want 1", n)
	}
	c.Workers++
	if _, err := e.List(t.Context(), c, 10); err != nil {
		t.Fatal(err)
	}
	if n := assumes(); n != 2 {
		t.Errorf("after a settings change: %d AssumeRole requests, want 2", n)
	}
}

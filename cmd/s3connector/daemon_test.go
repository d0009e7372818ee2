package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/internal/proctest"
)

// binary is the built s3connector binary, shared by the package's tests.
func binary(t *testing.T) string { return proctest.Daemon(t) }

// daemonProc is a running `s3connector run`.
type daemonProc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *proctest.Buffer
	exited chan error
}

func startDaemon(t *testing.T, cfg, addr string) *daemonProc {
	t.Helper()
	d := &daemonProc{addr: addr, stderr: &proctest.Buffer{}, exited: make(chan error, 1)}
	d.cmd = exec.Command(binary(t), "run", "--config", cfg)
	d.cmd.Env = os.Environ() // platformEnv set the AWS variables
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Kill()
		checkLog(t, d.stderr.String())
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.stderr.String())
		}
	})
	return d
}

// checkLog holds the logging contract: JSON lines; every line about a file
// names its connection, run and key; no credential value appears.
func checkLog(t *testing.T, log string) {
	t.Helper()
	secret := os.Getenv("AWS_SECRET_ACCESS_KEY")
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		if _, ok := fields["key"]; ok {
			for _, f := range []string{"connection", "run_id"} {
				if _, ok := fields[f]; !ok {
					t.Errorf("file log line without %s: %s", f, line)
				}
			}
		}
		if secret != "" && strings.Contains(line, secret) {
			t.Errorf("log line contains the platform secret: %s", line)
		}
	}
}

func (d *daemonProc) get(path string) (int, string) {
	resp, err := http.Get("http://" + d.addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond for up to 60 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *daemonProc) signalAndWait(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("daemon did not exit")
		return nil
	}
}

// SIGTERM during a run with a slow importer: files in progress finish
// within shutdown_grace, no new file starts, the process exits 0; nothing
// is lost or half-moved and the next run completes the rest.
func TestDaemonGracefulShutdown(t *testing.T) {
	f, cfg, d := startSlowRun(t, func(cfg string) {
		setConfig(t, cfg, "listen:", "shutdown_grace: 20s\nlisten:")
	})
	if err := d.signalAndWait(t, syscall.SIGTERM); err != nil {
		t.Fatalf("daemon exited with %v, want 0", err)
	}
	log := d.stderr.String()
	for _, want := range []string{`"msg":"stopping: no new files; files in progress may finish"`, `"msg":"stopped"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	checkStoppedPartWay(t, f, "after SIGTERM")
	setConfig(t, cfg, "sleep 1; ", "")
	out, _, code := runCLI(t, "run", "--config", cfg, "--once")
	if code != 0 {
		t.Fatalf("next run exited %d: %s", code, out)
	}
	if n := len(f.keys(t, "imports/archive/")); n != slowRunFiles {
		t.Errorf("after the next run archive/ holds %d files, want %d", n, slowRunFiles)
	}
}

// slowRunFiles is the inbox of the tests that stop a run part-way.
const slowRunFiles = 12

// startSlowRun starts the daemon on slowRunFiles files imported by a
// command that takes a second each, two at a time (edit, when set, changes
// the config file first), and waits for the first archived file.
func startSlowRun(t *testing.T, edit func(cfg string)) (*runFixture, string, *daemonProc) {
	t.Helper()
	files := map[string]string{}
	for i := range slowRunFiles {
		files[fmt.Sprintf("f%02d.csv", i)] = fmt.Sprintf("row %d\n", i)
	}
	f := newRunFixture(t, files)
	addr := freeAddr(t)
	cfg := f.config(t, addr, `      type: exec
      command: ["sh", "-c", "sleep 1; cat >/dev/null"]
      timeout: 1m
`)
	setConfig(t, cfg, "workers: 4", "workers: 2")
	if edit != nil {
		edit(cfg)
	}
	d := startDaemon(t, cfg, addr)
	waitFor(t, "the first archived file", func() bool { return len(f.keys(t, "imports/archive/")) >= 1 })
	return f, cfg, d
}

// checkStoppedPartWay holds after a run was stopped part-way: some files
// archived, the rest in the inbox, none in both (half-moved), none lost.
func checkStoppedPartWay(t *testing.T, f *runFixture, when string) {
	t.Helper()
	inbox := map[string]bool{}
	for _, k := range f.keys(t, "imports/") {
		if !strings.HasPrefix(k, "imports/archive/") {
			inbox[strings.TrimPrefix(k, "imports/")] = true
		}
	}
	archived := f.keys(t, "imports/archive/")
	if len(archived) == 0 || len(inbox) == 0 {
		t.Fatalf("%s: %d archived, %d in the inbox; want a run stopped part-way", when, len(archived), len(inbox))
	}
	for _, k := range archived {
		base := strings.TrimPrefix(k, "imports/archive/")
		rel := base[:strings.Index(base, ".")] + ".csv"
		if inbox[rel] {
			t.Errorf("%s both archived and in the inbox (half-moved)", rel)
		}
	}
	if len(inbox)+len(archived) != slowRunFiles {
		t.Fatalf("%d in the inbox + %d archived != %d files", len(inbox), len(archived), slowRunFiles)
	}
}

func setConfig(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("config has no %q", old)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A connection failing validation is reported by /readyz and /status and
// touches no file; SIGHUP with a broken file keeps the running config; SIGHUP
// with the fix schedules the connection, which then ingests.
func TestDaemonReadinessAndReload(t *testing.T) {
	f := newRunFixture(t, map[string]string{"a.csv": "a", "b.csv": "b"})
	addr := freeAddr(t)
	cfg := f.config(t, addr, `      type: dir
      path: `+f.dir+`
`)
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The role's policy covers imports/ only: base_path other/ fails the
	// listing check.
	setConfig(t, cfg, "base_path: imports/", "base_path: other/")
	d := startDaemon(t, cfg, addr)
	var body string
	waitFor(t, "/readyz to report the failing connection", func() bool {
		var code int
		code, body = d.get("/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "acme: failing")
	})
	if !strings.Contains(body, "Access denied") && !strings.Contains(body, "AccessDenied") && !strings.Contains(strings.ToLower(body), "denied") {
		t.Errorf("/readyz reason does not say access is denied: %s", body)
	}
	_, st := d.get("/status")
	var status struct {
		Connections []connectionStatus `json:"connections"`
	}
	if err := json.Unmarshal([]byte(st), &status); err != nil {
		t.Fatalf("/status: %v\n%s", err, st)
	}
	if len(status.Connections) != 1 || status.Connections[0].State != "failing" || status.Connections[0].LastError == "" {
		t.Errorf("/status = %s", st)
	}
	if n := len(f.keys(t, "imports/archive/")); n != 0 {
		t.Errorf("a failing connection archived %d files", n)
	}

	// A broken file is rejected and the running configuration kept.
	if err := os.WriteFile(cfg, []byte("connections: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the failed reload metric", func() bool {
		_, m := d.get("/metrics")
		return strings.Contains(m, "s3connector_config_last_reload_successful 0")
	})
	if code, _ := d.get("/healthz"); code != 200 {
		t.Error("daemon unhealthy after a failed reload")
	}

	// The fix: reload, validate, schedule, ingest.
	if err := os.WriteFile(cfg, good, 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "/readyz 200", func() bool { code, _ := d.get("/readyz"); return code == 200 })
	waitFor(t, "both files archived", func() bool { return len(f.keys(t, "imports/archive/")) == 2 })
	waitFor(t, "/status with the last run", func() bool {
		_, st = d.get("/status")
		return strings.Contains(st, `"archived": 2`)
	})
	if err := json.Unmarshal([]byte(st), &status); err != nil {
		t.Fatal(err)
	}
	c := status.Connections[0]
	if c.State != "scheduled" || c.NextRun == nil || c.LastRun == nil || !c.LastRun.OK || c.Waiting == nil || *c.Waiting != 0 {
		t.Errorf("/status after reload = %s", st)
	}
	_, m := d.get("/metrics")
	if !strings.Contains(m, "s3connector_config_last_reload_successful 1") {
		t.Error("reload success not recorded")
	}
	if err := d.signalAndWait(t, syscall.SIGINT); err != nil {
		t.Errorf("exit after SIGINT: %v", err)
	}
}

// A reload that changes one connection restarts that one only: the other
// keeps its supervisor (same state, same since) and is not re-run.
func TestDaemonReloadLeavesOtherConnectionsAlone(t *testing.T) {
	f := newRunFixture(t, map[string]string{"a1.csv": "a", "b1.csv": "b"})
	addr := freeAddr(t)
	cfg := f.config(t, addr, `      type: dir
      path: `+f.dir+`
`)
	raw, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A second connection on the same bucket and role, with its own base
	// path and import directory (overlapping ones are a config error).
	if err := f.srv.Put(t.Context(), f.bucket, "imports-b/b1.csv", []byte("b")); err != nil {
		t.Fatal(err)
	}
	conns := string(raw[bytes.Index(raw, []byte("  - name: acme")):])
	beta := strings.Replace(conns, "name: acme", "name: beta\n    role_name: s3connector-acme", 1)
	beta = strings.Replace(beta, "base_path: imports/", "base_path: imports-b/", 1)
	beta = strings.Replace(beta, "path: "+f.dir, "path: "+t.TempDir(), 1)
	head := string(raw[:bytes.Index(raw, []byte("  - name: acme"))])
	if err := os.WriteFile(cfg, []byte(head+conns+beta), 0o600); err != nil {
		t.Fatal(err)
	}
	// The platform user gets both connections' permissions policies.
	var merged connector.PolicyDocument
	for _, name := range []string{"acme", "beta"} {
		out, stderr, code := runCLI(t, "policy", "--config", cfg, "--connection", name, "--document", "permissions")
		if code != 0 {
			t.Fatalf("policy exited %d: %s", code, stderr)
		}
		var doc connector.PolicyDocument
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		for _, st := range doc.Statement {
			st.Sid = name + st.Sid
			merged.Statement = append(merged.Statement, st)
		}
		merged.Version = doc.Version
	}
	policy, err := json.Marshal(merged)
	if err != nil {
		t.Fatal(err)
	}
	user := "both-" + f.bucket
	if err := f.srv.AddUser(t.Context(), user, user+"-secret", policy); err != nil {
		t.Fatal(err)
	}
	platformEnv(t, user, user+"-secret")
	d := startDaemon(t, cfg, addr)
	type conn struct {
		State string    `json:"state"`
		Since time.Time `json:"since"`
		Last  *struct {
			RunID string `json:"run_id"`
		} `json:"last_run"`
	}
	status := func() map[string]conn {
		_, body := d.get("/status")
		var s struct {
			Connections []struct {
				Name string `json:"name"`
				conn
			} `json:"connections"`
		}
		json.Unmarshal([]byte(body), &s)
		out := map[string]conn{}
		for _, c := range s.Connections {
			out[c.Name] = c.conn
		}
		return out
	}
	waitFor(t, "both connections to finish a run", func() bool {
		s := status()
		return s["acme"].Last != nil && s["beta"].Last != nil
	})
	before := status()
	setConfig(t, cfg, "base_path: imports-b/", "base_path: imports-b/\n    max_files: 10")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "beta restarted and run again", func() bool {
		b := status()["beta"]
		return b.Since.After(before["beta"].Since) && b.Last != nil && b.Last.RunID != before["beta"].Last.RunID
	})
	after := status()["acme"]
	if !after.Since.Equal(before["acme"].Since) || after.Last.RunID != before["acme"].Last.RunID {
		t.Errorf("acme was restarted by a reload that changed only beta: before %+v, after %+v", before["acme"], after)
	}
	if n := len(f.keys(t, "imports/archive/")) + len(f.keys(t, "imports-b/archive/")); n != 3 {
		t.Errorf("archive/ folders hold %d files, want 3", n)
	}
}

// Disabling a connection by reload while it runs (one of the seeds' ways to
// revoke access): its run starts no new file, the files in progress finish
// their move, nothing is half-moved, and the rest stays in the inbox.
func TestDaemonReloadDisablingStopsTheRun(t *testing.T) {
	f, cfg, d := startSlowRun(t, nil)
	setConfig(t, cfg, "status: active", "status: disabled")
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the connection gone from /status", func() bool {
		_, body := d.get("/status")
		return strings.Contains(body, `"connections": []`)
	})
	// The run ends once its files in progress are done (about a second);
	// then nothing may move any more.
	waitFor(t, "the archive to stop growing", func() bool {
		before := len(f.keys(t, "imports/archive/"))
		time.Sleep(2500 * time.Millisecond)
		return len(f.keys(t, "imports/archive/")) == before
	})
	checkStoppedPartWay(t, f, "after the connection was disabled")
	if code, body := d.get("/readyz"); code != 200 {
		t.Errorf("/readyz with no active connection: %d %s", code, body)
	}
	// Its metric series go once its run has ended (none may come back,
	// and no gauge is left at a stale value such as a negative busy count).
	waitFor(t, "the disabled connection's series gone from /metrics", func() bool {
		_, m := d.get("/metrics")
		return !strings.Contains(m, `connection="acme"`)
	})
	time.Sleep(time.Second)
	if _, m := d.get("/metrics"); strings.Contains(m, `connection="acme"`) {
		t.Errorf("series of the disabled connection came back:\n%s", grepLines(m, `connection="acme"`))
	}
	if err := d.signalAndWait(t, syscall.SIGTERM); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// A connection that cannot start (its import directory cannot be created
// yet: a volume not mounted, say) is retried with the validation backoff
// and starts once the problem is gone, without a reload.
func TestDaemonRetriesAConnectionThatCannotStart(t *testing.T) {
	f := newRunFixture(t, map[string]string{"a.csv": "a"})
	addr := freeAddr(t)
	blocker := filepath.Join(t.TempDir(), "not-yet-mounted")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := f.config(t, addr, `      type: dir
      path: `+filepath.Join(blocker, "imports")+`
`)
	d := startDaemon(t, cfg, addr)
	waitFor(t, "/readyz to report the connection that cannot start", func() bool {
		code, body := d.get("/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "cannot start")
	})
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "/readyz 200 after the directory can be made", func() bool { code, _ := d.get("/readyz"); return code == 200 })
	waitFor(t, "a.csv archived", func() bool { return len(f.keys(t, "imports/archive/")) == 1 })
	if _, err := os.Stat(filepath.Join(blocker, "imports", "a.csv")); err != nil {
		t.Errorf("imported file: %v", err)
	}
	if err := d.signalAndWait(t, syscall.SIGTERM); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

// grepLines returns the lines of text containing sub.
func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

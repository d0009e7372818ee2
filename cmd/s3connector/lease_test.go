package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3connector/s3connector/ingest"
)

// plantLease writes a live lease of another process into the fixture's
// connection, as a daemon elsewhere would hold it.
func plantLease(t *testing.T, f *runFixture, holder string) {
	t.Helper()
	now := time.Now().UTC()
	b, err := json.Marshal(map[string]any{
		"holder": holder, "connection": "acme",
		"acquired": now, "renewed": now, "expires": now.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Put(t.Context(), f.bucket, "imports/"+ingest.LeaseKey, b); err != nil {
		t.Fatal(err)
	}
}

// Two daemons (two replicas) on one bucket and connection, with the dir
// importer, while files keep arriving: every file is imported exactly
// once, counted over both import directories, and nothing is lost. Runs
// tick every second in both, so they collide: the test goes on until a
// run was skipped because the other daemon held the lease.
func TestLeaseTwoDaemonsImportEachFileOnce(t *testing.T) {
	f := newRunFixture(t, nil)
	dirs := [2]string{t.TempDir(), t.TempDir()}
	addrs := [2]string{freeAddr(t), freeAddr(t)}
	cfg1 := f.config(t, addrs[0], `      type: dir
      path: `+dirs[0]+`
`)
	setConfig(t, cfg1, `schedule: "@every 1h"`, `schedule: "@every 1s"`)
	setConfig(t, cfg1, "workers: 4", "workers: 2")
	text, err := os.ReadFile(cfg1)
	if err != nil {
		t.Fatal(err)
	}
	cfg2 := filepath.Join(t.TempDir(), "config.yaml")
	second := strings.NewReplacer("listen: "+addrs[0], "listen: "+addrs[1], "path: "+dirs[0], "path: "+dirs[1]).Replace(string(text))
	if err := os.WriteFile(cfg2, []byte(second), 0o600); err != nil {
		t.Fatal(err)
	}
	daemons := [2]*daemonProc{startDaemon(t, cfg1, addrs[0]), startDaemon(t, cfg2, addrs[1])}

	skips := func() int {
		n := 0
		for _, d := range daemons {
			n += strings.Count(d.stderr.String(), "is being processed by")
		}
		return n
	}
	want := map[string]string{}
	const batch = 40
	for b := 0; b < 30 && (b < 3 || skips() == 0); b++ {
		for i := range batch {
			rel := fmt.Sprintf("b%02d/f%02d.csv", b, i)
			want[rel] = fmt.Sprintf("batch %d file %d\n", b, i)
			if err := f.srv.Put(t.Context(), f.bucket, "imports/"+rel, []byte(want[rel])); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	if skips() == 0 {
		t.Fatal("the two daemons never met: no run was skipped for the lease")
	}
	inbox := func() []string {
		var left []string
		for _, k := range f.keys(t, "imports/") {
			if !strings.HasPrefix(k, "imports/archive/") && !strings.HasPrefix(k, "imports/error/") {
				left = append(left, k)
			}
		}
		return left
	}
	waitFor(t, "an empty inbox", func() bool { return len(inbox()) == 0 })
	for _, d := range daemons {
		if err := d.signalAndWait(t, syscall.SIGTERM); err != nil {
			t.Errorf("daemon exit: %v", err)
		}
	}

	got := map[string]int{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, path)
			got[filepath.ToSlash(rel)]++
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if string(b) != want[filepath.ToSlash(rel)] {
				t.Errorf("%s: imported %q", rel, b)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for rel := range want {
		if got[rel] != 1 {
			t.Errorf("%s imported %d times over both daemons", rel, got[rel])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d distinct files imported, want %d", len(got), len(want))
	}
	if n := len(f.keys(t, "imports/archive/")); n != len(want) {
		t.Errorf("archive/ holds %d files, want %d", n, len(want))
	}
	if errs := f.keys(t, "imports/error/"); len(errs) != 0 {
		t.Errorf("error/ holds %v (a released lease leaves nothing)", errs)
	}
	t.Logf("%d files, %d runs skipped for the lease", len(want), skips())
}

// `run --once` next to a daemon that holds the lease: a clear line, no
// file touched, exit 0 (someone else is doing the work; that is not a
// failure). The daemon side: /status reports the run as skipped, not as
// an error of the connection.
func TestLeaseHeldElsewhere(t *testing.T) {
	f := newRunFixture(t, map[string]string{"a.csv": "a"})
	addr := freeAddr(t)
	cfg := f.config(t, addr, `      type: dir
      path: `+f.dir+`
`)
	plantLease(t, f, "other-host/pid-9/0123456789ab")

	out, stderr, code := runCLI(t, "run", "--config", cfg, "--once")
	if code != 0 {
		t.Errorf("run --once exited %d, want 0\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	want := "acme: skipped: connection acme is being processed by other-host/pid-9/0123456789ab (lease until "
	if !strings.HasPrefix(out, want) || !strings.Contains(out, "nothing was done here") {
		t.Errorf("run --once printed %q, want a line starting %q", out, want)
	}
	if !strings.Contains(stderr, "skipping this run") {
		t.Errorf("no skip line in the log:\n%s", stderr)
	}
	if k := f.keys(t, "imports/archive/"); len(k) != 0 {
		t.Errorf("a skipped run archived %v", k)
	}

	d := startDaemon(t, cfg, addr)
	var status struct {
		Connections []struct {
			State     string `json:"state"`
			LastError string `json:"last_error"`
			Waiting   *int   `json:"files_waiting"`
			LastRun   *struct {
				Skipped string `json:"skipped"`
				Error   string `json:"error"`
			} `json:"last_run"`
		} `json:"connections"`
	}
	waitFor(t, "a skipped run in /status", func() bool {
		_, body := d.get("/status")
		if json.Unmarshal([]byte(body), &status) != nil || len(status.Connections) != 1 {
			return false
		}
		return status.Connections[0].LastRun != nil
	})
	c := status.Connections[0]
	if !strings.Contains(c.LastRun.Skipped, "being processed by other-host/pid-9/0123456789ab") || c.LastRun.Error != "" ||
		c.LastError != "" || c.State != "scheduled" || c.Waiting != nil {
		t.Errorf("/status connection %+v, last run %+v: want scheduled, the run skipped, no error", c, *c.LastRun)
	}
	if code, body := d.get("/metrics"); code != 200 || !strings.Contains(body, `s3connector_runs_skipped_total{connection="acme",reason="lease_held"} 1`) {
		t.Errorf("/metrics lacks the lease_held skip:\n%s", grepLines(body, "runs_skipped"))
	}
	if err := d.signalAndWait(t, syscall.SIGTERM); err != nil {
		t.Errorf("daemon exit: %v", err)
	}
}

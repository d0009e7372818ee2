//go:build torture

package torture

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// sinkResult is one sink's part of scenario 5's line.
type sinkResult struct {
	name, line string
}

// Scenario 5, sink failures: three daemons, one per importer type, each
// on its own bucket, their sinks failing from the start:
//   - dir: the import directory is a small tmpfs, which fills up part-way
//     (ENOSPC); then a consumer takes the imported files away, as a
//     downstream loader would, and the rest fit. Without root (no mount)
//     the daemon's RLIMIT_FSIZE does it instead: a write past the limit
//     fails with EFBIG, as a full disk fails it with ENOSPC; then the
//     limit is lifted (EnvFullDisk);
//   - exec: the command crashes (kill -9 of itself, part of the body read)
//     and then hangs (the importer's 2 s timeout ends it);
//   - http: the sink answers 500 and then never answers (the importer's
//     2 s timeout).
//
// While the sink fails no file leaves the inbox unimported (exec and http:
// none at all), none goes to error/; once the sink recovers every file is
// imported and archived. Each ends with the shared checker.
func TestSinkFailures(t *testing.T) {
	t.Parallel()
	const faultFor = 15 * time.Second // per failure mode
	results := []sinkResult{{name: "dir"}, {name: "exec"}, {name: "http"}}
	t.Run("sinks", func(t *testing.T) {
		t.Run("dir", func(t *testing.T) {
			t.Parallel()
			results[0].line = dirSinkFull(t, faultFor)
		})
		t.Run("exec", func(t *testing.T) {
			t.Parallel()
			results[1].line = execSinkFailing(t, faultFor)
		})
		t.Run("http", func(t *testing.T) {
			t.Parallel()
			results[2].line = httpSinkFailing(t, faultFor)
		})
	})
	var parts []string
	for _, r := range results {
		if r.line == "" {
			r.line = "skipped or failed"
		}
		parts = append(parts, r.name+": "+r.line)
	}
	Report(t, "5 sink failures: "+strings.Join(parts, "; "))
}

// EnvFullDisk chooses how scenario 5's dir part fills the disk: "tmpfs"
// (an 8 MiB tmpfs mounted on the import directory: needs root; writes fail
// with ENOSPC) or "fsize" (RLIMIT_FSIZE of the daemon set to fsizeLimit
// with prlimit(2), which needs no privilege for a process of one's own: a
// write past it fails with EFBIG). Default: tmpfs as root, fsize
// otherwise, and fsize when the mount fails.
const EnvFullDisk = "S3CONNECTOR_TORTURE_FULL_DISK"

// fsizeLimit is the daemon's file size limit while "full": about half the
// small files and every large one are over it.
const fsizeLimit = 32 << 10

// dirSinkFull is the dir importer on a full disk: an 8 MiB tmpfs seeded
// with about twice that, or a file size limit (EnvFullDisk).
func dirSinkFull(t *testing.T, stuckFor time.Duration) string {
	mode := os.Getenv(EnvFullDisk)
	switch mode {
	case "":
		mode = "fsize"
		if os.Geteuid() == 0 {
			mode = "tmpfs"
		}
	case "tmpfs", "fsize":
	default:
		t.Fatalf("%s=%q: want tmpfs or fsize", EnvFullDisk, mode)
	}
	dir := t.TempDir()
	if mode == "tmpfs" {
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", dir).CombinedOutput(); err != nil {
			t.Logf("cannot mount a small tmpfs for the dir importer (%v: %s); a file size limit instead", err, strings.TrimSpace(string(out)))
			mode = "fsize"
		} else {
			t.Cleanup(func() {
				if err := syscall.Unmount(dir, 0); err != nil {
					t.Errorf("unmount %s: %v", dir, err)
				}
			})
		}
	}
	full := map[string]string{"tmpfs": "no space left on device", "fsize": "file too large"}[mode]
	spill := t.TempDir() // where the consumer takes imported files
	f := NewFixture(t, FixtureOptions{})
	seeded := f.Seed(SeedOptions{Files: 300, LargeEvery: 50, LargeMin: 1 << 20, LargeMax: 2 << 20})
	addr := FreeAddr(t)
	cfg := f.Config(ConfigOptions{Listen: addr, Schedule: "@every 2s", Dir: dir})
	d := f.StartDaemon(cfg, addr)
	if mode == "fsize" {
		// Before its first import: the daemon validates the connection
		// first, a few S3 round trips.
		if err := setFileSizeLimit(d.cmd.Process.Pid, fsizeLimit); err != nil {
			t.Fatalf("prlimit RLIMIT_FSIZE of the daemon: %v", err)
		}
	}

	// Full: imports fail for stuckFor, the rest waits.
	waitUntil(t, 2*time.Minute, "the import directory to fill up", func() bool { return d.Count(full) > 0 })
	time.Sleep(stuckFor)
	waiting := len(f.Inbox())
	failed := d.Count(full)
	if waiting == 0 {
		t.Fatalf("every file fit in the import directory: seed more")
	}
	if !d.Running() {
		t.Fatalf("the daemon died on the full disk: %s", d.Output())
	}
	// Space again: the consumer takes the imported files away, or the
	// limit is lifted; until all are moved.
	back := time.Now()
	if mode == "fsize" {
		if err := setFileSizeLimit(d.cmd.Process.Pid, math.MaxUint64); err != nil {
			t.Fatalf("prlimit RLIMIT_FSIZE of the daemon: %v", err)
		}
	}
	for len(f.Inbox()) > 0 {
		if time.Since(back) > 3*time.Minute {
			t.Fatalf("%d files still in the inbox 3 minutes after the disk was freed", len(f.Inbox()))
		}
		if mode == "tmpfs" {
			drainDir(t, dir, spill)
		}
		time.Sleep(time.Second)
	}
	recovered := time.Since(back)
	m := d.Metrics()
	d.Signal(syscall.SIGTERM)
	d.Wait(30 * time.Second)
	fig := f.Check(CheckOptions{ImportDirs: []string{dir, spill}})
	how := "an 8 MiB tmpfs (ENOSPC)"
	if mode == "fsize" {
		how = fmt.Sprintf("a %d KiB file size limit (RLIMIT_FSIZE: EFBIG, no root needed)", fsizeLimit>>10)
	}
	return fmt.Sprintf("%s; %d files, %s into %s: %d left waiting while full (%d %q log lines, %d retries counted), all moved %s after the disk was freed",
		fig, seeded.Files, MiB(seeded.Bytes), how, waiting, failed, full, int(m.Sum("s3connector_files_total", `outcome="retry"`)), recovered.Round(time.Second))
}

// setFileSizeLimit sets the soft RLIMIT_FSIZE of process pid to soft
// bytes (at most its hard limit, which stays; math.MaxUint64 lifts it): a write that would make a
// file larger fails with EFBIG ("If the process attempts to extend a file
// beyond this limit, it is sent SIGXFSZ ... if it catches or ignores the
// signal, the call fails with EFBIG", setrlimit(2); Go's runtime ignores
// SIGXFSZ unless asked for it). prlimit(2) on a process of the same user
// needs no privilege, nor does raising a soft limit up to the hard one.
func setFileSizeLimit(pid int, soft uint64) error {
	var lim syscall.Rlimit
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, 0, uintptr(unsafe.Pointer(&lim)), 0, 0); e != 0 {
		return e
	}
	lim.Cur = min(soft, lim.Max)
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, uintptr(unsafe.Pointer(&lim)), 0, 0, 0); e != 0 {
		return e
	}
	return nil
}

// drainDir moves the imported files (not the importer's temp files) from
// dir to spill.
func drainDir(t *testing.T, dir, spill string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".s3connector-") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(spill, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// execSinkFailing runs the exec importer on a script whose behaviour a
// mode file sets: crash, hang, ok.
func execSinkFailing(t *testing.T, faultFor time.Duration) string {
	out := t.TempDir()
	modeFile := filepath.Join(t.TempDir(), "mode")
	setMode := func(m string) {
		if err := os.WriteFile(modeFile, []byte(m), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setMode("crash")
	// ok writes the body under a temp name, then renames it, so the
	// checker never sees a partial file.
	script := `case $(cat ` + modeFile + `) in
crash) head -c 1000 >/dev/null; kill -9 $$ ;;
hang) sleep 600 ;;
*) cat > ` + out + `/.s3connector-$$.tmp && mv ` + out + `/.s3connector-$$.tmp "` + out + `/$S3CONNECTOR_REL_KEY" ;;
esac`
	f := NewFixture(t, FixtureOptions{})
	seeded := f.Seed(SeedOptions{Files: 300, LargeEvery: 100})
	addr := FreeAddr(t)
	cfg := f.Config(ConfigOptions{Listen: addr, Schedule: "@every 2s", Importer: fmt.Sprintf(`      type: exec
      command: ["sh", "-c", %q]
      timeout: 2s
`, script)})
	d := f.StartDaemon(cfg, addr)
	time.Sleep(faultFor)
	crashes := int(d.Metrics().Sum("s3connector_files_total", `outcome="retry"`))
	setMode("hang")
	time.Sleep(faultFor)
	failures := int(d.Metrics().Sum("s3connector_files_total", `outcome="retry"`))
	if n := len(f.Inbox()); n != seeded.Files {
		t.Errorf("%d of %d files left the inbox while the command crashed or hung", seeded.Files-n, seeded.Files)
	}
	setMode("ok")
	back := time.Now()
	f.WaitInboxEmpty(3 * time.Minute)
	recovered := time.Since(back)
	d.Signal(syscall.SIGTERM)
	d.Wait(30 * time.Second)
	fig := f.Check(CheckOptions{ImportDirs: []string{out}})
	return fmt.Sprintf("%s; %d files, %s: %d crashed imports, %d timed out (hung), all moved %s after the command recovered",
		fig, seeded.Files, MiB(seeded.Bytes), crashes, failures-crashes, recovered.Round(time.Second))
}

// httpSinkFailing runs the http importer against httpSink: 500s, then
// no answer at all.
func httpSinkFailing(t *testing.T, faultFor time.Duration) string {
	sink := newHTTPSink(t)
	sink.mode.Store(sinkError)
	f := NewFixture(t, FixtureOptions{})
	seeded := f.Seed(SeedOptions{Files: 300, LargeEvery: 100})
	addr := FreeAddr(t)
	cfg := f.Config(ConfigOptions{Listen: addr, Schedule: "@every 2s", Importer: `      type: http
      url: ` + sink.URL + `
      timeout: 2s
`})
	d := f.StartDaemon(cfg, addr)
	time.Sleep(faultFor)
	errors500 := sink.failed.Load()
	sink.mode.Store(sinkHang)
	time.Sleep(faultFor)
	hung := sink.failed.Load() - errors500
	if n := len(f.Inbox()); n != seeded.Files {
		t.Errorf("%d of %d files left the inbox while the sink failed", seeded.Files-n, seeded.Files)
	}
	sink.mode.Store(sinkOK)
	back := time.Now()
	f.WaitInboxEmpty(3 * time.Minute)
	recovered := time.Since(back)
	d.Signal(syscall.SIGTERM)
	d.Wait(30 * time.Second)
	fig := f.Check(CheckOptions{ImportDirs: []string{sink.Dir}})
	return fmt.Sprintf("%s; %d files, %s: %d answered 500, %d never answered (timed out), all moved %s after the sink recovered",
		fig, seeded.Files, MiB(seeded.Bytes), errors500, hung, recovered.Round(time.Second))
}

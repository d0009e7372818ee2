//go:build torture

package torture

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3connector/s3connector/connector"
)

// Scenario 6, two writers: two daemons on one connection (two replicas,
// each with its own import directory), a 1 s schedule, new files arriving;
// three times the daemon holding the lease is killed mid-run and started
// again a second later. What is checked:
//   - I12, one writer: no two runs of the connection overlap in time,
//     read from both daemons' logs (a killed run ends at its kill).
//   - every file imported at least once, into one directory or the other,
//     byte for byte, and archived exactly once (the checker);
//   - files imported by both: only those the killed daemon had imported
//     and not yet moved (at-least-once, I5), so at most its workers plus
//     its pending moves (2 × workers) per kill; the count is in the line.
func TestTwoWriters(t *testing.T) {
	t.Parallel()
	const (
		kills   = 3
		workers = 4
	)
	f := NewFixture(t, FixtureOptions{})
	seeded := f.Seed(SeedOptions{Files: 1500, LargeEvery: 150})
	dirs := []string{t.TempDir(), t.TempDir()}
	addrs := []string{FreeAddr(t), FreeAddr(t)}
	var cfgs []string
	for i := range 2 {
		cfgs = append(cfgs, f.Config(ConfigOptions{Listen: addrs[i], Dir: dirs[i], LeaseTTL: 2 * time.Second, Schedule: "@every 1s", Workers: workers}))
	}
	daemons := []*Daemon{f.StartDaemon(cfgs[0], addrs[0]), f.StartDaemon(cfgs[1], addrs[1])}
	var all []*Daemon
	all = append(all, daemons...)
	start := time.Now()
	for k := 0; k < kills; k++ {
		// Wait for a run in progress with some files moved by it.
		var holder int
		deadline := time.Now().Add(90 * time.Second)
		for {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: no daemon held the lease mid-run within 90 s", k+1)
			}
			holder = -1
			for i, d := range daemons {
				if d.HoldsLease() {
					holder = i
				}
			}
			if holder >= 0 {
				before := len(f.Keys(connector.ArchiveFolder))
				time.Sleep(time.Duration(300+200*k) * time.Millisecond)
				if daemons[holder].HoldsLease() && len(f.Keys(connector.ArchiveFolder)) > before {
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
			if len(f.Inbox()) < 300 {
				s := f.Seed(SeedOptions{Files: 400, Prefix: fmt.Sprintf("late-%d/", time.Now().UnixNano()%1e6), LargeEvery: 150})
				seeded.Files, seeded.Bytes = seeded.Files+s.Files, seeded.Bytes+s.Bytes
			}
		}
		daemons[holder].Kill()
		time.Sleep(time.Second)
		daemons[holder] = f.StartDaemon(cfgs[holder], addrs[holder])
		all = append(all, daemons[holder])
		if k < kills-1 {
			s := f.Seed(SeedOptions{Files: 400, Prefix: fmt.Sprintf("after-kill-%d/", k), LargeEvery: 150})
			seeded.Files, seeded.Bytes = seeded.Files+s.Files, seeded.Bytes+s.Bytes
		}
	}
	f.WaitInboxEmpty(3 * time.Minute)
	skips := 0
	for _, d := range daemons {
		skips += int(d.Metrics().Sum("s3connector_runs_skipped_total", `reason="lease_held"`))
		d.Signal(syscall.SIGTERM)
		if err, ok := d.Wait(30 * time.Second); !ok || err != nil {
			t.Errorf("daemon did not stop cleanly on SIGTERM: %v", err)
		}
	}

	// I12: the runs of all processes, as intervals, never overlap.
	var runs []runSpan
	for i, d := range all {
		runs = append(runs, runSpans(t, i, d.Proc)...)
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].from.Before(runs[j].from) })
	overlaps := 0
	for i := 1; i < len(runs); i++ {
		if runs[i].from.Before(runs[i-1].to) && runs[i].proc != runs[i-1].proc {
			overlaps++
			if overlaps <= 3 {
				t.Errorf("I12: a run of process %d (%s – %s) overlaps one of process %d (%s – %s)", runs[i].proc,
					runs[i].from.Format(time.StampMilli), runs[i].to.Format(time.StampMilli), runs[i-1].proc,
					runs[i-1].from.Format(time.StampMilli), runs[i-1].to.Format(time.StampMilli))
			}
		}
	}
	fig := f.Check(CheckOptions{ImportDirs: dirs, AllowReimport: true})
	if limit := kills * 3 * workers; fig.ImportedTwice > limit {
		t.Errorf("%d files imported by both daemons, more than the %d that %d kills can leave between import and move (workers + 2 × workers pending moves each)",
			fig.ImportedTwice, limit, kills)
	}
	Report(t, fmt.Sprintf("6 two writers: 2 daemons on one connection, %s files (%s), the lease holder SIGKILLed mid-run %d times and restarted; %d runs, 0 overlapping (%d overlaps), %d skipped for the lease; %d files imported by both (at-least-once, killed between import and move), each archived once, %s: %s",
		Thousands(seeded.Files), MiB(seeded.Bytes), kills, len(runs), overlaps, skips, fig.ImportedTwice, time.Since(start).Round(time.Second), fig))
}

// runSpan is one run of the connection in one process's log.
type runSpan struct {
	proc     int
	from, to time.Time
}

// runSpans reads a process's runs from its log: "run started" to "run
// finished" or "run stopped early"; a run the process was killed in ends
// when the log ends (the kill came later still; the lease covered it
// until it expired, which the others wait out).
func runSpans(t *testing.T, proc int, p *Proc) []runSpan {
	var spans []runSpan
	var open *runSpan
	var last time.Time
	for _, line := range strings.Split(p.Output(), "\n") {
		var rec struct {
			TS  string `json:"ts"`
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.TS == "" {
			continue
		}
		ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", rec.TS)
		if err != nil {
			t.Fatalf("log time %q: %v", rec.TS, err)
		}
		last = ts
		switch rec.Msg {
		case "run started":
			open = &runSpan{proc: proc, from: ts}
		case "run finished", "run stopped early":
			if open != nil {
				open.to = ts
				spans = append(spans, *open)
				open = nil
			}
		}
	}
	if open != nil {
		open.to = last
		spans = append(spans, *open)
	}
	return spans
}

//go:build torture

package torture

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3connector/s3connector/connector"
)

// Scenario 2, network: toxiproxy between the daemon and MinIO (the S3
// endpoint and the STS endpoint both through it) while the daemon runs on
// a 1 s schedule; for faultsFor the proxy cycles through latency with
// jitter, connection resets, stalls that time out (the timeout toxic:
// nothing gets through, then the connection is closed), sliced answers and
// a bandwidth cap, each for a few seconds with a clean second between.
// The daemon must make progress during the faults and, once the network
// is clean, finish with the invariants intact: no file in error/ for a
// network fault (I4), nothing lost or archived twice (I1, I2).
func TestNetwork(t *testing.T) {
	t.Parallel()
	const faultsFor = 75 * time.Second
	f := NewFixture(t, FixtureOptions{})
	seeded := f.Seed(SeedOptions{Files: 2000, LargeEvery: 80})
	tp := StartToxiproxy(t)
	px := tp.Proxy("s3", f.Srv.Endpoint)
	addr := FreeAddr(t)
	cfg := f.Config(ConfigOptions{Listen: addr, Endpoint: px.URL, STSEndpoint: px.URL, Schedule: "@every 1s", Workers: 4})

	faults := []Toxic{
		{Type: "latency", Attributes: map[string]any{"latency": 150, "jitter": 150}},
		{Type: "reset_peer", Toxicity: 0.5, Attributes: map[string]any{"timeout": 500}},
		{Type: "timeout", Toxicity: 0.5, Attributes: map[string]any{"timeout": 1500}},
		{Type: "slicer", Attributes: map[string]any{"average_size": 64, "size_variation": 48, "delay": 200}},
		{Type: "bandwidth", Attributes: map[string]any{"rate": 512}}, // KB/s
		// Answers cut off after 64 KiB: bodies end early.
		{Type: "limit_data", Toxicity: 0.5, Attributes: map[string]any{"bytes": 64 << 10}},
		{Type: "latency", Stream: "upstream", Attributes: map[string]any{"latency": 300, "jitter": 300}},
		{Type: "reset_peer", Stream: "upstream", Toxicity: 0.3, Attributes: map[string]any{"timeout": 0}},
		// A stall that never times out by itself: nothing gets through
		// until the toxic is removed (then the connection carries on,
		// whatever was dropped lost). Only the client's own timeouts help.
		{Type: "timeout", Name: "stall", Toxicity: 0.3, Attributes: map[string]any{"timeout": 0}},
	}
	d := f.StartDaemon(cfg, addr)
	start := time.Now()
	applied := map[string]int{}
	progress := []int{} // files archived during each fault
	for i := 0; time.Since(start) < faultsFor; i++ {
		x := faults[i%len(faults)]
		before := len(f.Keys(connector.ArchiveFolder))
		if err := px.Add(x); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Second)
		if err := px.Clear(); err != nil {
			t.Fatal(err)
		}
		applied[toxicLabel(x)]++
		progress = append(progress, len(f.Keys(connector.ArchiveFolder))-before)
		time.Sleep(time.Second)
		if len(f.Inbox()) < 300 {
			s := f.Seed(SeedOptions{Files: 300, Prefix: fmt.Sprintf("late-%d/", i), LargeEvery: 80})
			seeded.Files, seeded.Bytes = seeded.Files+s.Files, seeded.Bytes+s.Bytes
		}
	}
	duringFaults := len(f.Keys(connector.ArchiveFolder))
	stalled := 0
	for _, n := range progress {
		if n == 0 {
			stalled++
		}
	}
	clean := time.Now()
	f.WaitInboxEmpty(3 * time.Minute)
	finish := time.Since(clean)
	m := d.Metrics()
	d.Signal(syscall.SIGTERM)
	if err, ok := d.Wait(30 * time.Second); !ok || err != nil {
		t.Errorf("daemon did not stop cleanly on SIGTERM: %v", err)
	}
	if duringFaults == 0 {
		t.Errorf("no file archived during %s of network faults", faultsFor)
	}
	var kinds []string
	for _, x := range faults {
		if n := applied[toxicLabel(x)]; n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s ×%d", toxicLabel(x), n))
		}
	}
	fig := f.Check(CheckOptions{})
	Report(t, fmt.Sprintf("2 network: %s files (%s) through toxiproxy, %s of faults (%s, 4 s each); %d archived during the faults (%d of %d fault windows without progress), the rest %s after; %.0f S3 request attempts failed (%.0f ok), %.0f file attempts left for a later run, %.0f runs failed: %s",
		Thousands(seeded.Files), MiB(seeded.Bytes), faultsFor, strings.Join(kinds, ", "), duringFaults, stalled, len(progress),
		finish.Round(time.Second), m.Sum("s3connector_s3_requests_total")-m.Sum("s3connector_s3_requests_total", `result="ok"`),
		m.Sum("s3connector_s3_requests_total", `result="ok"`), m.Sum("s3connector_files_total", `outcome="retry"`),
		m.Sum("s3connector_runs_total", `result="failure"`), fig))
}

// toxicLabel names a toxic in the figures: its type, and "upstream" for
// one on the requests.
func toxicLabel(x Toxic) string {
	if x.Name == "stall" {
		return "stall"
	}
	if x.Stream == "upstream" {
		return x.Type + " (upstream)"
	}
	return x.Type
}

//go:build torture

package torture

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// EnvUptime sets scenario 7's duration (a Go duration; default 10m, what
// `make torture` runs): `S3CONNECTOR_TORTURE_UPTIME=2m go test -tags
// torture -run LongUptime ./torture/` is a quick local run.
const EnvUptime = "S3CONNECTOR_TORTURE_UPTIME"

// uptimeSample is one scrape of the daemon's own process metrics.
type uptimeSample struct {
	at                     time.Duration
	goroutines, fds, heapB float64
}

// Scenario 7, long uptime: the daemon on a 1 s schedule for 10 minutes
// with a steady trickle of uploads (3 files a second, a multi-MiB one every
// 20 s) and four SIGHUP reloads (workers 4 → 6 → 4 → 6 → 4, so each reload
// retires and rebuilds the connection's runner). Goroutines, open file
// descriptors and heap in use, read from the daemon's /metrics every 5 s,
// must stay flat: the median of the last minute at most 20% above the
// median of the first minute (after 30 s of warm-up) plus a small constant
// (10 goroutines, 10 descriptors, 4 MiB of heap). Every file is moved. A
// series that reads 0 (missing from /metrics) fails the scenario: 0 would
// pass as flat.
func TestLongUptime(t *testing.T) {
	t.Parallel()
	total := 10 * time.Minute
	if v := os.Getenv(EnvUptime); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			t.Fatalf("%s=%q: want a duration of at least 1m", EnvUptime, v)
		}
		total = d
	}
	warmup, window := min(30*time.Second, total/8), min(time.Minute, total/4)

	f := NewFixture(t, FixtureOptions{})
	addr := FreeAddr(t)
	cfg := f.Config(ConfigOptions{Listen: addr, Schedule: "@every 1s", Workers: 4})
	d := f.StartDaemon(cfg, addr)
	waitUntil(t, time.Minute, "the daemon's /metrics", func() bool { return d.Metrics() != nil })

	var samples []uptimeSample
	zeroSamples := 0
	uploaded, reloads, tick := Seeded{}, 0, 0
	workers := 4
	start := time.Now()
	nextSample := time.Duration(0)
	for elapsed := time.Duration(0); elapsed < total; elapsed = time.Since(start) {
		s := f.Seed(SeedOptions{Files: 3, Prefix: fmt.Sprintf("tick%05d-", tick), LargeEvery: map[bool]int{true: 3, false: 0}[tick%20 == 19], LargeMax: 4 << 20})
		uploaded.Files += s.Files
		uploaded.Bytes += s.Bytes
		tick++
		if elapsed >= nextSample {
			if m := d.Metrics(); m != nil {
				u := uptimeSample{elapsed, m.Sum("go_goroutines"), m.Sum("process_open_fds"), m.Sum("go_memstats_heap_inuse_bytes")}
				samples = append(samples, u)
				// A series missing from /metrics reads 0, and 0 is flat:
				// such a sample proves nothing.
				if u.goroutines == 0 || u.fds == 0 || u.heapB == 0 {
					zeroSamples++
					if zeroSamples == 1 {
						t.Errorf("/metrics at %s: goroutines %v, open fds %v, heap in use %v: a series is missing (reads 0), so flatness cannot be told",
							elapsed.Round(time.Second), u.goroutines, u.fds, u.heapB)
					}
				}
			} else {
				t.Errorf("no /metrics at %s", elapsed.Round(time.Second))
			}
			nextSample += 5 * time.Second
		}
		if reloads < 4 && elapsed >= total*time.Duration(reloads+1)/5 {
			next := map[int]int{4: 6, 6: 4}[workers]
			b, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			edited := strings.Replace(string(b), fmt.Sprintf("workers: %d\n", workers), fmt.Sprintf("workers: %d\n", next), 1)
			if err := os.WriteFile(cfg, []byte(edited), 0o600); err != nil {
				t.Fatal(err)
			}
			workers = next
			d.Signal(syscall.SIGHUP)
			reloads++
		}
		time.Sleep(time.Second - time.Since(start)%time.Second)
	}
	f.WaitInboxEmpty(2 * time.Minute)
	m := d.Metrics()
	d.Signal(syscall.SIGTERM)
	if err, ok := d.Wait(30 * time.Second); !ok || err != nil {
		t.Errorf("daemon did not stop cleanly on SIGTERM: %v (in time: %v)", err, ok)
	}
	if n := d.Count(`"msg":"configuration reloaded"`); n != reloads {
		t.Errorf("%d reloads logged, want %d", n, reloads)
	}

	median := func(from, to time.Duration, v func(uptimeSample) float64) float64 {
		var xs []float64
		for _, s := range samples {
			if s.at >= from && s.at < to {
				xs = append(xs, v(s))
			}
		}
		if len(xs) == 0 {
			return 0
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	if len(samples) < 2 {
		t.Fatalf("%d samples of /metrics in %s", len(samples), total)
	}
	last := samples[len(samples)-1].at
	type series struct {
		name  string
		slack float64
		v     func(uptimeSample) float64
		unit  func(float64) string
	}
	count := func(x float64) string { return fmt.Sprint(int(x)) }
	var figures []string
	for _, s := range []series{
		{"goroutines", 10, func(u uptimeSample) float64 { return u.goroutines }, count},
		{"open fds", 10, func(u uptimeSample) float64 { return u.fds }, count},
		{"heap in use", 4 << 20, func(u uptimeSample) float64 { return u.heapB }, func(x float64) string { return MiB(int64(x)) }},
	} {
		first, end := median(warmup, warmup+window, s.v), median(last-window, last+1, s.v)
		figures = append(figures, fmt.Sprintf("%s %s → %s", s.name, s.unit(first), s.unit(end)))
		if first == 0 || end == 0 {
			t.Errorf("%s read 0 from /metrics (median %s in the first minute, %s in the last): nothing was measured", s.name, s.unit(first), s.unit(end))
		}
		if end > first*1.2+s.slack {
			t.Errorf("%s not flat: median %s in the first minute, %s in the last (limit 120%% + %s)", s.name, s.unit(first), s.unit(end), s.unit(s.slack))
		}
	}
	fig := f.Check(CheckOptions{})
	Report(t, fmt.Sprintf("7 long uptime: %s; %s on a 1 s schedule (%d runs), %s files (%s) uploaded 3 a second, %d SIGHUP reloads; first-minute vs last-minute medians: %s (flat: ≤ 120%% + 10 / 10 / 4 MiB)",
		fig, total, int(m.Sum("s3connector_runs_total")), Thousands(uploaded.Files), MiB(uploaded.Bytes), reloads, strings.Join(figures, ", ")))
}

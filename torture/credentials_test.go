//go:build torture

package torture

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/s3connector/s3connector/connector"
)

// Scenario 4, expiring credentials. The assumed-role credentials are
// renewed every few seconds during the runs (MinIO's STS, like AWS's,
// refuses sessions under 900 s, so the test-only knobs ask for 15 minutes
// and a refresh window just short of it), and in the middle of a run the
// STS endpoint (the connection's sts_endpoint, behind stsProxy) is first
// cut off — every connection reset — and then a black hole that accepts
// and never answers, the calls it holds never released. The run must go
// on after STS is back, every renewal counted in
// s3connector_assume_role_total, and no file blamed: nothing in error/.
func TestExpiringCredentials(t *testing.T) {
	t.Parallel()
	const (
		renewEvery = 3 * time.Second
		cutFor     = 20 * time.Second
		stallFor   = 20 * time.Second
	)
	f := NewFixture(t, FixtureOptions{})
	seeded := f.Seed(SeedOptions{Files: 2000, LargeEvery: 250})
	sts := newSTSProxy(t, f.Srv.Endpoint)
	// A sink taking 25 ms a file makes the first run last about 30 s.
	sink := newHTTPSink(t)
	sink.delay.Store(int64(25 * time.Millisecond))
	f.ExtraEnv = []string{
		connector.EnvTestSessionDuration + "=15m",
		connector.EnvTestRefreshWindow + "=" + (15*time.Minute - renewEvery).String(),
	}
	addr := FreeAddr(t)
	cfg := f.Config(ConfigOptions{Listen: addr, STSEndpoint: sts.URL, Schedule: "@every 2s", Workers: 2, Importer: `      type: http
      url: ` + sink.URL + `
`})
	d := f.StartDaemon(cfg, addr)
	start := time.Now()

	// The first run is under way, its credentials renewed several times:
	// cut STS off.
	waitUntil(t, 2*time.Minute, "four AssumeRole calls", func() bool { return sts.ok.Load() >= 4 })
	firstRunRenewals := sts.ok.Load()
	if n := d.Count(`"msg":"run finished"`); n > 0 {
		t.Errorf("the first run finished before STS was cut off: make it longer")
	}
	sts.mode.Store(stsReset)
	time.Sleep(cutFor)
	sts.mode.Store(stsStall)
	time.Sleep(stallFor)
	sts.mode.Store(stsPass)
	back := time.Now()
	archivedAtRecovery := len(f.Keys(connector.ArchiveFolder))

	f.WaitInboxEmpty(3 * time.Minute)
	recovered := time.Since(back)
	m := d.Metrics()
	d.Signal(syscall.SIGTERM)
	d.Wait(30 * time.Second)

	okCalls := m.Sum("s3connector_assume_role_total", `result="success"`)
	failed := m.Sum("s3connector_assume_role_total", `result="failure"`)
	if okCalls < 5 {
		t.Errorf("s3connector_assume_role_total{result=\"success\"} = %v: the credentials were not renewed every %s", okCalls, renewEvery)
	}
	if int64(okCalls) != sts.ok.Load() {
		t.Errorf("s3connector_assume_role_total{result=\"success\"} = %v, but STS answered %d AssumeRole calls", okCalls, sts.ok.Load())
	}
	if failed == 0 {
		t.Errorf("no failed AssumeRole counted during the %s outage", cutFor+stallFor)
	}
	if n := d.Count(`"msg":"run finished"`); n == 0 {
		t.Errorf("no run finished")
	}
	fig := f.Check(CheckOptions{ImportDirs: []string{sink.Dir}})
	Report(t, fmt.Sprintf("4 expiring credentials: %s; %s files, %s; renewed every %s: %d AssumeRole (%d during the first run before the outage, %d failed) in %s; STS reset %s then black-holed %s mid-run (%d calls cut); %d archived before, the rest %s after recovery; 0 in error/",
		fig, Thousands(seeded.Files), MiB(seeded.Bytes), renewEvery, int(okCalls), firstRunRenewals, int(failed),
		time.Since(start).Round(time.Second), cutFor, stallFor, sts.cut.Load(), archivedAtRecovery, recovered.Round(time.Second)))
}

// waitUntil polls cond every 200 ms for up to timeout, then fails the test.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

//go:build torture

package torture

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Scenario 3, throttling: a proxy in front of MinIO (miniotest.Proxy)
// answers, for throttleFor, a share of the S3 requests itself: 503
// SlowDown (as S3 does when a prefix is over its request rate) and some
// 500 InternalError; then it passes everything. The daemon must back off
// and retry — every throttled attempt is counted in
// s3connector_s3_requests_total{result="throttled"} and followed by a
// successful retry — never fail a call with "retry quota exceeded" (the
// SDK's shared retry quota, which the connector disables), and send no
// good file to error/ (I4): a file whose retries all failed is left in the
// inbox and taken by a later run. The backoff is asserted: fewer requests
// a second while throttled than once clean, and files archived meanwhile.
func TestThrottling(t *testing.T) {
	t.Parallel()
	const (
		throttleFor = 60 * time.Second
		slowDown    = 0.25 // share of S3 requests answered 503 SlowDown
		internal    = 0.05 // and 500 InternalError
	)
	f := NewFixture(t, FixtureOptions{})
	seeded := f.Seed(SeedOptions{Files: 2500, LargeEvery: 250})
	px := f.Srv.NewProxy(t)
	var (
		mu             sync.Mutex
		rnd            = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
		answered503    atomic.Int64
		answered500    atomic.Int64
		throttling     atomic.Bool
		requestsDuring atomic.Int64
	)
	throttling.Store(true)
	px.Answer(func(r *http.Request) (int, string, bool) {
		// STS (POST /) passes: this is about S3's answers.
		if !throttling.Load() || r.URL.Path == "/" {
			return 0, "", false
		}
		requestsDuring.Add(1)
		mu.Lock()
		x := rnd.Float64()
		mu.Unlock()
		switch {
		case x < slowDown:
			answered503.Add(1)
			return http.StatusServiceUnavailable, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`, true
		case x < slowDown+internal:
			answered500.Add(1)
			return http.StatusInternalServerError, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>`, true
		}
		return 0, "", false
	})
	addr := FreeAddr(t)
	cfg := f.Config(ConfigOptions{Listen: addr, Endpoint: px.URL, Schedule: "@every 1s", Workers: 8})
	d := f.StartDaemon(cfg, addr)
	start := time.Now()
	for time.Since(start) < throttleFor {
		time.Sleep(2 * time.Second)
		if len(f.Inbox()) < 400 {
			s := f.Seed(SeedOptions{Files: 500, Prefix: fmt.Sprintf("late-%d/", time.Now().Unix()), LargeEvery: 250})
			seeded.Files, seeded.Bytes = seeded.Files+s.Files, seeded.Bytes+s.Bytes
		}
	}
	during := d.Metrics()
	throttling.Store(false)
	clean := time.Now()
	f.WaitInboxEmpty(3 * time.Minute)
	finish := time.Since(clean)
	m := d.Metrics()
	d.Signal(syscall.SIGTERM)
	if err, ok := d.Wait(30 * time.Second); !ok || err != nil {
		t.Errorf("daemon did not stop cleanly on SIGTERM: %v", err)
	}

	throttled := m.Sum("s3connector_s3_requests_total", `result="throttled"`)
	errored := m.Sum("s3connector_s3_requests_total", `result="error"`)
	ok := m.Sum("s3connector_s3_requests_total", `result="ok"`)
	// Every answer we gave is an attempt the daemon counted (the hook sees
	// each attempt, retries included): 503 SlowDown as throttled; 500 is
	// throttling too in the SDK's eyes only by retry, so it may be counted
	// as error or throttled.
	if int64(throttled+errored) < answered503.Load()+answered500.Load() {
		t.Errorf("s3_requests_total throttled %.0f + error %.0f < the %d 503 and %d 500 answers given: attempts not counted",
			throttled, errored, answered503.Load(), answered500.Load())
	}
	if throttled == 0 || during.Sum("s3connector_s3_requests_total", `result="throttled"`) == 0 {
		t.Error("no throttled request counted")
	}
	if n := strings.Count(allOutput(f), "retry quota exceeded"); n > 0 {
		t.Errorf(`"retry quota exceeded" %d times in the output`, n)
	}
	retried := m.Sum("s3connector_files_total", `outcome="retry"`)
	// Backing off shows as the request rate: low while throttled, high
	// once clean. The proxy answers a throttled attempt at once, without
	// MinIO's work, so a client that retried without waiting would send
	// more requests a second while throttled, not fewer.
	all := "s3connector_s3_requests_total"
	rateThrottled := during.Sum(all) / throttleFor.Seconds()
	cleanRequests := m.Sum(all) - during.Sum(all)
	rateClean := cleanRequests / finish.Seconds()
	switch {
	case cleanRequests < 100:
		t.Errorf("only %.0f requests after the throttling: too few files left to compare the rates (seed more)", cleanRequests)
	case rateThrottled >= rateClean:
		t.Errorf("%.0f requests/s while throttled, %.0f/s clean: no backoff", rateThrottled, rateClean)
	}
	// And the retries got through: files were archived while throttled.
	if n := during.Sum("s3connector_files_total", `outcome="archived"`); n == 0 {
		t.Errorf("no file archived during %s of throttling: the retries never succeeded", throttleFor)
	}
	fig := f.Check(CheckOptions{})
	Report(t, fmt.Sprintf("3 throttling: %s files (%s), %s of %.0f%% 503 SlowDown and %.0f%% 500 InternalError on S3 (%d and %d answered of %d requests); requests_total: %.0f throttled, %.0f error, %.0f ok, %.0f requests/s while throttled (backing off) vs %.0f/s clean; %.0f file attempts left for a later run, 0 \"retry quota exceeded\", the rest %s after: %s",
		Thousands(seeded.Files), MiB(seeded.Bytes), throttleFor, slowDown*100, internal*100, answered503.Load(), answered500.Load(), requestsDuring.Load(),
		throttled, errored, ok, rateThrottled, rateClean, retried, finish.Round(time.Second), fig))
}

// allOutput is every process's output so far.
func allOutput(f *Fixture) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, p := range f.procs {
		b.WriteString(p.Output())
	}
	return b.String()
}

package metrics

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// allMetrics is every metric family New registers, once each has a series.
var allMetrics = []string{
	"s3connector_files_total",
	"s3connector_bytes_total",
	"s3connector_import_duration_seconds",
	"s3connector_runs_total",
	"s3connector_run_duration_seconds",
	"s3connector_last_run_timestamp_seconds",
	"s3connector_last_successful_run_timestamp_seconds",
	"s3connector_runs_skipped_total",
	"s3connector_last_run_start_timestamp_seconds",
	"s3connector_next_run_timestamp_seconds",
	"s3connector_last_scheduled_run_timestamp_seconds",
	"s3connector_inbox_files",
	"s3connector_files_skipped_total",
	"s3connector_files_skipped",
	"s3connector_moves_blocked_total",
	"s3connector_files_blocked",
	"s3connector_importer_panics_total",
	"s3connector_processing_panics_total",
	"s3connector_workers",
	"s3connector_workers_busy",
	"s3connector_s3_requests_total",
	"s3connector_assume_role_total",
	"s3connector_credentials_expiry_timestamp_seconds",
	"s3connector_schedule_interval_seconds",
	"s3connector_connection_up",
	"s3connector_config_last_reload_successful",
	"s3connector_config_last_reload_success_timestamp_seconds",
	"s3connector_build_info",
}

func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m, reg
}

// exercise calls every method for connection, so that every per-connection
// metric has at least one series.
func exercise(m *Metrics, connection string) {
	end := time.Unix(1_700_000_000, 0)
	m.Init(connection)
	m.SetWorkers(connection, 4)
	m.SetWaiting(connection, 12)
	m.WorkerBusy(connection, 1)
	m.WorkerBusy(connection, 1)
	m.WorkerBusy(connection, -1)
	m.FileDone(connection, OutcomeArchived, 1024)
	m.FileDone(connection, OutcomeErrored, 10)
	m.FileDone(connection, OutcomeRetry, 0)
	m.ObserveImport(connection, 250*time.Millisecond)
	m.RunFinished(connection, 3*time.Second, true, end)
	m.RunFinished(connection, time.Second, false, end.Add(time.Minute))
	m.RunSkipped(connection, RunSkipOverlap)
	m.RunSkipped(connection, RunSkipLeaseHeld)
	m.RunStarted(connection, end.Add(-3*time.Second))
	m.SetNextRun(connection, end.Add(5*time.Minute))
	m.SetLastScheduledRun(connection, end.Add(-3*time.Second))
	m.FileSkipped(connection, SkipSSEC)
	m.FileSkipped(connection, SkipArchivedStorage)
	m.SetSkipped(connection, 2)
	m.MoveBlocked(connection, OpCopy)
	m.MoveBlocked(connection, OpDelete)
	m.SetBlocked(connection, 1)
	m.PanicRecovered(connection)
	m.ProcessingPanicRecovered(connection)
	m.S3Request(connection, "ListObjectsV2", S3ResultOK)
	m.S3Request(connection, "GetObject", S3ResultThrottled)
	m.S3Request(connection, "CopyObject", S3ResultPreconditionFailed)
	m.AssumeRole(connection, nil, end.Add(time.Hour))
	m.AssumeRole(connection, errors.New("access denied"), time.Time{})
	m.SetScheduleInterval(connection, 5*time.Minute)
	m.SetUp(connection, true)
}

// promtoolPath finds promtool the way the Makefile installs it: in
// $S3CONNECTOR_TOOLS, else in <repo root>/.cache/bin.
func promtoolPath(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("S3CONNECTOR_TOOLS")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			t.Fatalf("find repository root: %v", err)
		}
		dir = filepath.Join(root, ".cache", "bin")
	}
	path := filepath.Join(dir, "promtool")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("promtool not found (%v): run `make tools` to build it into %s", err, dir)
	}
	return path
}

// repoRoot walks up from the working directory to the directory holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// TestPromtoolCheckMetrics scrapes the registry over HTTP, as Prometheus
// would, and lints the exposition with `promtool check metrics`: naming,
// units, _total suffixes and HELP text.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := promtoolPath(t)
	m, reg := newTestMetrics(t)
	m.SetBuildInfo("v1.2.3", "abc1234")
	m.ConfigReload(true, time.Unix(1_700_000_000, 0))
	for _, c := range []string{"alpha", "beta"} {
		exercise(m, c)
	}

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read scrape: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape status %d: %s", resp.StatusCode, body)
	}
	for _, name := range allMetrics {
		if !bytes.Contains(body, []byte("# HELP "+name+" ")) {
			t.Errorf("scrape has no HELP for %s", name)
		}
	}

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\nscrape:\n%s", err, out, body)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Fatalf("promtool check metrics reported problems:\n%s", s)
	}
}

// TestLint runs client_golang's copy of the same linter, so that a naming
// problem also shows without promtool.
func TestLint(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.SetBuildInfo("v1.2.3", "abc1234")
	m.ConfigReload(false, time.Now())
	exercise(m, "alpha")
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
}

func TestInitCreatesZeroSeries(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.Init("alpha")
	m.Init("alpha") // idempotent

	const want = `
# HELP s3connector_files_total Files finished by a run, by outcome: archived (imported), errored (rejected by the importer, moved to error/), retry (left in the inbox by a transient failure).
# TYPE s3connector_files_total counter
s3connector_files_total{connection="alpha",outcome="archived"} 0
s3connector_files_total{connection="alpha",outcome="errored"} 0
s3connector_files_total{connection="alpha",outcome="retry"} 0
# HELP s3connector_runs_skipped_total Scheduled runs skipped, by reason: overlap (the connection's previous run was still going) or lease_held (another process holds the connection's lease).
# TYPE s3connector_runs_skipped_total counter
s3connector_runs_skipped_total{connection="alpha",reason="lease_held"} 0
s3connector_runs_skipped_total{connection="alpha",reason="overlap"} 0
# HELP s3connector_files_skipped_total Files a run could not read or copy at all and left in the inbox without failing the run, by reason: sse_c (encrypted with a customer-provided key), archived_storage_class (Glacier Flexible Retrieval or Deep Archive).
# TYPE s3connector_files_skipped_total counter
s3connector_files_skipped_total{connection="alpha",reason="archived_storage_class"} 0
s3connector_files_skipped_total{connection="alpha",reason="sse_c"} 0
# HELP s3connector_moves_blocked_total Move steps denied by the role's permissions, a bucket policy Deny, an SCP or a permissions boundary, by operation (copy or delete).
# TYPE s3connector_moves_blocked_total counter
s3connector_moves_blocked_total{connection="alpha",operation="copy"} 0
s3connector_moves_blocked_total{connection="alpha",operation="delete"} 0
# HELP s3connector_importer_panics_total Panics inside an importer that were recovered.
# TYPE s3connector_importer_panics_total counter
s3connector_importer_panics_total{connection="alpha"} 0
# HELP s3connector_processing_panics_total Panics in s3connector's own processing of a file, outside the importer (a bug in s3connector), that were recovered.
# TYPE s3connector_processing_panics_total counter
s3connector_processing_panics_total{connection="alpha"} 0
# HELP s3connector_runs_total Finished ingestion runs, by result (success or failure).
# TYPE s3connector_runs_total counter
s3connector_runs_total{connection="alpha",result="failure"} 0
s3connector_runs_total{connection="alpha",result="success"} 0
# HELP s3connector_assume_role_total STS AssumeRole calls for the connection's role, by result (success or failure).
# TYPE s3connector_assume_role_total counter
s3connector_assume_role_total{connection="alpha",result="failure"} 0
s3connector_assume_role_total{connection="alpha",result="success"} 0
`
	err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"s3connector_files_total", "s3connector_runs_total", "s3connector_assume_role_total",
		"s3connector_runs_skipped_total", "s3connector_files_skipped_total",
		"s3connector_moves_blocked_total", "s3connector_importer_panics_total",
		"s3connector_processing_panics_total",
		// gauges of a run's findings and times appear once set
		"s3connector_last_successful_run_timestamp_seconds", "s3connector_inbox_files",
		"s3connector_files_skipped", "s3connector_files_blocked",
		"s3connector_next_run_timestamp_seconds", "s3connector_last_scheduled_run_timestamp_seconds",
		"s3connector_last_run_start_timestamp_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.runDuration); n != 1 {
		t.Errorf("run duration histograms after Init = %d, want 1", n)
	}
}

func TestFileDone(t *testing.T) {
	tests := []struct {
		name      string
		calls     []int64 // bytes of each FileDone(alpha, archived, ...)
		wantFiles float64
		wantBytes float64
	}{
		{name: "one file", calls: []int64{100}, wantFiles: 1, wantBytes: 100},
		{name: "three files", calls: []int64{100, 0, 5}, wantFiles: 3, wantBytes: 105},
		{name: "negative size ignored", calls: []int64{-1}, wantFiles: 1, wantBytes: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := newTestMetrics(t)
			m.Init("alpha")
			for _, b := range tt.calls {
				m.FileDone("alpha", OutcomeArchived, b)
			}
			m.FileDone("beta", OutcomeArchived, 7) // another connection
			if got := testutil.ToFloat64(m.files.WithLabelValues("alpha", OutcomeArchived)); got != tt.wantFiles {
				t.Errorf("files = %v, want %v", got, tt.wantFiles)
			}
			if got := testutil.ToFloat64(m.bytes.WithLabelValues("alpha", OutcomeArchived)); got != tt.wantBytes {
				t.Errorf("bytes = %v, want %v", got, tt.wantBytes)
			}
			if got := testutil.ToFloat64(m.files.WithLabelValues("alpha", OutcomeErrored)); got != 0 {
				t.Errorf("errored files = %v, want 0", got)
			}
		})
	}
}

func TestFileDoneConcurrent(t *testing.T) {
	m, _ := newTestMetrics(t)
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				m.FileDone("alpha", OutcomeArchived, 2)
				m.WorkerBusy("alpha", 1)
				m.WorkerBusy("alpha", -1)
			}
		})
	}
	wg.Wait()
	if got := testutil.ToFloat64(m.files.WithLabelValues("alpha", OutcomeArchived)); got != goroutines*each {
		t.Errorf("files = %v, want %v", got, goroutines*each)
	}
	if got := testutil.ToFloat64(m.workersBusy.WithLabelValues("alpha")); got != 0 {
		t.Errorf("busy workers = %v, want 0", got)
	}
}

func TestRunFinished(t *testing.T) {
	m, _ := newTestMetrics(t)
	first := time.Unix(1_700_000_000, 500_000_000)
	second := first.Add(10 * time.Minute)

	m.RunFinished("alpha", time.Second, false, first)
	if n := testutil.CollectAndCount(m.lastSuccess); n != 0 {
		t.Errorf("last successful run series after a failure only = %d, want 0", n)
	}

	m.RunFinished("alpha", 2*time.Second, true, first)
	m.RunFinished("alpha", 3*time.Second, false, second)

	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"last run", m.lastRun.WithLabelValues("alpha"), 1_700_000_600.5},
		{"last successful run", m.lastSuccess.WithLabelValues("alpha"), 1_700_000_000.5},
		{"successes", m.runs.WithLabelValues("alpha", ResultSuccess), 1},
		{"failures", m.runs.WithLabelValues("alpha", ResultFailure), 2},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	if got := histogramCount(t, m.runDuration, "alpha"); got != 3 {
		t.Errorf("run duration observations = %d, want 3", got)
	}
}

func TestObserveImport(t *testing.T) {
	m, _ := newTestMetrics(t)
	m.ObserveImport("alpha", 2*time.Millisecond)
	m.ObserveImport("alpha", 9*time.Minute)
	if got := histogramCount(t, m.importDuration, "alpha"); got != 2 {
		t.Errorf("import observations = %d, want 2", got)
	}
}

func TestAssumeRole(t *testing.T) {
	m, _ := newTestMetrics(t)
	expiry := time.Unix(1_700_003_600, 0)

	m.AssumeRole("alpha", errors.New("denied"), expiry)
	if n := testutil.CollectAndCount(m.credsExpiry); n != 0 {
		t.Errorf("expiry series after a failure only = %d, want 0", n)
	}

	m.AssumeRole("alpha", nil, expiry)
	m.AssumeRole("alpha", errors.New("throttled"), expiry.Add(time.Hour))
	if got := testutil.ToFloat64(m.credsExpiry.WithLabelValues("alpha")); got != 1_700_003_600 {
		t.Errorf("expiry = %v, want the one of the successful call", got)
	}
	if got := testutil.ToFloat64(m.assumeRole.WithLabelValues("alpha", ResultFailure)); got != 2 {
		t.Errorf("failures = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.assumeRole.WithLabelValues("alpha", ResultSuccess)); got != 1 {
		t.Errorf("successes = %v, want 1", got)
	}
}

func TestConfigReload(t *testing.T) {
	m, _ := newTestMetrics(t)
	ok := time.Unix(1_700_000_000, 0)
	m.ConfigReload(true, ok)
	m.ConfigReload(false, ok.Add(time.Hour))
	if got := testutil.ToFloat64(m.reloadOK); got != 0 {
		t.Errorf("last reload successful = %v, want 0", got)
	}
	if got := testutil.ToFloat64(m.reloadSuccess); got != 1_700_000_000 {
		t.Errorf("last reload success timestamp = %v, want the successful one", got)
	}
	m.ConfigReload(true, ok.Add(2*time.Hour))
	if got := testutil.ToFloat64(m.reloadOK); got != 1 {
		t.Errorf("last reload successful = %v, want 1", got)
	}
}

func TestGauges(t *testing.T) {
	m, _ := newTestMetrics(t)
	m.SetWorkers("alpha", 8)
	m.SetWaiting("alpha", 30)
	m.SetWaiting("alpha", 12)
	m.WorkerBusy("alpha", 1)
	m.WorkerBusy("alpha", 1)
	m.WorkerBusy("alpha", -1)
	m.RunSkipped("alpha", RunSkipOverlap)
	m.RunSkipped("alpha", RunSkipLeaseHeld)
	m.RunSkipped("alpha", RunSkipLeaseHeld)
	m.S3Request("alpha", "GetObject", S3ResultOK)
	m.S3Request("alpha", "GetObject", S3ResultOK)
	m.FileSkipped("alpha", SkipSSEC)
	m.SetSkipped("alpha", 7)
	m.SetSkipped("alpha", 3)
	m.MoveBlocked("alpha", OpDelete)
	m.MoveBlocked("alpha", OpDelete)
	m.SetBlocked("alpha", 2)
	m.PanicRecovered("alpha")
	m.ProcessingPanicRecovered("alpha")
	m.ProcessingPanicRecovered("alpha")
	next := time.Unix(1_700_000_300, 250_000_000)
	m.SetNextRun("alpha", next)
	m.SetLastScheduledRun("alpha", next.Add(-5*time.Minute))
	m.RunStarted("alpha", next.Add(-4*time.Minute))
	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"workers", m.workers.WithLabelValues("alpha"), 8},
		{"inbox files", m.inboxFiles.WithLabelValues("alpha"), 12},
		{"busy workers", m.workersBusy.WithLabelValues("alpha"), 1},
		{"runs skipped by overlap", m.runsSkipped.WithLabelValues("alpha", RunSkipOverlap), 1},
		{"runs skipped by lease", m.runsSkipped.WithLabelValues("alpha", RunSkipLeaseHeld), 2},
		{"GetObject ok", m.s3Requests.WithLabelValues("alpha", "GetObject", S3ResultOK), 2},
		{"SSE-C files skipped", m.filesSkipped.WithLabelValues("alpha", SkipSSEC), 1},
		{"archived files skipped", m.filesSkipped.WithLabelValues("alpha", SkipArchivedStorage), 0},
		{"skipped files", m.skipped.WithLabelValues("alpha"), 3},
		{"deletes blocked", m.movesBlocked.WithLabelValues("alpha", OpDelete), 2},
		{"copies blocked", m.movesBlocked.WithLabelValues("alpha", OpCopy), 0},
		{"blocked files", m.blocked.WithLabelValues("alpha"), 2},
		{"importer panics", m.panics.WithLabelValues("alpha"), 1},
		{"processing panics", m.procPanics.WithLabelValues("alpha"), 2},
		{"next run", m.nextRun.WithLabelValues("alpha"), 1_700_000_300.25},
		{"last scheduled run", m.lastScheduled.WithLabelValues("alpha"), 1_700_000_000.25},
		{"last run start", m.runStart.WithLabelValues("alpha"), 1_700_000_060.25},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestForget(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.SetBuildInfo("v1", "abc")
	m.ConfigReload(true, time.Now())
	exercise(m, "alpha")
	exercise(m, "beta")
	before := seriesByConnection(t, reg)
	if before["alpha"] == 0 || before["alpha"] != before["beta"] {
		t.Fatalf("series before Forget: %v, want alpha == beta > 0", before)
	}

	m.Forget("alpha")
	after := seriesByConnection(t, reg)
	if after["alpha"] != 0 {
		t.Errorf("alpha series after Forget = %d, want 0", after["alpha"])
	}
	if after["beta"] != before["beta"] {
		t.Errorf("beta series after Forget(alpha) = %d, want %d", after["beta"], before["beta"])
	}
	if after[""] != before[""] {
		t.Errorf("unlabelled series after Forget = %d, want %d", after[""], before[""])
	}
	m.Forget("unknown") // no-op
}

func TestSetBuildInfo(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.SetBuildInfo("v1", "aaa")
	m.SetBuildInfo("v2", "bbb")
	if n := testutil.CollectAndCount(m.buildInfo); n != 1 {
		t.Fatalf("build info series = %d, want 1", n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "s3connector_build_info" {
			continue
		}
		labels := map[string]string{}
		for _, l := range mf.GetMetric()[0].GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["version"] != "v2" || labels["revision"] != "bbb" || !strings.HasPrefix(labels["goversion"], "go") {
			t.Errorf("build info labels = %v", labels)
		}
	}
}

func TestNewRegisterTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatalf("first New: %v", err)
	}
	if _, err := New(reg); err == nil {
		t.Fatal("second New on the same registry: want an error")
	}
}

func TestNewNilRegisterer(t *testing.T) {
	m, err := New(nil)
	if err != nil {
		t.Fatalf("New(nil): %v", err)
	}
	m.FileDone("alpha", OutcomeArchived, 1)
	if got := testutil.ToFloat64(m.files.WithLabelValues("alpha", OutcomeArchived)); got != 1 {
		t.Errorf("files = %v, want 1", got)
	}
}

// TestNilMetrics: a nil *Metrics is a valid no-op for code that does not care.
func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.SetBuildInfo("v", "r")
	m.ConfigReload(true, time.Now())
	exercise(m, "alpha")
	m.Forget("alpha")
}

// histogramCount returns the sample count of connection's histogram in h.
func histogramCount(t *testing.T, h *prometheus.HistogramVec, connection string) uint64 {
	t.Helper()
	o, err := h.GetMetricWithLabelValues(connection)
	if err != nil {
		t.Fatal(err)
	}
	var d dto.Metric
	if err := o.(prometheus.Metric).Write(&d); err != nil {
		t.Fatal(err)
	}
	return d.GetHistogram().GetSampleCount()
}

// seriesByConnection counts the gathered series per connection label value;
// "" counts the series without one.
func seriesByConnection(t *testing.T, reg prometheus.Gatherer) map[string]int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			conn := ""
			for _, l := range metric.GetLabel() {
				if l.GetName() == labelConnection {
					conn = l.GetValue()
				}
			}
			n[conn]++
		}
	}
	return n
}

package metrics

import (
	"fmt"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "s3connector"

// Outcome label values for FileDone.
const (
	OutcomeArchived = "archived" // imported, moved to archive/
	OutcomeErrored  = "errored"  // rejected by the importer, moved to error/
	OutcomeRetry    = "retry"    // left in the inbox by a transient failure
)

// Result label values of s3connector_runs_total and s3connector_assume_role_total.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
)

// S3 request result label values for S3Request. Callers map their error
// classes onto these; any other value is accepted but keep the set small.
const (
	S3ResultOK                 = "ok"
	S3ResultAccessDenied       = "access_denied"
	S3ResultNotFound           = "not_found"
	S3ResultPreconditionFailed = "precondition_failed"
	S3ResultThrottled          = "throttled"
	S3ResultError              = "error"
)

// Reason label values of s3connector_files_skipped_total: why a run could
// not read or copy a file at all and left it in the inbox.
const (
	SkipSSEC            = "sse_c"                  // encrypted with a customer-provided key (SSE-C)
	SkipArchivedStorage = "archived_storage_class" // in Glacier Flexible Retrieval or Deep Archive
)

// Operation label values of s3connector_moves_blocked_total: the step of a
// move that was denied.
const (
	OpCopy   = "copy"
	OpDelete = "delete"
)

// Reason label values of s3connector_runs_skipped_total.
const (
	RunSkipOverlap   = "overlap"    // the connection's previous run was still going
	RunSkipLeaseHeld = "lease_held" // another process holds the connection's lease
)

const (
	labelConnection = "connection"
	labelOutcome    = "outcome"
	labelResult     = "result"
	labelOperation  = "operation"
	labelReason     = "reason"
)

var (
	outcomes       = []string{OutcomeArchived, OutcomeErrored, OutcomeRetry}
	results        = []string{ResultSuccess, ResultFailure}
	skipReasons    = []string{SkipSSEC, SkipArchivedStorage}
	moveOperations = []string{OpCopy, OpDelete}
	runSkipReasons = []string{RunSkipOverlap, RunSkipLeaseHeld}

	// importBuckets span 1ms (an empty file into a local importer) to 10min
	// (a multi-GiB file into a slow sink).
	importBuckets = []float64{
		0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
		1, 2.5, 5, 10, 30, 60, 120, 300, 600,
	}
	// runBuckets span 100ms (an empty inbox) to 3h (a backlog).
	runBuckets = []float64{
		0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 10800,
	}
)

// Metrics holds every s3connector metric. All per-connection metrics are
// labelled by `connection` (bounded: connection names from config). Create it
// with New; the methods are safe for concurrent use and do nothing on a nil
// *Metrics.
type Metrics struct {
	files          *prometheus.CounterVec
	bytes          *prometheus.CounterVec
	importDuration *prometheus.HistogramVec
	runs           *prometheus.CounterVec
	runDuration    *prometheus.HistogramVec
	lastRun        *prometheus.GaugeVec
	lastSuccess    *prometheus.GaugeVec
	runsSkipped    *prometheus.CounterVec
	runStart       *prometheus.GaugeVec
	nextRun        *prometheus.GaugeVec
	lastScheduled  *prometheus.GaugeVec
	inboxFiles     *prometheus.GaugeVec
	filesSkipped   *prometheus.CounterVec
	skipped        *prometheus.GaugeVec
	movesBlocked   *prometheus.CounterVec
	blocked        *prometheus.GaugeVec
	panics         *prometheus.CounterVec
	procPanics     *prometheus.CounterVec
	workers        *prometheus.GaugeVec
	workersBusy    *prometheus.GaugeVec
	s3Requests     *prometheus.CounterVec
	assumeRole     *prometheus.CounterVec
	credsExpiry    *prometheus.GaugeVec
	interval       *prometheus.GaugeVec
	up             *prometheus.GaugeVec

	reloadOK      prometheus.Gauge
	reloadSuccess prometheus.Gauge
	buildInfo     *prometheus.GaugeVec

	// perConnection lists the vectors that Forget cleans up.
	perConnection []interface {
		DeletePartialMatch(prometheus.Labels) int
	}
}

// New creates every metric and registers it on reg. It returns an error if a
// registration fails (for example, when New is called twice on the same
// registry). A nil reg creates the metrics without registering them.
//
// s3connector_build_info is registered but has no series until SetBuildInfo
// is called.
func New(reg prometheus.Registerer) (*Metrics, error) {
	conn := []string{labelConnection}
	m := &Metrics{
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "files_total",
			Help:      "Files finished by a run, by outcome: archived (imported), errored (rejected by the importer, moved to error/), retry (left in the inbox by a transient failure).",
		}, []string{labelConnection, labelOutcome}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "bytes_total",
			Help:      "Bytes of the files counted in s3connector_files_total, by outcome.",
		}, []string{labelConnection, labelOutcome}),
		importDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "import_duration_seconds",
			Help:      "Time to stream one file into the importer, from GetObject to the importer's verdict.",
			Buckets:   importBuckets,
		}, conn),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "runs_total",
			Help:      "Finished ingestion runs, by result (success or failure).",
		}, []string{labelConnection, labelResult}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "run_duration_seconds",
			Help:      "Wall time of an ingestion run, from listing to the last move.",
			Buckets:   runBuckets,
		}, conn),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "last_run_timestamp_seconds",
			Help:      "Unix time the last ingestion run finished, successful or not.",
		}, conn),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "last_successful_run_timestamp_seconds",
			Help:      "Unix time the last successful ingestion run finished.",
		}, conn),
		runsSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "runs_skipped_total",
			Help:      "Scheduled runs skipped, by reason: overlap (the connection's previous run was still going) or lease_held (another process holds the connection's lease).",
		}, []string{labelConnection, labelReason}),
		runStart: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "last_run_start_timestamp_seconds",
			Help:      "Unix time the last ingestion run started; a run is going while this is later than s3connector_last_run_timestamp_seconds.",
		}, conn),
		nextRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "next_run_timestamp_seconds",
			Help:      "Unix time of the connection's next scheduled run.",
		}, conn),
		lastScheduled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "last_scheduled_run_timestamp_seconds",
			Help:      "Unix time of the connection's latest scheduled run that came due, whether it ran or was skipped.",
		}, conn),
		inboxFiles: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "inbox_files",
			Help:      "Files the last run's listing found waiting in the inbox (the backlog).",
		}, conn),
		filesSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "files_skipped_total",
			Help:      "Files a run could not read or copy at all and left in the inbox without failing the run, by reason: sse_c (encrypted with a customer-provided key), archived_storage_class (Glacier Flexible Retrieval or Deep Archive).",
		}, []string{labelConnection, labelReason}),
		skipped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "files_skipped",
			Help:      "Files the last run found in the inbox and skipped (counted by reason in s3connector_files_skipped_total).",
		}, conn),
		movesBlocked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "moves_blocked_total",
			Help:      "Move steps denied by the role's permissions, a bucket policy Deny, an SCP or a permissions boundary, by operation (copy or delete).",
		}, []string{labelConnection, labelOperation}),
		blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "files_blocked",
			Help:      "Files whose move to archive/ or error/ was blocked (denied copy or delete) in the last run.",
		}, conn),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "importer_panics_total",
			Help:      "Panics inside an importer that were recovered.",
		}, conn),
		procPanics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "processing_panics_total",
			Help:      "Panics in s3connector's own processing of a file, outside the importer (a bug in s3connector), that were recovered.",
		}, conn),
		workers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "workers",
			Help:      "Configured number of import workers.",
		}, conn),
		workersBusy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "workers_busy",
			Help:      "Import workers currently processing a file.",
		}, conn),
		s3Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "s3_requests_total",
			Help:      "S3 API requests, by operation (S3 API name) and result (ok, access_denied, not_found, precondition_failed, throttled, error).",
		}, []string{labelConnection, labelOperation, labelResult}),
		assumeRole: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "assume_role_total",
			Help:      "STS AssumeRole calls for the connection's role, by result (success or failure).",
		}, []string{labelConnection, labelResult}),
		credsExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "credentials_expiry_timestamp_seconds",
			Help:      "Unix time the connection's current temporary credentials expire.",
		}, conn),
		interval: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "schedule_interval_seconds",
			Help:      "Seconds between two scheduled runs of the connection (for a cron expression: between its next two ticks).",
		}, conn),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "connection_up",
			Help:      "Whether the connection passed validation and is scheduled (1) or is failing validation and retried with backoff (0).",
		}, conn),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "config_last_reload_successful",
			Help:      "Whether the last configuration (re)load attempt was successful (1) or not (0).",
		}),
		reloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "config_last_reload_success_timestamp_seconds",
			Help:      "Unix time of the last successful configuration (re)load.",
		}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "build_info",
			Help:      "A metric with a constant '1' value labelled by version, revision and goversion of the running s3connector.",
		}, []string{"version", "revision", "goversion"}),
	}
	m.perConnection = []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{
		m.files, m.bytes, m.importDuration, m.runs, m.runDuration, m.lastRun,
		m.lastSuccess, m.runsSkipped, m.runStart, m.nextRun, m.lastScheduled,
		m.inboxFiles, m.filesSkipped, m.skipped, m.movesBlocked, m.blocked,
		m.panics, m.procPanics, m.workers, m.workersBusy, m.s3Requests, m.assumeRole,
		m.credsExpiry, m.interval, m.up,
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.files, m.bytes, m.importDuration, m.runs, m.runDuration, m.lastRun,
		m.lastSuccess, m.runsSkipped, m.runStart, m.nextRun, m.lastScheduled,
		m.inboxFiles, m.filesSkipped, m.skipped, m.movesBlocked, m.blocked,
		m.panics, m.procPanics, m.workers, m.workersBusy, m.s3Requests, m.assumeRole,
		m.credsExpiry, m.interval, m.up,
		m.reloadOK, m.reloadSuccess, m.buildInfo,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// SetBuildInfo sets s3connector_build_info{version,revision,goversion} to 1,
// goversion being runtime.Version(). Call it once at start-up; a later call
// replaces the series rather than adding a second one.
func (m *Metrics) SetBuildInfo(version, revision string) {
	if m == nil {
		return
	}
	m.buildInfo.Reset()
	m.buildInfo.WithLabelValues(version, revision, runtime.Version()).Set(1)
}

// Init creates the series of a connection at zero, so that dashboards and
// rate() see them before the first file or run: every FileDone outcome, both
// run and AssumeRole results, skipped runs and files by reason, blocked
// moves by operation, importer and processing panics, busy workers and both histograms.
// Call it when a connection is first seen (start-up, config reload); calling
// it again does not reset anything.
func (m *Metrics) Init(connection string) {
	if m == nil {
		return
	}
	for _, o := range outcomes {
		m.files.WithLabelValues(connection, o)
		m.bytes.WithLabelValues(connection, o)
	}
	for _, r := range results {
		m.runs.WithLabelValues(connection, r)
		m.assumeRole.WithLabelValues(connection, r)
	}
	for _, r := range runSkipReasons {
		m.runsSkipped.WithLabelValues(connection, r)
	}
	for _, r := range skipReasons {
		m.filesSkipped.WithLabelValues(connection, r)
	}
	for _, o := range moveOperations {
		m.movesBlocked.WithLabelValues(connection, o)
	}
	m.panics.WithLabelValues(connection)
	m.procPanics.WithLabelValues(connection)
	m.workersBusy.WithLabelValues(connection)
	m.importDuration.WithLabelValues(connection)
	m.runDuration.WithLabelValues(connection)
}

// FileDone counts one finished file and its size under outcome (one of the
// Outcome constants).
func (m *Metrics) FileDone(connection, outcome string, bytes int64) {
	if m == nil {
		return
	}
	m.files.WithLabelValues(connection, outcome).Inc()
	if bytes > 0 {
		m.bytes.WithLabelValues(connection, outcome).Add(float64(bytes))
	}
}

// ObserveImport records how long one file took to import.
func (m *Metrics) ObserveImport(connection string, d time.Duration) {
	if m == nil {
		return
	}
	m.importDuration.WithLabelValues(connection).Observe(d.Seconds())
}

// RunFinished records a finished run: its result, its duration and end as
// the last run time; end also becomes the last successful run time if ok.
func (m *Metrics) RunFinished(connection string, d time.Duration, ok bool, end time.Time) {
	if m == nil {
		return
	}
	result := ResultFailure
	if ok {
		result = ResultSuccess
	}
	m.runs.WithLabelValues(connection, result).Inc()
	m.runDuration.WithLabelValues(connection).Observe(d.Seconds())
	ts := unixSeconds(end)
	m.lastRun.WithLabelValues(connection).Set(ts)
	if ok {
		m.lastSuccess.WithLabelValues(connection).Set(ts)
	}
}

// RunSkipped counts a scheduled run skipped for reason (one of the RunSkip
// constants).
func (m *Metrics) RunSkipped(connection, reason string) {
	if m == nil {
		return
	}
	m.runsSkipped.WithLabelValues(connection, reason).Inc()
}

// RunStarted records the time at which a run started. A run skipped because
// another process holds the lease starts but records no end (RunFinished).
func (m *Metrics) RunStarted(connection string, at time.Time) {
	if m == nil {
		return
	}
	m.runStart.WithLabelValues(connection).Set(unixSeconds(at))
}

// SetNextRun records when the connection's next scheduled run is due. The
// scheduler calls it whenever it (re)schedules the connection.
func (m *Metrics) SetNextRun(connection string, t time.Time) {
	if m == nil {
		return
	}
	m.nextRun.WithLabelValues(connection).Set(unixSeconds(t))
}

// SetLastScheduledRun records the time of the scheduled run that just came
// due (whether it starts or is skipped), so that alerts can tell a missed
// run from a quiet stretch of the schedule (a weekend, say).
func (m *Metrics) SetLastScheduledRun(connection string, t time.Time) {
	if m == nil {
		return
	}
	m.lastScheduled.WithLabelValues(connection).Set(unixSeconds(t))
}

// FileSkipped counts a file a run could not read or copy at all and left in
// the inbox without failing the run; reason is one of the Skip constants.
func (m *Metrics) FileSkipped(connection, reason string) {
	if m == nil {
		return
	}
	m.filesSkipped.WithLabelValues(connection, reason).Inc()
}

// SetSkipped sets the number of skipped files the last run found.
func (m *Metrics) SetSkipped(connection string, n int) {
	if m == nil {
		return
	}
	m.skipped.WithLabelValues(connection).Set(float64(n))
}

// MoveBlocked counts a move step denied by the role's permissions, a
// bucket policy Deny, an SCP or a permissions boundary (not Object Lock: the
// move's delete names no version, so it only adds a delete marker, which
// retention and legal holds allow); operation is OpCopy or OpDelete.
func (m *Metrics) MoveBlocked(connection, operation string) {
	if m == nil {
		return
	}
	m.movesBlocked.WithLabelValues(connection, operation).Inc()
}

// SetBlocked sets the number of files whose move was blocked in the last run.
func (m *Metrics) SetBlocked(connection string, n int) {
	if m == nil {
		return
	}
	m.blocked.WithLabelValues(connection).Set(float64(n))
}

// PanicRecovered counts a panic inside an importer that was recovered.
func (m *Metrics) PanicRecovered(connection string) {
	if m == nil {
		return
	}
	m.panics.WithLabelValues(connection).Inc()
}

// ProcessingPanicRecovered counts a panic in s3connector's own processing
// of a file (outside the importer: reading it, its ranged download, its
// move) that was recovered. Kept apart from PanicRecovered: one points at
// a custom importer, the other at a bug in s3connector itself.
func (m *Metrics) ProcessingPanicRecovered(connection string) {
	if m == nil {
		return
	}
	m.procPanics.WithLabelValues(connection).Inc()
}

// SetWaiting sets the number of files waiting in the inbox as of the last listing.
func (m *Metrics) SetWaiting(connection string, n int) {
	if m == nil {
		return
	}
	m.inboxFiles.WithLabelValues(connection).Set(float64(n))
}

// SetWorkers sets the configured number of workers.
func (m *Metrics) SetWorkers(connection string, n int) {
	if m == nil {
		return
	}
	m.workers.WithLabelValues(connection).Set(float64(n))
}

// WorkerBusy adds delta to the busy workers: +1 when a worker takes a file,
// -1 when it is done with it.
func (m *Metrics) WorkerBusy(connection string, delta int) {
	if m == nil {
		return
	}
	m.workersBusy.WithLabelValues(connection).Add(float64(delta))
}

// S3Request counts one S3 API request. operation is the S3 API name
// (GetObject, CopyObject, ...); result is one of the S3Result constants.
func (m *Metrics) S3Request(connection, operation, result string) {
	if m == nil {
		return
	}
	m.s3Requests.WithLabelValues(connection, operation, result).Inc()
}

// AssumeRole counts one AssumeRole call, failed if err is not nil. On success
// a non-zero expiry becomes the credentials expiry time; a failure leaves the
// previous expiry in place (those credentials are still the ones in use).
func (m *Metrics) AssumeRole(connection string, err error, expiry time.Time) {
	if m == nil {
		return
	}
	if err != nil {
		m.assumeRole.WithLabelValues(connection, ResultFailure).Inc()
		return
	}
	m.assumeRole.WithLabelValues(connection, ResultSuccess).Inc()
	if !expiry.IsZero() {
		m.credsExpiry.WithLabelValues(connection).Set(unixSeconds(expiry))
	}
}

// ConfigReload records a configuration (re)load attempt at time at, the way
// Prometheus does for its own configuration: the success gauge is 1 or 0,
// and the timestamp moves only on success.
func (m *Metrics) ConfigReload(ok bool, at time.Time) {
	if m == nil {
		return
	}
	if !ok {
		m.reloadOK.Set(0)
		return
	}
	m.reloadOK.Set(1)
	m.reloadSuccess.Set(unixSeconds(at))
}

// SetScheduleInterval records the time between two scheduled runs, so
// alerts can compare the last successful run with the schedule.
func (m *Metrics) SetScheduleInterval(connection string, d time.Duration) {
	if m == nil {
		return
	}
	m.interval.WithLabelValues(connection).Set(d.Seconds())
}

// SetUp records whether the connection passed validation (and is
// scheduled) or not.
func (m *Metrics) SetUp(connection string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.up.WithLabelValues(connection).Set(v)
}

// Forget deletes every series of connection, for a connection removed from
// the configuration. Calls for that connection made after Forget create its
// series again, so stop its runs first.
func (m *Metrics) Forget(connection string) {
	if m == nil {
		return
	}
	l := prometheus.Labels{labelConnection: connection}
	for _, v := range m.perConnection {
		v.DeletePartialMatch(l)
	}
}

// unixSeconds converts t to Unix seconds with sub-second precision. Seconds
// and nanoseconds are converted apart: float64(t.UnixNano()) would round.
func unixSeconds(t time.Time) float64 {
	return float64(t.Unix()) + float64(t.Nanosecond())/1e9
}

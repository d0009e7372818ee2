package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/metrics"
)

// Options are a Runner's dependencies and tuning knobs; only Importer is
// required.
type Options struct {
	Importer Importer
	// Metrics may be nil (no metrics).
	Metrics *metrics.Metrics
	// Logger may be nil (no logs).
	Logger *zap.Logger
	// PageSize is the ListObjectsV2 page size; 0 = S3's default (1000).
	PageSize int32
	// MultipartThreshold: objects above it are copied part by part; 0 =
	// archive.SingleCopyLimit (5 GiB).
	MultipartThreshold int64
	// PartSize of multipart copies; 0 = archive.DefaultPartSize.
	PartSize int64
	// Now is the clock (archive names, min_age, reports); nil = time.Now.
	Now func() time.Time
	// Lease tunes the connection's lease (see LeaseKey); zero values are
	// the defaults.
	Lease LeaseOptions
}

// Runner runs ingestion passes over one connection: list the inbox, stream
// each file into the importer with a pool of workers, move it to archive/
// or error/. A Runner is safe for concurrent use, but the scheduler never
// starts two runs of one connection at once.
type Runner struct {
	name, bucket, base, region string
	workers                    int
	maxAttempts                int
	filter                     Filter
	pageSize                   int32
	s3                         *s3.Client
	importer                   Importer
	mover                      *archive.Mover
	metrics                    *metrics.Metrics
	log                        *zap.Logger
	now                        func() time.Time
	leaseOpts                  LeaseOptions
}

// NewRunner prepares runs over conn with the settings of its configuration
// (workers, include, exclude, min_age, max_files, max_attempts).
func NewRunner(conn *connector.Connection, o Options) (*Runner, error) {
	c := conn.Config()
	if o.Importer == nil {
		return nil, fmt.Errorf("connection %q: no importer", c.Name)
	}
	filter, err := NewFilter(c.Include, c.Exclude, c.MinAge, c.MaxFiles)
	if err != nil {
		return nil, fmt.Errorf("connection %q: %w", c.Name, err)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	filter.Now = now
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	r := &Runner{
		name: c.Name, bucket: c.Bucket, base: c.BasePath, region: c.Region,
		workers: max(c.Workers, 1), maxAttempts: c.MaxAttempts,
		filter: filter, pageSize: o.PageSize,
		s3: conn.S3(), importer: o.Importer, metrics: o.Metrics,
		log: log.With(zap.String("connection", c.Name)), now: now,
		leaseOpts: o.Lease,
	}
	if r.leaseOpts.Holder == "" {
		// One holder id per runner: its runs never overlap (Scheduler).
		r.leaseOpts.Holder = HolderID()
	}
	r.mover = &archive.Mover{
		S3: conn.S3(), Bucket: c.Bucket, BasePath: c.BasePath,
		MultipartThreshold: o.MultipartThreshold, PartSize: o.PartSize, Now: now,
	}
	if r.metrics != nil {
		r.metrics.Init(c.Name)
		r.metrics.SetWorkers(c.Name, r.workers)
	}
	return r, nil
}

// Name is the connection's name.
func (r *Runner) Name() string { return r.name }

// Summary is the result of one run.
type Summary struct {
	Connection string
	RunID      string
	Started    time.Time
	Duration   time.Duration
	// Listed files were taken from the inbox listing; Imported were
	// accepted by the importer; Archived and Errored were moved to
	// archive/ and error/; Retry were left in the inbox by transient
	// trouble and are retried next run; Vanished disappeared before they
	// were read (moved or deleted by someone else).
	Listed, Imported, Archived, Errored, Retry, Vanished int
	// Bytes is the size of the files moved to archive/ or error/.
	Bytes int64
	// Err is why the run stopped early (listing failed, cancelled), if it did.
	Err error
}

// OK reports whether the run listed the whole inbox and left no file
// behind because of transient trouble.
func (s Summary) OK() bool { return s.Err == nil && s.Retry == 0 }

// String is the one-line summary `run --once` prints.
func (s Summary) String() string {
	line := fmt.Sprintf("%s: listed %d, imported %d, archived %d, errored %d, left for retry %d, %s in %s (run %s)",
		s.Connection, s.Listed, s.Imported, s.Archived, s.Errored, s.Retry, formatBytes(s.Bytes), s.Duration.Round(time.Millisecond), s.RunID)
	if s.Vanished > 0 {
		line += fmt.Sprintf(", %d vanished", s.Vanished)
	}
	if s.Err != nil {
		line += "; stopped: " + s.Err.Error()
	}
	return line
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// NewRunID returns a fresh run id: 12 lowercase hex characters (48 random
// bits). It names the run in logs, reports and archived file names.
func NewRunID() string {
	b := make([]byte, 6)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// outcome is what happened to one file.
type outcome int

const (
	outArchived outcome = iota
	outErrored
	outRetry
	outVanished
)

// Run makes one pass: it lists the inbox into a queue of at most `workers`
// files and processes them with `workers` goroutines; the first file is
// imported while the listing goes on. Cancelling ctx stops the listing and
// the imports; a move already started is finished (see archive.Mover.Move),
// so nothing is left half-moved.
func (r *Runner) Run(ctx context.Context) Summary { return r.RunUntil(ctx, nil) }

// ErrStopped is Summary.Err of a run asked to stop early (shutdown).
var ErrStopped = errors.New("stopped: shutting down")

// RunUntil is Run with a graceful stop: once stop is closed the run lists
// no more and starts no new file, while files in progress go on until ctx
// is cancelled (the shutdown deadline).
func (r *Runner) RunUntil(ctx context.Context, stop <-chan struct{}) Summary {
	s := Summary{Connection: r.name, RunID: NewRunID(), Started: r.now()}
	log := r.log.With(zap.String("run_id", s.RunID))
	// One writer per connection (I12): no lease, no run.
	lease, ok := r.takeLease(ctx, log, &s)
	if !ok {
		return s
	}
	// A lost lease stops the run as a graceful stop does.
	stop = lease.hold(ctx, stop)
	log.Info("run started")

	var attempts *attemptStore
	if r.maxAttempts > 0 {
		attempts = newAttemptStore(r.s3, r.bucket, r.base, r.region)
		if err := attempts.load(ctx); err != nil {
			// Without the counts a failing file is only retried, never
			// given up on; that is safe, so carry on.
			log.Warn("cannot read attempt counts; max_attempts is not enforced this run", zap.Error(err))
			attempts = nil
		}
	}

	// listCtx ends the listing on stop as well as on cancellation.
	listCtx, cancelList := context.WithCancel(ctx)
	defer cancelList()
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	if stop != nil {
		go func() {
			select {
			case <-stop:
				cancelList()
			case <-listCtx.Done():
			}
		}()
	}
	queue := make(chan File, r.workers)
	lister := &Lister{S3: r.s3, Bucket: r.bucket, BasePath: r.base, Region: r.region, Filter: r.filter, PageSize: r.pageSize}
	var (
		stats   ListStats
		listErr error
		mu      sync.Mutex
		wg      sync.WaitGroup
	)
	wg.Go(func() {
		defer close(queue)
		stats, listErr = lister.List(listCtx, queue)
	})
	for range r.workers {
		wg.Go(func() {
			for f := range queue {
				if stopped() {
					// Not started: untouched in the inbox for the next run.
					// Left for retry in the summary, but not counted in
					// s3connector_files_total: nothing was attempted, and a
					// shutdown or reload must not read as a failure rate.
					mu.Lock()
					s.Retry++
					mu.Unlock()
					continue
				}
				out, imported, size := r.process(ctx, log, s.RunID, attempts, f)
				mu.Lock()
				switch out {
				case outArchived:
					s.Archived++
					s.Bytes += size
				case outErrored:
					s.Errored++
					s.Bytes += size
				case outRetry:
					s.Retry++
				case outVanished:
					s.Vanished++
				}
				if imported {
					s.Imported++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	leaseErr := lease.end(ctx)

	s.Listed = stats.Listed
	s.Err = listErr
	if s.Err == nil {
		s.Err = ctx.Err()
	}
	if stopped() && (s.Err == nil || errors.Is(s.Err, context.Canceled)) {
		s.Err = ErrStopped
	}
	if leaseErr != nil && (s.Err == nil || errors.Is(s.Err, ErrStopped)) {
		s.Err = leaseErr
	}
	s.Duration = r.now().Sub(s.Started)
	if r.metrics != nil {
		// The backlog the run found; a listing cut short by max_files
		// counts only what it took.
		r.metrics.SetWaiting(r.name, stats.Listed)
		r.metrics.RunFinished(r.name, s.Duration, s.OK(), r.now())
	}
	fields := []zap.Field{zap.Int("listed", s.Listed), zap.Int("imported", s.Imported), zap.Int("archived", s.Archived),
		zap.Int("errored", s.Errored), zap.Int("retry", s.Retry), zap.Int64("bytes", s.Bytes), zap.Duration("duration", s.Duration)}
	if s.Err != nil {
		log.Error("run stopped early", append(fields, zap.Error(s.Err))...)
	} else {
		log.Info("run finished", fields...)
	}
	return s
}

// process imports one file and moves it. It returns the outcome, whether
// the importer accepted the file, and the bytes moved.
func (r *Runner) process(ctx context.Context, runLog *zap.Logger, runID string, attempts *attemptStore, f File) (outcome, bool, int64) {
	log := runLog.With(zap.String("key", f.Key))
	if r.metrics != nil {
		r.metrics.WorkerBusy(r.name, 1)
		defer r.metrics.WorkerBusy(r.name, -1)
	}
	if ctx.Err() != nil {
		return r.done(outRetry, f, 0), false, 0
	}

	// 1. GET pinned to the listed ETag.
	obj, err := r.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &r.bucket, Key: aws.String(f.Key), IfMatch: aws.String(f.ETag)})
	if err != nil {
		err = connector.Classify(err, r.region)
		switch {
		case errors.Is(err, connector.ErrPreconditionFailed):
			log.Info("file changed since it was listed; it is taken next run")
			return r.done(outRetry, f, 0), false, 0
		case errors.Is(err, connector.ErrNotFound):
			log.Info("file vanished before it was read")
			return r.done(outVanished, f, 0), false, 0
		case errors.Is(err, connector.ErrSSECUnsupported):
			log.Error("cannot read file", zap.Error(connector.ErrSSECUnsupported))
			return r.done(outRetry, f, 0), false, 0
		}
		return r.transient(ctx, log, runID, attempts, f, nil, fmt.Errorf("read: %w", err)), false, 0
	}
	f.VersionID = aws.ToString(obj.VersionId)
	f.ContentType = aws.ToString(obj.ContentType)
	f.Metadata = obj.Metadata
	src := archive.Source{
		Bucket: r.bucket, Key: f.Key, RelKey: f.RelKey, ETag: f.ETag, VersionID: f.VersionID,
		Size: aws.ToInt64(obj.ContentLength), Attrs: archive.AttributesFromGet(obj),
	}

	// 2. Stream the body into the importer.
	body := &trackingReader{r: obj.Body}
	start := time.Now()
	importErr := r.importer.Import(ctx, f, body)
	if r.metrics != nil {
		r.metrics.ObserveImport(r.name, time.Since(start))
	}
	closeBody(obj.Body)
	if body.err != nil {
		// Reading from S3 failed: whatever the importer made of it, the
		// content was not at fault (I4), and a success built on a failed
		// read (an importer that swallowed the error) cannot be trusted
		// to hold the whole file. Transient: the file is tried again.
		importErr = fmt.Errorf("read body: %w", body.err)
	}

	// 3. Decide where it goes, then move.
	var report *archive.Report
	folder := archive.Archive
	switch {
	case importErr == nil:
	case IsPermanent(importErr) && ctx.Err() == nil:
		folder = archive.Error
		reason := importErr.Error()
		if pe := (*PermanentError)(nil); errors.As(importErr, &pe) {
			reason = pe.Err.Error()
		}
		report = r.report(runID, f, reason, 1, time.Time{})
	default:
		return r.transient(ctx, log, runID, attempts, f, &src, importErr), false, 0
	}
	return r.move(ctx, log, runID, attempts, f, src, folder, report), importErr == nil, src.Size
}

// transient handles a transient failure: the file stays in the inbox,
// unless max_attempts is reached, then it goes to error/ with a report.
func (r *Runner) transient(ctx context.Context, log *zap.Logger, runID string, attempts *attemptStore, f File, src *archive.Source, cause error) outcome {
	if ctx.Err() != nil {
		log.Info("file left in the inbox: run cancelled", zap.Error(cause))
		return r.done(outRetry, f, 0)
	}
	if attempts == nil {
		log.Warn("file left in the inbox for the next run", zap.Error(cause))
		return r.done(outRetry, f, 0)
	}
	n, first, err := attempts.fail(ctx, f, r.now(), cause)
	if err != nil {
		log.Warn("cannot record the failed attempt", zap.Error(err))
	}
	if n < r.maxAttempts || src == nil {
		// A file we could not even read cannot be copied to error/.
		log.Warn("file left in the inbox for the next run", zap.Error(cause), zap.Int("attempts", n))
		return r.done(outRetry, f, 0)
	}
	reason := fmt.Sprintf("gave up after %d attempts (max_attempts %d); last error: %v", n, r.maxAttempts, cause)
	return r.move(ctx, log, runID, attempts, f, *src, archive.Error, r.report(runID, f, reason, n, first))
}

func (r *Runner) report(runID string, f File, reason string, attempts int, first time.Time) *archive.Report {
	return &archive.Report{
		Reason: reason, Attempts: attempts, Connection: r.name, RunID: runID,
		Bucket: r.bucket, Key: f.Key, ETag: f.ETag, VersionID: f.VersionID, Size: f.Size,
		Modified: f.LastModified, FirstSeen: first, FailedAt: r.now().UTC(),
	}
}

func (r *Runner) move(ctx context.Context, log *zap.Logger, runID string, attempts *attemptStore, f File, src archive.Source, folder archive.Folder, report *archive.Report) outcome {
	res, err := r.mover.Move(ctx, src, folder, runID, report)
	if err != nil {
		var de *archive.DeleteError
		switch {
		case errors.As(err, &de):
			log.Warn("copied but could not delete the original; it is imported again next run", zap.String("copy", de.Copy), zap.Error(err))
		case errors.Is(connector.Classify(err, r.region), connector.ErrPreconditionFailed):
			log.Info("file changed while it was imported; the new version is taken next run")
		case errors.Is(err, context.Canceled):
			log.Info("file left in the inbox: run cancelled before its move")
		default:
			log.Warn("move failed; the file stays in the inbox for the next run", zap.Error(err))
		}
		return r.done(outRetry, f, 0)
	}
	if attempts != nil {
		if err := attempts.clear(ctx, f); err != nil {
			log.Warn("cannot clear the attempt count", zap.Error(err))
		}
	}
	if folder == archive.Error {
		log.Warn("file moved to error/", zap.String("to", res.Key), zap.String("reason", report.Reason))
		return r.done(outErrored, f, src.Size)
	}
	log.Debug("file archived", zap.String("to", res.Key), zap.Int64("bytes", src.Size))
	return r.done(outArchived, f, src.Size)
}

// done records a file's outcome in the metrics.
func (r *Runner) done(o outcome, f File, bytes int64) outcome {
	if r.metrics == nil || o == outVanished {
		return o
	}
	label := metrics.OutcomeRetry
	switch o {
	case outArchived:
		label = metrics.OutcomeArchived
	case outErrored:
		label = metrics.OutcomeErrored
	}
	r.metrics.FileDone(r.name, label, bytes)
	return o
}

// trackingReader remembers the first read error that is not io.EOF, so a
// failure to read from S3 is never mistaken for bad content.
type trackingReader struct {
	r   io.Reader
	err error
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF && t.err == nil {
		t.err = err
	}
	return n, err
}

// closeBody drains a little of what the importer left unread, so the
// connection can be reused for small leftovers, and closes the body.
func closeBody(b io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, b, 64<<10)
	_ = b.Close()
}

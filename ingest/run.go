package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

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
	// Now is the clock (min_age, reports, file state); nil = time.Now.
	Now func() time.Time
	// StuckRetry is how long a file that cannot be read or moved at all
	// (skipped or blocked) is left out of runs before it is tried again;
	// 0 = DefaultStuckRetry.
	StuckRetry time.Duration
	// Lease tunes the connection's lease (see LeaseKey); zero values are
	// the defaults.
	Lease LeaseOptions
	// ParallelDownloadThreshold: files of at least this size are read in
	// ranges of DownloadPartSize, DownloadConcurrency at a time, each
	// pinned to the listed ETag (see Runner.getObject); 0 =
	// DefaultParallelDownloadThreshold, negative = never.
	ParallelDownloadThreshold int64
	// DownloadPartSize: 0 = DefaultDownloadPartSize.
	DownloadPartSize int64
	// DownloadConcurrency is the number of ranges one file holds in
	// memory or in flight; 0 = DefaultDownloadConcurrency.
	DownloadConcurrency int
}

// DefaultStuckRetry is Options.StuckRetry's default: a restored Glacier
// object or a lifted delete block is noticed within 15 minutes, while a
// stuck file costs at most four requests an hour.
const DefaultStuckRetry = 15 * time.Minute

// Runner runs ingestion passes over one connection: list the inbox, stream
// each file into the importer with a pool of workers, move it to archive/
// or error/. A Runner is safe for concurrent use, but the scheduler never
// starts two runs of one connection at once.
type Runner struct {
	name, bucket, base, region string
	workers                    int
	maxAttempts                int
	maxFileSize                int64
	stuckRetry                 time.Duration
	filter                     Filter
	pageSize                   int32
	s3                         *connector.FastS3
	importer                   Importer
	mover                      *archive.Mover
	metrics                    *metrics.Metrics
	log                        *zap.Logger
	now                        func() time.Time
	leaseOpts                  LeaseOptions
	download                   downloadOptions
	// testHook, set by tests only, is called at named points of a file's
	// processing ("read": before its GET; "range": before each ranged
	// fetch of its body; "move": as a move starts; "finish": before a
	// pending move is waited for; "list": as the lister hands it over;
	// "renew": before each renewal of the run's lease, with no file).
	// The tests panic there for one key: no real server or importer can
	// make the connector's own code panic.
	testHook func(point string, f File)
}

// hook calls the test hook, if any.
func (r *Runner) hook(point string, f File) {
	if r.testHook != nil {
		r.testHook(point, f)
	}
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
		workers: max(c.Workers, 1), maxAttempts: c.MaxAttempts, maxFileSize: int64(c.MaxFileSize), stuckRetry: o.StuckRetry,
		filter: filter, pageSize: o.PageSize,
		s3: conn.FastS3(), importer: o.Importer, metrics: o.Metrics,
		log: log.With(zap.String("connection", c.Name)), now: now,
		leaseOpts: o.Lease, download: newDownloadOptions(o),
	}
	if r.leaseOpts.Holder == "" {
		// One holder id per runner: its runs never overlap (Scheduler).
		r.leaseOpts.Holder = HolderID()
	}
	if r.stuckRetry <= 0 {
		r.stuckRetry = DefaultStuckRetry
	}
	r.mover = &archive.Mover{
		S3: conn.FastS3(), Bucket: c.Bucket, BasePath: c.BasePath,
		MultipartThreshold: o.MultipartThreshold, PartSize: o.PartSize,
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
	// Skipped files cannot be read or copied at all (SSE-C, an archive
	// storage class): they stay in the inbox, are reported, and do not
	// fail the run. Blocked files were imported but their move is denied
	// (a lock or a policy): they are not imported again, their move is
	// retried, and they do not fail the run either; both have their own
	// metrics and alerts. Each is counted once per run, whether it was
	// tried this run or left out until its next try.
	Skipped, Blocked int
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
	if s.Skipped > 0 {
		line += fmt.Sprintf(", %d skipped (cannot be read)", s.Skipped)
	}
	if s.Blocked > 0 {
		line += fmt.Sprintf(", %d blocked (imported, but the move is denied)", s.Blocked)
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
// bits). It names the run in logs and reports.
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
	outSkipped
	outBlocked
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

	ru := &run{r: r, id: s.RunID, log: log, s: &s, moveSlots: make(chan struct{}, 2*r.workers)}
	ru.state = newStateStore(r.s3.Client, r.bucket, r.base, r.region)
	if err := ru.state.load(ctx); err != nil {
		// Without the records a failing file is only retried, never given
		// up on, and a file whose move is pending is imported again (at
		// least once); that is safe, so carry on.
		log.Warn("cannot read the file state records; max_attempts is not enforced and pending moves may import again this run", zap.Error(err))
		ru.state = nil
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
	lister := &Lister{S3: r.s3, Bucket: r.bucket, BasePath: r.base, Region: r.region, Filter: r.filter, PageSize: r.pageSize, Skip: ru.leaveOut}
	var (
		stats   ListStats
		listErr error
		wg      sync.WaitGroup
	)
	wg.Go(func() {
		defer close(queue)
		defer func() {
			// A panic while listing (the lister or its Skip hook) ends
			// the run as a failed listing, not the process.
			if p := recover(); p != nil {
				pe := recovered(p)
				r.metrics.ProcessingPanicRecovered(r.name)
				log.Error("listing the inbox panicked; the run stops", zap.Any("panic", pe.value), zap.ByteString("stack", pe.stack))
				listErr = fmt.Errorf("list: %w", pe)
			}
		}()
		stats, listErr = lister.List(listCtx, queue)
		ru.sendRetries(listCtx, queue, &stats, listErr == nil)
	})
	for range r.workers {
		wg.Go(func() {
			for f := range queue {
				if stopped() {
					// Not started: untouched in the inbox for the next run.
					// Left for retry in the summary, but not counted in
					// s3connector_files_total: nothing was attempted, and a
					// shutdown or reload must not read as a failure rate.
					ru.mu.Lock()
					s.Retry++
					ru.mu.Unlock()
					continue
				}
				ru.tally(ru.processSafely(ctx, f))
			}
		})
	}
	wg.Wait()
	// Every started move ends (see moveAsync) before the run does.
	ru.moves.Wait()
	if ru.state != nil && listErr == nil && !stopped() && ctx.Err() == nil {
		// The listing went through the inbox: records of files no longer
		// there can go (while the lease is still ours).
		if n, err := ru.state.removeOrphans(ctx, r.base); err != nil {
			log.Warn("cannot remove the state records of files gone from the inbox; the next run tries again", zap.Error(err))
		} else if n > 0 {
			log.Info("removed the state records of files gone from the inbox", zap.Int("records", n))
		}
	}
	leaseErr := lease.end(ctx)

	s.Listed = stats.Listed
	s.Skipped += ru.leftOut.skipped
	s.Blocked += ru.leftOut.blocked
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
		r.metrics.SetWaiting(r.name, stats.Listed+stats.Skipped)
		r.metrics.SetSkipped(r.name, s.Skipped)
		r.metrics.SetBlocked(r.name, s.Blocked)
		r.metrics.RunFinished(r.name, s.Duration, s.OK(), r.now())
	}
	fields := []zap.Field{zap.Int("listed", s.Listed), zap.Int("imported", s.Imported), zap.Int("archived", s.Archived),
		zap.Int("errored", s.Errored), zap.Int("retry", s.Retry), zap.Int("skipped", s.Skipped), zap.Int("blocked", s.Blocked),
		zap.Int64("bytes", s.Bytes), zap.Duration("duration", s.Duration)}
	if s.Err != nil {
		log.Error("run stopped early", append(fields, zap.Error(s.Err))...)
	} else {
		log.Info("run finished", fields...)
	}
	return s
}

// run is the state of one pass over the inbox.
type run struct {
	r   *Runner
	id  string
	log *zap.Logger
	s   *Summary
	// state holds the per-file records; nil when they could not be read.
	state *stateStore
	// leftOut counts the files the listing left out until their next try
	// (see leaveOut); retries and deferred are the stuck files due for
	// their next try that were sent, and that wait for room after the
	// listing (sendRetries). Only the lister's goroutine uses them;
	// leftOut is read after the listing has ended.
	leftOut  struct{ skipped, blocked int }
	retries  int
	deferred []deferredRetry
	// mu guards s's counts while workers and moves tally outcomes.
	mu sync.Mutex
	// moves are the moves whose delete is in flight (moveAsync); moveSlots
	// bounds them.
	moves     sync.WaitGroup
	moveSlots chan struct{}
}

// tally counts one file's outcome in the summary; a result whose move is
// still in flight is counted when its delete's answer arrives.
func (ru *run) tally(res result) {
	if res.pending {
		return
	}
	s := ru.s
	ru.mu.Lock()
	defer ru.mu.Unlock()
	switch res.out {
	case outArchived:
		s.Archived++
		s.Bytes += res.bytes
	case outErrored:
		s.Errored++
		s.Bytes += res.bytes
	case outRetry:
		s.Retry++
	case outVanished:
		s.Vanished++
	case outSkipped:
		s.Skipped++
	case outBlocked:
		s.Blocked++
	}
	if res.imported {
		s.Imported++
	}
}

// result is what process did with one file.
type result struct {
	out      outcome
	imported bool  // the importer accepted the file this run
	bytes    int64 // the file's size, counted when it was moved
	// pending: the file's move is in flight and tallies its own result
	// (moveAsync); the other fields are unset.
	pending bool
}

// leaveOut is the lister's Skip hook: a file whose record says it cannot
// be read or moved before a later try is left out of this run, without
// counting toward max_files, so stuck files cannot starve the others. It
// is still counted as skipped or blocked, so every run's summary and
// metrics show it.
//
// With max_files, stuck files whose next try has come take at most half
// of it (rounded down) while the listing goes on; the others due wait
// until the listing has ended and fill what room the new files left
// (sendRetries), the longest overdue first. So many stuck files, all due
// again once stuck_retry has passed, can never crowd out the files after
// them: every run takes at least half of max_files (rounded up) of the
// others when there are that many, and the stuck files are still tried
// when the inbox has room (and always, up to half, when max_files is 2 or
// more).
func (ru *run) leaveOut(ctx context.Context, f File) (bool, error) {
	ru.r.hook("list", f)
	if ru.state == nil {
		return false, nil
	}
	rec, err := ru.state.lookup(ctx, f)
	if err != nil {
		ru.log.Warn("cannot read the file's state record; it is processed as new", zap.String("key", f.Key), zap.Error(err))
		return false, nil
	}
	if rec == nil || (rec.Skipped == "" && rec.Blocked == "") {
		return false, nil
	}
	if rec.stuck(ru.r.now()) {
		ru.countLeftOut(rec.Skipped)
		return true, nil
	}
	// Due for its next try.
	maxFiles := ru.r.filter.MaxFiles
	if maxFiles <= 0 {
		return false, nil
	}
	if ru.retries < maxFiles/2 {
		ru.retries++
		return false, nil
	}
	ru.deferRetry(deferredRetry{f: f, nextTry: rec.NextTry, skipped: rec.Skipped}, maxFiles)
	return true, nil
}

// countLeftOut counts a stuck file left out of this run: skipped (reason
// set, a metrics.Skip* value) or blocked.
func (ru *run) countLeftOut(skipped string) {
	if skipped != "" {
		ru.leftOut.skipped++
		ru.r.metrics.FileSkipped(ru.r.name, skipped)
	} else {
		ru.leftOut.blocked++
	}
}

// deferredRetry is a stuck file due for its next try that waits for room
// after the listing (see leaveOut).
type deferredRetry struct {
	f       File
	nextTry time.Time
	skipped string // its skip reason; "" = blocked
}

// deferRetry keeps d for sendRetries. No more than limit (max_files) can
// ever be sent, so no more are kept: past that, the one whose next try
// came last is left out of this run.
func (ru *run) deferRetry(d deferredRetry, limit int) {
	if len(ru.deferred) < limit {
		ru.deferred = append(ru.deferred, d)
		return
	}
	latest := 0
	for i, o := range ru.deferred {
		if o.nextTry.After(ru.deferred[latest].nextTry) {
			latest = i
		}
	}
	if d.nextTry.Before(ru.deferred[latest].nextTry) {
		d, ru.deferred[latest] = ru.deferred[latest], d
	}
	ru.countLeftOut(d.skipped)
}

// sendRetries ends the listing: once it went through the whole inbox
// (complete) with room left under max_files, the stuck files leaveOut
// deferred are sent into that room, the longest overdue first; the rest
// are left out of this run, counted as skipped or blocked.
func (ru *run) sendRetries(ctx context.Context, queue chan<- File, st *ListStats, complete bool) {
	deferred := ru.deferred
	ru.deferred = nil
	slices.SortStableFunc(deferred, func(a, b deferredRetry) int { return a.nextTry.Compare(b.nextTry) })
	room := 0
	if complete {
		room = ru.r.filter.MaxFiles - st.Listed
	}
	for i, d := range deferred {
		if i >= room || ctx.Err() != nil {
			ru.countLeftOut(d.skipped)
			continue
		}
		select {
		case queue <- d.f:
			st.Listed++
			st.Skipped--
			st.Bytes += d.f.Size
		case <-ctx.Done():
			ru.countLeftOut(d.skipped)
		}
	}
}

// process imports one file and moves it; a file whose import was decided
// by an earlier run (its move failed) is only moved. pr follows what has
// been decided (see crashed).
func (ru *run) process(ctx context.Context, f File, pr *progress) result {
	r := ru.r
	log := fileLog{ru.log, f.Key}
	if r.metrics != nil {
		r.metrics.WorkerBusy(r.name, 1)
		defer r.metrics.WorkerBusy(r.name, -1)
	}
	if ctx.Err() != nil {
		return result{out: r.done(outRetry, f, 0)}
	}
	if ru.state != nil {
		rec, err := ru.state.lookup(ctx, f)
		if err != nil {
			log.Warn("cannot read the file's state record; it is processed as new", zap.Error(err))
		}
		if rec != nil && rec.Verdict != "" {
			return ru.finishMove(ctx, log, f, rec, pr)
		}
	}

	if r.maxFileSize > 0 && f.Size > r.maxFileSize {
		return ru.tooLarge(ctx, log, f, pr)
	}
	// A key the importer cannot store is decided before the download.
	if err := ru.precheck(ctx, log, f); err != nil {
		return ru.refused(ctx, log, f, err, pr)
	}

	// 1. GET pinned to the listed ETag (large files in parallel ranges).
	r.hook("read", f)
	obj, err := r.getObject(ctx, f)
	if err != nil {
		err = connector.Classify(err, r.region)
		switch {
		case errors.Is(err, connector.ErrPreconditionFailed):
			log.Info("file changed since it was listed; it is taken next run")
			return result{out: r.done(outRetry, f, 0)}
		case errors.Is(err, connector.ErrNotFound):
			log.Info("file vanished before it was read")
			return result{out: r.done(outVanished, f, 0)}
		case errors.Is(err, connector.ErrSSECUnsupported):
			return result{out: ru.skip(ctx, log, f, metrics.SkipSSEC, err)}
		case errors.Is(err, connector.ErrArchivedObject):
			return result{out: ru.skip(ctx, log, f, metrics.SkipArchivedStorage, err)}
		}
		return result{out: ru.transient(ctx, log, f, nil, fmt.Errorf("read: %w", err), pr)}
	}
	f.VersionID = aws.ToString(obj.VersionId)
	f.ContentType = aws.ToString(obj.ContentType)
	f.Metadata = obj.Metadata
	src := archive.Source{
		Bucket: r.bucket, Key: f.Key, RelKey: f.RelKey, ETag: f.ETag, VersionID: f.VersionID,
		Modified: f.LastModified, Size: aws.ToInt64(obj.ContentLength), Attrs: archive.AttributesFromGet(obj),
	}

	// 2. Stream the body into the importer.
	body := &trackingReader{r: obj.Body}
	start := time.Now()
	importErr := ru.importSafely(ctx, log, f, body)
	if r.metrics != nil {
		r.metrics.ObserveImport(r.name, time.Since(start))
	}
	closeBody(obj.Body)
	if pe := (*panicError)(nil); errors.As(body.err, &pe) {
		// The download itself crashed (a range fetch, see
		// newRangedReader): whatever the importer made of the broken
		// body, that is this file's failure, as a panic of process is.
		return ru.crashed(ctx, log, f, pr, &src, pe)
	}
	if body.err != nil {
		// Reading from S3 failed: whatever the importer made of it, the
		// content was not at fault (I4), and a success built on a failed
		// read (an importer that swallowed the error) cannot be trusted
		// to hold the whole file. Transient: the file is tried again.
		importErr = fmt.Errorf("%w: %w", errReadBody, body.err)
	}

	// 3. Decide where it goes, then move.
	switch {
	case importErr == nil:
		return ru.moveAsync(ctx, log, f, src, verdictArchive, result{imported: true, bytes: src.Size}, pr)
	case IsPermanent(importErr) && ctx.Err() == nil:
		code := ReasonRejected
		if errors.Is(importErr, errImporterPanic) {
			code = ReasonImporterCrashed
		}
		log.Warn("importer rejected the file", zap.Error(importErr))
		return result{out: ru.move(ctx, log, f, src, verdictError, ru.report(f, code, publicReason(importErr), 1, time.Time{}), pr), bytes: src.Size}
	}
	return result{out: ru.transient(ctx, log, f, &src, importErr, pr)}
}

// finishMove completes the move of a file an earlier run imported (or
// rejected) but could not move: the importer is not asked again. Only the
// delete is left when the copy exists; otherwise the file is copied again
// (to the same name, see archive.DestKey). An archive copy that keeps
// failing is given up on after max_attempts: the file goes to error/.
func (ru *run) finishMove(ctx context.Context, log fileLog, f File, rec *fileRecord, pr *progress) result {
	r := ru.r
	src := archive.Source{Bucket: r.bucket, Key: f.Key, RelKey: f.RelKey, ETag: f.ETag, Modified: f.LastModified, Size: f.Size}
	// The importer decided in an earlier run: whatever happens now, no
	// crash may send the file through the importer's path again.
	*pr = progress{verdict: rec.Verdict, code: rec.ReasonCode, reason: rec.Reason, copied: rec.Copied}
	if rec.Copied != "" {
		r.hook("move", f)
		if err := r.mover.Delete(ctx, src); err != nil {
			return result{out: ru.moveFailed(ctx, log, f, rec.Verdict, rec.ReasonCode, rec.Reason, &archive.DeleteError{Key: f.Key, Copy: rec.Copied, Err: err})}
		}
		return result{out: ru.moved(ctx, log, f, f.Size, rec.Verdict, rec.Copied, rec.Reason), bytes: f.Size}
	}
	// The copy keeps the source's encryption and storage class: read them
	// (and the version) again, pinned to the imported ETag.
	src, res, ok := ru.head(ctx, log, f)
	if !ok {
		return res
	}
	f.VersionID = src.VersionID
	verdict, code, reason, attempts := rec.Verdict, rec.ReasonCode, rec.Reason, max(rec.Attempts, 1)
	if verdict == verdictArchive && r.maxAttempts > 0 && rec.Attempts >= r.maxAttempts {
		verdict, code = verdictError, ReasonArchiveFailed
		reason = fmt.Sprintf("imported, but archiving it failed %d times (max_attempts %d); last error: %s", rec.Attempts, r.maxAttempts, rec.LastError)
	}
	var report *archive.Report
	if verdict == verdictError {
		report = ru.report(f, code, reason, attempts, rec.First)
	}
	return result{out: ru.move(ctx, log, f, src, verdict, report, pr), bytes: src.Size}
}

// tooLarge sends a file above max_file_size to error/ without reading it.
func (ru *run) tooLarge(ctx context.Context, log fileLog, f File, pr *progress) result {
	r := ru.r
	src, res, ok := ru.head(ctx, log, f)
	if !ok {
		return res
	}
	reason := fmt.Sprintf("the file is %d bytes, more than the connection's max_file_size of %d bytes; it was not imported", f.Size, r.maxFileSize)
	log.Warn("file larger than max_file_size; it goes to error/ unread", zap.Int64("size", f.Size), zap.Int64("max_file_size", r.maxFileSize))
	return result{out: ru.move(ctx, log, f, src, verdictError, ru.report(f, ReasonTooLarge, reason, 1, time.Time{}), pr), bytes: src.Size}
}

// refused sends a file the importer's precheck refused (permanent, see
// Prechecker) to error/ without reading it, with the report Import's
// refusal would have had.
func (ru *run) refused(ctx context.Context, log fileLog, f File, err error, pr *progress) result {
	src, res, ok := ru.head(ctx, log, f)
	if !ok {
		return res
	}
	f.VersionID = src.VersionID
	code := ReasonRejected
	if errors.Is(err, errImporterPanic) {
		code = ReasonImporterCrashed
	}
	log.Warn("importer refused the file before it was downloaded", zap.Error(err))
	return result{out: ru.move(ctx, log, f, src, verdictError, ru.report(f, code, publicReason(err), 1, time.Time{}), pr), bytes: src.Size}
}

// head reads what a move keeps of a file (encryption, storage class,
// version) without its body, pinned to the listed ETag. When it fails, ok
// is false and res is the file's outcome: a file that cannot be read at
// all (SSE-C, an archive storage class) is skipped as on the GET path.
func (ru *run) head(ctx context.Context, log fileLog, f File) (src archive.Source, res result, ok bool) {
	r := ru.r
	src = archive.Source{Bucket: r.bucket, Key: f.Key, RelKey: f.RelKey, ETag: f.ETag, Modified: f.LastModified, Size: f.Size}
	out, err := r.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &r.bucket, Key: aws.String(f.Key), IfMatch: aws.String(f.ETag)})
	if err != nil {
		if httpStatus(err) == http.StatusBadRequest {
			// A HEAD's error has no body to tell why (see headRefusal):
			// ask again in a way whose answer does.
			if why := ru.headRefusal(ctx, f); why != nil {
				log.Info("HEAD of the file answered 400; a 1-byte GET says why", zap.NamedError("head_error", err), zap.Error(why))
				err = why
			}
		}
		err = connector.Classify(err, r.region)
		switch {
		case errors.Is(err, connector.ErrPreconditionFailed):
			log.Info("file changed since it was listed; the new version is taken next run")
			return src, result{out: r.done(outRetry, f, 0)}, false
		case errors.Is(err, connector.ErrNotFound):
			log.Info("file vanished before it was moved")
			return src, result{out: r.done(outVanished, f, 0)}, false
		case errors.Is(err, connector.ErrSSECUnsupported):
			return src, result{out: ru.skip(ctx, log, f, metrics.SkipSSEC, err)}, false
		case errors.Is(err, connector.ErrArchivedObject):
			return src, result{out: ru.skip(ctx, log, f, metrics.SkipArchivedStorage, err)}, false
		}
		log.Warn("cannot read the file's attributes; it is tried again next run", zap.Error(err))
		return src, result{out: r.done(outRetry, f, 0)}, false
	}
	src.VersionID, src.Attrs = aws.ToString(out.VersionId), archive.AttributesFromHead(out)
	return src, result{}, true
}

// headRefusal asks why a HEAD of f was answered 400 Bad Request, with a
// GET of its first byte pinned to the listed ETag, and returns the GET's
// error (nil if it succeeded: then the 400 stays unexplained). "If the
// HEAD request generates an error, it returns a generic code, such as 400
// Bad Request ... It's not possible to retrieve the exact exception of
// these error codes" (HeadObject, Amazon S3 API Reference): the SDK names
// such a bodiless 400 "BadRequest", which Classify leaves alone, since a
// HEAD is refused with 400 for other reasons too. The HEAD of an object
// encrypted with a customer-provided key (SSE-C) is one: it must carry the
// key headers ("If you encrypt an object by using server-side encryption
// with customer-provided encryption keys (SSE-C) when you store the object
// in Amazon S3, then when you retrieve the metadata from the object, you
// must use the following headers", same page). A GET's error has a body:
// 400 InvalidRequest "The object was stored using a form of Server Side
// Encryption..." for SSE-C, 403 InvalidObjectState for an archive storage
// class (GetObject, same reference), both of which Classify knows. One
// byte ("Range: bytes=0-0"; the whole of an empty object) costs nothing
// to read.
func (ru *run) headRefusal(ctx context.Context, f File) error {
	r := ru.r
	in := &s3.GetObjectInput{Bucket: &r.bucket, Key: aws.String(f.Key), IfMatch: aws.String(f.ETag)}
	if f.Size > 0 {
		in.Range = aws.String("bytes=0-0")
	}
	obj, err := r.s3.GetObject(ctx, in)
	if err != nil {
		return err
	}
	closeBody(obj.Body)
	return nil
}

// httpStatus is the HTTP status of an S3 answer that err carries, or 0.
func httpStatus(err error) int {
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		return status.HTTPStatusCode()
	}
	return 0
}

// skip leaves a file that cannot be read at all (SSE-C, an archive storage
// class) in the inbox, reported but without failing the run, and records
// it so that the next runs leave it out until its next try.
func (ru *run) skip(ctx context.Context, log fileLog, f File, reason string, cause error) outcome {
	r := ru.r
	next := r.now().Add(r.stuckRetry)
	log.Warn("file cannot be read; it stays in the inbox and is tried again later",
		zap.String("reason", reason), zap.Time("next_try", next), zap.Error(cause))
	r.metrics.FileSkipped(r.name, reason)
	if ru.state != nil {
		if _, err := ru.state.update(ctx, f, func(rec *fileRecord) {
			rec.Skipped, rec.NextTry, rec.Last, rec.LastError = reason, next, r.now().UTC(), publicReason(cause)
		}); err != nil {
			log.Warn("cannot record the skipped file", zap.Error(err))
		}
	}
	return outSkipped
}

// transient handles a transient failure: the file stays in the inbox,
// unless max_attempts is reached, then it goes to error/ with a report.
func (ru *run) transient(ctx context.Context, log fileLog, f File, src *archive.Source, cause error, pr *progress) outcome {
	r := ru.r
	if ctx.Err() != nil {
		log.Info("file left in the inbox: run cancelled", zap.Error(cause))
		return r.done(outRetry, f, 0)
	}
	if ru.state == nil || r.maxAttempts <= 0 {
		log.Warn("file left in the inbox for the next run", zap.Error(cause))
		return r.done(outRetry, f, 0)
	}
	// A file skipped before (unreadable then) that fails otherwise now
	// is no longer stuck: it counts as any failing file.
	rec, err := ru.state.fail(ctx, f, r.now(), publicReason(cause), func(rec *fileRecord) { rec.Skipped = "" })
	if err != nil {
		log.Warn("cannot record the failed attempt", zap.Error(err))
	}
	if rec.Attempts < r.maxAttempts || src == nil {
		// A file we could not even read cannot be copied to error/.
		log.Warn("file left in the inbox for the next run", zap.Error(cause), zap.Int("attempts", rec.Attempts))
		return r.done(outRetry, f, 0)
	}
	log.Warn("giving up on the file after its last attempt", zap.Error(cause), zap.Int("attempts", rec.Attempts))
	reason := fmt.Sprintf("gave up after %d attempts (max_attempts %d); last error: %s", rec.Attempts, r.maxAttempts, publicReason(cause))
	return ru.move(ctx, log, f, *src, verdictError, ru.report(f, ReasonGaveUp, reason, rec.Attempts, rec.First), pr)
}

// report is an error/ report. reason must be customer-safe (publicReason):
// the report is written into the customer's bucket.
func (ru *run) report(f File, code, reason string, attempts int, first time.Time) *archive.Report {
	r := ru.r
	return &archive.Report{
		ReasonCode: code, Reason: reason, Attempts: attempts, Connection: r.name, RunID: ru.id,
		Bucket: r.bucket, Key: f.Key, ETag: f.ETag, VersionID: f.VersionID, Size: f.Size,
		Modified: f.LastModified, FirstSeen: first, FailedAt: r.now().UTC(),
	}
}

func folderOf(verdict string) archive.Folder {
	if verdict == verdictError {
		return archive.Error
	}
	return archive.Archive
}

// move moves src to the folder of verdict (error/ with report), noting
// in pr that the move has started.
func (ru *run) move(ctx context.Context, log fileLog, f File, src archive.Source, verdict string, report *archive.Report, pr *progress) outcome {
	pr.moving(verdict, report)
	ru.r.hook("move", f)
	src.Uploads = ru.journal(log, f)
	res, err := ru.r.mover.Move(ctx, src, folderOf(verdict), report)
	code, reason := "", ""
	if report != nil {
		code, reason = report.ReasonCode, report.Reason
	}
	if err != nil {
		return ru.moveFailed(ctx, log, f, verdict, code, reason, err)
	}
	return ru.moved(ctx, log, f, src.Size, verdict, res.Key, reason)
}

// moveAsync is move for an imported file that leaves its final delete in
// flight: the worker takes the next file while the delete waits for its
// DeleteObjects batch, instead of spending a third round trip per file.
// The file's outcome is decided exactly as move decides it (moved or
// moveFailed: metrics, state record, logs), when the delete's answer
// arrives, and then tallied with res's other fields. At most
// cap(moveSlots) moves are in flight; RunUntil waits for all of them, and
// a delete finishes even when the run is cancelled (archive.MoveAsync), so
// a stopping run still finishes every move it started.
func (ru *run) moveAsync(ctx context.Context, log fileLog, f File, src archive.Source, verdict string, res result, pr *progress) result {
	ru.moveSlots <- struct{}{}
	// A slot taken is given back whatever happens, a panic included.
	handedOff := false
	defer func() {
		if !handedOff {
			<-ru.moveSlots
		}
	}()
	pr.moving(verdict, nil)
	ru.r.hook("move", f)
	src.Uploads = ru.journal(log, f)
	p, err := ru.r.mover.MoveAsync(ctx, src, folderOf(verdict), nil)
	if err != nil {
		res.out = ru.moveFailed(ctx, log, f, verdict, "", "", err)
		return res
	}
	// The copy exists, under the name the version's moves always take.
	copied := archive.DestKey(ru.r.base, folderOf(verdict), src.RelKey, src.Version())
	handedOff = true
	ru.moves.Go(func() {
		defer func() { <-ru.moveSlots }()
		res.out = ru.finishPending(ctx, log, f, src.Size, verdict, copied, p)
		ru.tally(res)
	})
	return result{pending: true}
}

// journal is the archive.UploadJournal of f's moves: its state record
// (nil when the run keeps no state).
func (ru *run) journal(log fileLog, f File) archive.UploadJournal {
	if ru.state == nil {
		return nil
	}
	return uploadJournal{state: ru.state, log: log, f: f}
}

// uploadJournal keeps a file's multipart uploads in its state record.
type uploadJournal struct {
	state *stateStore
	log   fileLog
	f     File
}

func (j uploadJournal) Uploads(ctx context.Context) ([]archive.Upload, error) {
	return j.state.uploads(ctx, j.f)
}

func (j uploadJournal) Record(ctx context.Context, ups []archive.Upload) error {
	if _, err := j.state.update(ctx, j.f, func(r *fileRecord) { r.Uploads = ups }); err != nil {
		return err
	}
	if len(ups) > 0 {
		// Once per multipart copy (files over 5 GiB). The torture suite's
		// crash scenario reads it: an upload left in the bucket that a
		// line names was recorded, so a later move had to abort it.
		u := ups[len(ups)-1]
		j.log.Info("multipart upload recorded", zap.String("upload_id", u.ID), zap.String("to", u.Key))
	}
	return nil
}

// finishPending waits for a pending move's delete and records the outcome.
// It survives a panic of its own as processSafely does (crashed): the
// copy exists, so the attempt is recorded as a failed delete, and the next
// run only deletes the original, if it is still there.
func (ru *run) finishPending(ctx context.Context, log fileLog, f File, size int64, verdict, copied string, p *archive.PendingMove) (out outcome) {
	defer func() {
		if v := recover(); v != nil {
			out = ru.crashed(ctx, log, f, &progress{verdict: verdict, copied: copied}, nil, recovered(v)).out
		}
	}()
	ru.r.hook("finish", f)
	moved, err := p.Wait()
	if err != nil {
		return ru.moveFailed(ctx, log, f, verdict, "", "", err)
	}
	return ru.moved(ctx, log, f, size, verdict, moved.Key, "")
}

// moved records a file that has left the inbox.
func (ru *run) moved(ctx context.Context, log fileLog, f File, size int64, verdict, dest, reason string) outcome {
	if ru.state != nil {
		if err := ru.state.clear(ctx, f); err != nil {
			log.Warn("cannot clear the file's state record", zap.Error(err))
		}
	}
	if verdict == verdictError {
		log.Warn("file moved to error/", zap.String("to", dest), zap.String("reason", reason))
		return ru.r.done(outErrored, f, size)
	}
	log.Debug("file archived", zap.String("to", dest), zap.Int64("bytes", size))
	return ru.r.done(outArchived, f, size)
}

// Advice for a blocked move step, logged with it.
const (
	adviceCopyBlocked   = "copying the file within the bucket was denied: the role's permissions policy must allow s3:GetObject, s3:GetObjectVersion and s3:GetObjectTagging on the inbox and s3:PutObject and s3:PutObjectTagging on archive/ and error/ (regenerate it with `s3connector policy`), and no bucket policy may deny them; SSE-KMS buckets also need the key policy statement"
	adviceDeleteBlocked = "the file was imported and copied, but deleting the original was denied; it is not imported again, only the delete is retried. Check for a bucket policy that denies s3:DeleteObject, the role's permissions policy (s3:DeleteObject and s3:GetObject on the base path), and Object Lock: a delete without a version id (what the connector sends) only adds a delete marker, which retention and legal holds allow, but a bucket policy may still forbid it"
)

// moveFailed handles a move that did not complete after the importer's
// verdict. The verdict is recorded so the file is not imported again: the
// next run only moves it (finishMove). A step denied by permissions or a
// lock is a connection-level problem: the file is blocked, counted in its
// metric, logged with advice, and tried again after stuck_retry.
func (ru *run) moveFailed(ctx context.Context, log fileLog, f File, verdict, code, reason string, err error) outcome {
	r := ru.r
	var de *archive.DeleteError
	isDelete := errors.As(err, &de)
	cause := connector.Classify(err, r.region)
	switch {
	case errors.Is(cause, connector.ErrPreconditionFailed) && isDelete:
		// The imported version is safely copied; a newer one replaced it
		// in the inbox meanwhile, and stays there for the next run (I3).
		log.Info("file changed while it was moved; the imported version is archived and the new one is taken next run", zap.String("copy", de.Copy))
		return ru.moved(ctx, log, f, f.Size, verdict, de.Copy, reason)
	case errors.Is(cause, connector.ErrPreconditionFailed):
		log.Info("file changed while it was imported; the new version is taken next run")
		return r.done(outRetry, f, 0)
	case !isDelete && errors.Is(err, context.Canceled):
		log.Info("file left in the inbox: run cancelled before its move")
		return r.done(outRetry, f, 0)
	case !isDelete && errors.Is(cause, connector.ErrArchivedObject):
		return ru.copySkipped(ctx, log, f, verdict, code, reason, metrics.SkipArchivedStorage, err)
	case !isDelete && errors.Is(cause, connector.ErrSSECUnsupported):
		return ru.copySkipped(ctx, log, f, verdict, code, reason, metrics.SkipSSEC, err)
	}
	op, advice := metrics.OpCopy, adviceCopyBlocked
	if isDelete {
		op, advice = metrics.OpDelete, adviceDeleteBlocked
	}
	blocked := errors.Is(cause, connector.ErrAccessDenied)
	lastError := publicMoveReason(op, blocked)
	var pe *archive.PanicError
	switch {
	case errors.As(err, &pe):
		// A part copy panicked (archive recovered it): a bug, logged
		// with its stack and counted like a panic of process.
		r.metrics.ProcessingPanicRecovered(r.name)
		log.Error("moving the file panicked", zap.Any("panic", pe.Value), zap.ByteString("stack", pe.Stack))
		lastError = "the connector crashed while moving the file"
	case errors.Is(err, errProcessingPanic):
		lastError = "the connector crashed while moving the file"
	}
	now := r.now()
	if ru.state != nil {
		// Recorded even when the run is being cancelled.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		_, rerr := ru.state.fail(rctx, f, now, lastError, func(rec *fileRecord) {
			rec.Verdict, rec.ReasonCode, rec.Reason, rec.Blocked, rec.Skipped = verdict, code, reason, "", ""
			if isDelete {
				rec.Copied = de.Copy
			}
			if blocked {
				rec.Blocked, rec.NextTry = op, now.Add(r.stuckRetry)
			}
		})
		cancel()
		if rerr != nil {
			log.Warn("cannot record the pending move; the file may be imported again next run", zap.Error(rerr))
		}
	}
	if blocked {
		r.metrics.MoveBlocked(r.name, op)
		log.Error("move blocked: "+advice, zap.String("operation", op), zap.Error(err))
		return outBlocked
	}
	if isDelete {
		log.Warn("copied but could not delete the original; only the delete is retried next run", zap.String("copy", de.Copy), zap.Error(err))
	} else {
		log.Warn("move failed; the file stays in the inbox and only its move is retried next run", zap.Error(err))
	}
	return r.done(outRetry, f, 0)
}

// copySkipped handles a move whose copy was refused because the object
// cannot be read at all: in an archive storage class ("Object is archived
// and inaccessible until restored", 403 InvalidObjectState, Amazon S3 API
// Reference; "If you want a permanent copy of the object, restore the
// object, and then create a copy of it", Restoring an archived object,
// Amazon S3 User Guide) or encrypted with a customer-provided key (SSE-C),
// whose copy needs the key. A HEAD answers for such an object (an archive
// class) and an object can move to one after its import, so a move meets
// it. No retry can copy it until someone restores it, so it is what a file
// the GET path cannot read is: skipped with the reason (the run summary,
// s3connector_files_skipped_total, /status), left in the inbox, tried again
// after stuck_retry, and not counted toward max_attempts (a move to error/
// would be refused the same way). The verdict is recorded, so the file is
// not imported again: once it is restored, its next try only moves it.
func (ru *run) copySkipped(ctx context.Context, log fileLog, f File, verdict, code, reason, skipReason string, err error) outcome {
	r := ru.r
	now := r.now()
	next := now.Add(r.stuckRetry)
	log.Warn("file cannot be copied within the bucket; it stays in the inbox and only its move is tried again later",
		zap.String("reason", skipReason), zap.String("verdict", verdict), zap.Time("next_try", next), zap.Error(err))
	r.metrics.FileSkipped(r.name, skipReason)
	if ru.state != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		_, rerr := ru.state.update(rctx, f, func(rec *fileRecord) {
			rec.Verdict, rec.ReasonCode, rec.Reason, rec.Blocked = verdict, code, reason, ""
			rec.Skipped, rec.NextTry, rec.Last, rec.LastError = skipReason, next, now.UTC(), publicReason(connector.Classify(err, r.region))
		})
		cancel()
		if rerr != nil {
			log.Warn("cannot record the skipped move; the file may be imported again next run", zap.Error(rerr))
		}
	}
	return outSkipped
}

// recordTimeout bounds writing a file's state record after its move failed.
const recordTimeout = 30 * time.Second

// done records a file's outcome in the metrics.
func (r *Runner) done(o outcome, f File, bytes int64) outcome {
	if r.metrics == nil || o == outVanished || o == outSkipped || o == outBlocked {
		// Skipped and blocked files have metrics of their own.
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

// fileLog logs the lines about one file, each with the file's key. Made
// for every file, it allocates nothing until a line is written: a file that
// goes well logs nothing at info, where a zap.Logger.With per file would
// build a logger and encode the key into a buffer of its own every time.
type fileLog struct {
	log *zap.Logger
	key string
}

func (l fileLog) Debug(msg string, fields ...zap.Field) { l.write(zapcore.DebugLevel, msg, fields) }
func (l fileLog) Info(msg string, fields ...zap.Field)  { l.write(zapcore.InfoLevel, msg, fields) }
func (l fileLog) Warn(msg string, fields ...zap.Field)  { l.write(zapcore.WarnLevel, msg, fields) }
func (l fileLog) Error(msg string, fields ...zap.Field) { l.write(zapcore.ErrorLevel, msg, fields) }

func (l fileLog) write(level zapcore.Level, msg string, fields []zap.Field) {
	if ce := l.log.Check(level, msg); ce != nil {
		ce.Write(append([]zap.Field{zap.String("key", l.key)}, fields...)...)
	}
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

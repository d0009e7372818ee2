package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"

	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/metrics"
)

// One writer per connection (I12). Two processes on one connection (two
// replicas, or `run --once` next to the daemon) must not work on the same
// files, so a run first takes the connection's lease: one small JSON object
// in the bucket, written only with conditional requests, renewed while the
// run goes on and left to expire if its holder dies.
//
// The requests, as the AWS S3 User Guide describes them ("How to prevent
// object overwrites with conditional writes",
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html,
// and "How to perform conditional deletes",
// https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html):
//   - take a free lease: PutObject If-None-Match: * — fails with 412
//     PreconditionFailed when the key exists;
//   - take over an expired lease, and renew ours: PutObject If-Match: <the
//     ETag read or last written> — 412 when the object changed since (someone
//     else wrote it); the PutObject reference adds "If a conflicting
//     operation occurs during the upload S3 returns a 409
//     ConditionalRequestConflict response. On a 409 failure you should fetch
//     the object's ETag and retry the upload". If-Match on PutObject needs
//     s3:GetObject as well as s3:PutObject: the generated policy grants both
//     on the base path;
//   - release: DeleteObject If-Match: <our ETag> — 412 on a mismatch, 409 on
//     a concurrent conflicting PUT or DELETE; it needs s3:GetObject as well
//     as s3:DeleteObject; "conditional delete evaluations only apply to the
//     current version of the object", so on a versioned bucket the release
//     leaves a delete marker, as any of our deletes does.
//
// The pinned MinIO (checked by TestLease*): it honours If-None-Match and
// If-Match on PutObject (412 on a mismatch, 404 NoSuchKey for If-Match on a
// missing key), but ignores If-Match on DeleteObject. So the release reads
// the lease first and deletes it only if it is still ours, and the tests
// check the If-Match we send on the recorded request; a 409 is injected the
// same way, since MinIO does not produce it on demand.

// LeaseKey is where a connection's lease lives under its base path: inside
// error/, which the lister skips, and inside the prefix on which the
// generated IAM policy grants get, put and delete.
const LeaseKey = connector.ErrorFolder + ".s3connector/lease.json"

const (
	// DefaultLeaseTTL is how long a lease lasts unless renewed; a run
	// renews it every third of that.
	DefaultLeaseTTL = 90 * time.Second
	// DefaultLeaseClockSkew is the clock difference between two hosts the
	// lease tolerates (see LeaseOptions.ClockSkew).
	DefaultLeaseClockSkew = 30 * time.Second
	// leaseAttempts bounds the tries to take a lease that keeps changing
	// under us (409 conflicts, takeovers racing with releases).
	leaseAttempts = 5
)

// ErrLeaseHeld is Summary.Err of a run that was skipped because another
// process holds the connection's lease; errors.As with *LeaseHeldError
// tells who and until when. It is not a failure: the other process is
// doing the work.
var ErrLeaseHeld = errors.New("lease held by another process")

// ErrLeaseLost is Summary.Err of a run that stopped taking new files
// because its lease was taken over by another process, or could not be
// renewed before it expired. Files already in progress were finished.
var ErrLeaseLost = errors.New("lease lost")

// LeaseHeldError says who holds a connection's lease; it matches
// ErrLeaseHeld.
type LeaseHeldError struct {
	Connection string
	Holder     string
	Expires    time.Time
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("connection %s is being processed by %s (lease until %s)",
		e.Connection, e.Holder, e.Expires.UTC().Format(time.RFC3339))
}

func (e *LeaseHeldError) Is(target error) bool { return target == ErrLeaseHeld }

// LeaseOptions tune a connection's lease; zero values are the defaults.
type LeaseOptions struct {
	// TTL is how long the lease lasts without renewal: how long a crashed
	// holder blocks the connection. 0 = DefaultLeaseTTL.
	TTL time.Duration
	// ClockSkew is how far the clocks of two hosts may differ. The expiry
	// in a lease is its holder's clock; another process takes the lease
	// over only once that expiry is ClockSkew past on its own clock, while
	// the holder itself stops taking files at the expiry on its clock. So
	// with clocks at most ClockSkew apart two holders never overlap (files
	// already in progress aside). 0 = DefaultLeaseClockSkew, or TTL when
	// that is shorter: a short TTL (fast takeover after a crash) asks for
	// clocks that agree within it.
	ClockSkew time.Duration
	// Holder names this process in the lease; "" = HolderID().
	Holder string
}

// HolderID names a lease holder: this process's random id (processID)
// and 6 random bytes of the holder's own, so that two runners in one
// process are told apart too. It never names the host or the process id:
// the lease object is in the customer's bucket, where internal host names
// must not go. The local log ties the id to both (takeLease).
func HolderID() string {
	b := make([]byte, 6)
	rand.Read(b) // never fails (crypto/rand)
	return processID() + "/" + hex.EncodeToString(b)
}

// processID is drawn once per process, so that the leases one process
// holds share a prefix, as they shared the host name and pid before.
var processID = sync.OnceValue(func() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "s3connector-" + hex.EncodeToString(b)
})

// leaseRecord is the lease object's content.
type leaseRecord struct {
	Holder     string    `json:"holder"`
	Connection string    `json:"connection"`
	Acquired   time.Time `json:"acquired"`
	Renewed    time.Time `json:"renewed"`
	Expires    time.Time `json:"expires"`
}

// lease is one run's hold on its connection's lease. acquire, then hold
// for the run's duration, then end.
type lease struct {
	s3                                      *s3.Client
	bucket, key, region, connection, holder string
	ttl, skew                               time.Duration
	now                                     func() time.Time
	log                                     *zap.Logger
	// panicked, if set, is told of a recovered panic of the renewal
	// goroutine (counted in s3connector_processing_panics_total); hook,
	// set by tests only, is called before each renewal.
	panicked func()
	hook     func()

	mu       sync.Mutex
	etag     string    // of our last write
	acquired time.Time // when we took it
	expires  time.Time // of our last write, our clock
	lostErr  error
	lost     chan struct{} // closed when the lease is lost

	done chan struct{} // closed by end: stop renewing
	wg   sync.WaitGroup
}

func newLease(client *s3.Client, bucket, base, region, connection string, o LeaseOptions, now func() time.Time, log *zap.Logger) *lease {
	l := &lease{
		s3: client, bucket: bucket, key: base + LeaseKey, region: region, connection: connection,
		holder: o.Holder, ttl: o.TTL, skew: o.ClockSkew, now: now, log: log,
		lost: make(chan struct{}), done: make(chan struct{}),
	}
	if l.ttl <= 0 {
		l.ttl = DefaultLeaseTTL
	}
	if l.skew <= 0 {
		l.skew = min(DefaultLeaseClockSkew, l.ttl)
	}
	if l.holder == "" {
		l.holder = HolderID()
	}
	return l
}

// acquire takes the lease: it creates the lease object if there is none,
// takes it over if it has expired, and returns a *LeaseHeldError if another
// holder's lease is live.
func (l *lease) acquire(ctx context.Context) error {
	var last error
	for attempt := range leaseAttempts {
		if attempt > 0 {
			if err := sleep(ctx, time.Duration(attempt)*100*time.Millisecond); err != nil {
				return err
			}
		}
		err := l.write(ctx, true, "")
		if err == nil {
			return nil
		}
		if conflict(err) {
			last = err
			continue
		}
		if !errors.Is(err, connector.ErrPreconditionFailed) {
			return fmt.Errorf("take lease %s: %w", l.key, err)
		}
		// It exists: whose is it, and is it live?
		rec, etag, err := l.read(ctx)
		switch {
		case errors.Is(err, connector.ErrNotFound):
			last = err // released meanwhile: try to create it again
			continue
		case err != nil:
			return fmt.Errorf("take lease %s: %w", l.key, err)
		}
		// Our own holder id is our own write (an SDK retry of a create
		// whose answer was lost finds it): ours, not someone else's.
		if rec.Holder != l.holder && l.live(rec) {
			return &LeaseHeldError{Connection: l.connection, Holder: rec.Holder, Expires: rec.Expires}
		}
		err = l.write(ctx, false, etag)
		switch {
		case err == nil:
			if rec.Holder != l.holder {
				l.log.Info("took over an expired lease", zap.String("previous_holder", rec.Holder), zap.Time("expired", rec.Expires))
			}
			return nil
		case conflict(err), errors.Is(err, connector.ErrPreconditionFailed), errors.Is(err, connector.ErrNotFound):
			// Someone else took it over or released it first: look again.
			last = err
			continue
		default:
			return fmt.Errorf("take over lease %s: %w", l.key, err)
		}
	}
	return fmt.Errorf("take lease %s: it kept changing under us: %w", l.key, last)
}

// live reports whether another holder's lease has not expired yet, by our
// clock with the skew allowance.
func (l *lease) live(rec leaseRecord) bool {
	return l.now().Before(rec.Expires.Add(l.skew))
}

// write puts a fresh lease record: If-None-Match: * when create, else
// If-Match: ifMatch. On success it becomes the lease we hold.
func (l *lease) write(ctx context.Context, create bool, ifMatch string) error {
	now := l.now()
	l.mu.Lock()
	acquired := l.acquired
	l.mu.Unlock()
	if acquired.IsZero() {
		acquired = now
	}
	rec := leaseRecord{Holder: l.holder, Connection: l.connection, Acquired: acquired.UTC(), Renewed: now.UTC(), Expires: now.Add(l.ttl).UTC()}
	body, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	in := &s3.PutObjectInput{
		Bucket: &l.bucket, Key: &l.key, Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String("application/json"),
		// A bucket with a default Object Lock retention refuses uploads
		// without it (connector.ContentMD5): no lease, no run, ever.
		ContentMD5: aws.String(connector.ContentMD5(body)),
	}
	if create {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(ifMatch)
	}
	out, err := l.s3.PutObject(ctx, in)
	if err != nil {
		return connector.Classify(err, l.region)
	}
	if aws.ToString(out.ETag) == "" {
		return fmt.Errorf("put %s: the store returned no ETag; the lease cannot be renewed conditionally", l.key)
	}
	l.mu.Lock()
	l.etag, l.acquired, l.expires = aws.ToString(out.ETag), acquired, rec.Expires
	l.mu.Unlock()
	return nil
}

// read gets the lease object and its ETag. An unreadable record counts as
// expiring TTL after it was written (by the store's clock), so a corrupt
// object never blocks a connection for good.
func (l *lease) read(ctx context.Context) (leaseRecord, string, error) {
	out, err := l.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &l.bucket, Key: &l.key})
	if err != nil {
		return leaseRecord{}, "", connector.Classify(err, l.region)
	}
	defer closeBody(out.Body)
	var rec leaseRecord
	b, err := io.ReadAll(io.LimitReader(out.Body, 64<<10))
	if err != nil {
		return leaseRecord{}, "", fmt.Errorf("read %s: %w", l.key, err)
	}
	if err := json.Unmarshal(b, &rec); err != nil || rec.Expires.IsZero() {
		rec = leaseRecord{Holder: "(unreadable lease record)", Expires: aws.ToTime(out.LastModified).Add(l.ttl)}
	}
	return rec, aws.ToString(out.ETag), nil
}

// renew extends our lease, conditionally on the ETag we last wrote. It
// returns an error matching ErrLeaseLost when someone else's write replaced
// ours (or the lease was deleted); other errors are transient.
func (l *lease) renew(ctx context.Context) error {
	l.mu.Lock()
	etag := l.etag
	l.mu.Unlock()
	err := l.write(ctx, false, etag)
	if err == nil || conflict(err) {
		return err
	}
	if !errors.Is(err, connector.ErrPreconditionFailed) && !errors.Is(err, connector.ErrNotFound) {
		return err
	}
	rec, current, rerr := l.read(ctx)
	switch {
	case errors.Is(rerr, connector.ErrNotFound):
		return fmt.Errorf("%w: the lease object was deleted", ErrLeaseLost)
	case rerr != nil:
		return rerr
	case rec.Holder == l.holder:
		// Our own write under a new ETag: an SDK retry of a renewal whose
		// first answer was lost. Still ours.
		l.mu.Lock()
		l.etag, l.expires = current, rec.Expires
		l.mu.Unlock()
		return nil
	}
	return fmt.Errorf("%w: connection %s was taken over by %s (lease until %s)",
		ErrLeaseLost, l.connection, rec.Holder, rec.Expires.UTC().Format(time.RFC3339))
}

// hold renews the lease every TTL/3 until end is called, and returns a
// channel closed when either stop is closed or the lease is lost: the
// run's new stop signal.
func (l *lease) hold(ctx context.Context, stop <-chan struct{}) <-chan struct{} {
	merged := make(chan struct{})
	l.wg.Go(func() {
		select {
		case <-stop:
		case <-l.lost:
		case <-l.done:
			return
		}
		close(merged)
	})
	l.wg.Go(func() { l.keep(ctx) })
	return merged
}

// keep renews the lease until end is called or it is lost. A panic in
// this goroutine would end the whole process: a renewal's panic is that
// renewal's error (renewSafely), retried as any failed renewal while the
// lease is still ours; a panic anywhere else here stops the renewals, so
// the lease is given up at once (lost: the run takes no new file) rather
// than left to lapse under a run that goes on.
func (l *lease) keep(ctx context.Context) {
	defer func() {
		if v := recover(); v != nil {
			pe := l.recovered(v)
			l.lose(fmt.Errorf("%w: renewing it panicked: %v", ErrLeaseLost, pe))
		}
	}()
	interval := l.ttl / 3
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		expires := l.expires
		l.mu.Unlock()
		// A renewal must not hang past our own expiry: at that moment
		// another process may take the lease over.
		rctx, cancel := context.WithDeadline(ctx, expires)
		err := l.renewSafely(rctx)
		cancel()
		switch {
		case err == nil:
			t.Reset(interval)
		case errors.Is(err, ErrLeaseLost):
			l.lose(err)
			return
		case !l.now().Before(expires):
			l.lose(fmt.Errorf("%w: not renewed before it expired at %s: %v", ErrLeaseLost, expires.UTC().Format(time.RFC3339), err))
			return
		default:
			if ctx.Err() != nil {
				return
			}
			// Transient (network, throttling, 409): try again soon, while
			// the lease is still ours.
			retry := min(interval/4, max(expires.Sub(l.now())/2, 10*time.Millisecond))
			l.log.Warn("cannot renew the lease; retrying", zap.Error(err), zap.Duration("retry_in", retry), zap.Time("lease_until", expires))
			t.Reset(retry)
		}
	}
}

// renewSafely is renew with a panic (in the SDK, or on a malformed
// answer) as its error.
func (l *lease) renewSafely(ctx context.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("renew lease %s: %w", l.key, l.recovered(v))
		}
	}()
	if l.hook != nil {
		l.hook()
	}
	return l.renew(ctx)
}

// recovered logs a panic of the renewal goroutine with its stack, counts
// it, and returns it as an error.
func (l *lease) recovered(v any) *panicError {
	pe := recovered(v)
	l.log.Error("renewing the lease panicked", zap.Any("panic", pe.value), zap.ByteString("stack", pe.stack))
	if l.panicked != nil {
		l.panicked()
	}
	return pe
}

func (l *lease) lose(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lostErr == nil {
		l.lostErr = err
		close(l.lost)
	}
}

// err is why the lease was lost, nil while it is held.
func (l *lease) err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lostErr
}

// end stops renewing and releases the lease if it is still ours. It
// returns why the lease was lost during the run, if it was.
func (l *lease) end(ctx context.Context) error {
	close(l.done)
	l.wg.Wait()
	if err := l.err(); err != nil {
		return err
	}
	// Even after a cancelled run the lease is released, so the next run
	// (here or elsewhere) need not wait for it to expire.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := l.release(rctx); err != nil {
		l.log.Warn("cannot release the lease; it expires by itself", zap.Error(err))
	}
	return nil
}

// release deletes the lease object if it is still ours. The delete is
// conditional on our ETag (AWS), and since MinIO ignores If-Match on
// DeleteObject the object's ETag is checked first: a lease someone took
// over after ours expired is never deleted by us, whatever the store.
func (l *lease) release(ctx context.Context) error {
	l.mu.Lock()
	etag := l.etag
	l.mu.Unlock()
	head, err := l.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &l.bucket, Key: &l.key})
	err = connector.Classify(err, l.region)
	switch {
	case errors.Is(err, connector.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("release lease %s: %w", l.key, err)
	case aws.ToString(head.ETag) != etag:
		// Someone else's now (or, rarely, our own write whose answer was
		// lost: it expires by itself).
		return nil
	}
	for attempt := range leaseAttempts {
		if attempt > 0 {
			if err := sleep(ctx, time.Duration(attempt)*100*time.Millisecond); err != nil {
				return err
			}
		}
		_, err = l.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &l.bucket, Key: &l.key, IfMatch: aws.String(etag)})
		err = connector.Classify(err, l.region)
		switch {
		case err == nil, errors.Is(err, connector.ErrNotFound):
			return nil
		case conflict(err):
			continue // a concurrent write or delete: try again (AWS: retry on 409)
		case errors.Is(err, connector.ErrPreconditionFailed):
			return nil // not ours any more: someone took it over
		default:
			return fmt.Errorf("release lease %s: %w", l.key, err)
		}
	}
	return fmt.Errorf("release lease %s: %w", l.key, err)
}

// conflict reports a 409 ConditionalRequestConflict: a conditional request
// that met a concurrent conflicting one and should be retried. (Classify
// puts it in ErrPreconditionFailed with the 412s; the lease must tell them
// apart: a 412 means someone else's write won, a 409 means try again.)
func conflict(err error) bool { return httpStatus(err) == http.StatusConflict }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// takeLease starts a run by taking the connection's lease. When it returns
// false the run must not go on: s says why (ErrLeaseHeld: skipped, counted
// in s3connector_runs_skipped_total; any other error: a failed run), and
// the outcome is logged and counted.
func (r *Runner) takeLease(ctx context.Context, log *zap.Logger, s *Summary) (*lease, bool) {
	l := newLease(r.s3.Client, r.bucket, r.base, r.region, r.name, r.leaseOpts, r.now, log)
	l.panicked = func() { r.metrics.ProcessingPanicRecovered(r.name) }
	if r.testHook != nil {
		l.hook = func() { r.hook("renew", File{}) }
	}
	err := l.acquire(ctx)
	if err == nil {
		// The holder id in the bucket is random; this line is what tells
		// ops which host and process it is.
		host, _ := os.Hostname()
		log.Info("took the connection's lease", zap.String("lease_holder", l.holder), zap.String("host", host), zap.Int("pid", os.Getpid()))
		return l, true
	}
	s.Err = err
	s.Duration = r.now().Sub(s.Started)
	if errors.Is(err, ErrLeaseHeld) {
		log.Info(err.Error() + "; skipping this run")
		if r.metrics != nil {
			r.metrics.RunSkipped(r.name, metrics.RunSkipLeaseHeld)
		}
		return nil, false
	}
	if ctx.Err() != nil {
		s.Err = ctx.Err()
	}
	log.Error("run not started: cannot take the connection's lease", zap.Error(err))
	if r.metrics != nil {
		r.metrics.RunFinished(r.name, s.Duration, false, r.now())
	}
	return nil, false
}

// LeaseHeld reports whether the run was skipped because another process
// holds the connection's lease (not a failure).
func (s Summary) LeaseHeld() bool { return errors.Is(s.Err, ErrLeaseHeld) }

// Package ingest takes files from a connection's inbox into importers: the
// Importer interface, the built-in importers (dir, exec, http, discard) and
// their registry, the lister, the worker pool and run loop (Runner) and the
// cron Scheduler. Moving a file afterwards is package archive's job.
package ingest

import (
	"context"
	"errors"
	"io"
	"time"
)

// File describes one object handed to an Importer.
type File struct {
	Bucket string
	// Key is the full object key; RelKey is Key without the base path.
	Key, RelKey  string
	Size         int64
	ETag         string
	VersionID    string
	LastModified time.Time
	ContentType  string
	Metadata     map[string]string
	// IdempotencyKey is stable for one version of one object (bucket, key,
	// ETag or version id): a file re-imported after a crash carries the same
	// key, so the sink can deduplicate.
	IdempotencyKey string
}

// Importer receives files. Import reads body (it need not read to the end;
// the caller drains and closes it) and returns:
//   - nil: the file is imported and will be moved to archive/;
//   - an error wrapped with Permanent: the content is bad and the file will
//     be moved to error/ with a report;
//   - any other error: transient trouble; the file stays in the inbox and is
//     retried on the next run.
//
// The rest of the contract, checked for any importer by package ingesttest
// (run ingesttest.Run on yours):
//   - Failed reads: an error from body (the connection to S3 broke) is
//     transient whatever the importer makes of it, and the sink must not
//     keep a partial file: publish only a complete body (write to a temporary
//     name and rename, check File.Size, or roll back).
//   - Cancellation: when ctx is done (shutdown past its grace, a reload),
//     return promptly, within seconds, with an error that is not permanent;
//     the file is retried. Body reads fail once ctx is done, but whatever
//     else Import waits for (a sink's answer, a child process) must watch
//     ctx too.
//   - No read after return: body is valid only until Import returns; no
//     goroutine Import started may read it afterwards (an HTTP transport
//     still sending a request body, say).
//   - At least once: the same version may be imported again (a crash
//     between import and move) with the same File.IdempotencyKey; that
//     import must succeed, and the sink should deduplicate by the key. A
//     new version under the same key has another IdempotencyKey and
//     replaces the old one.
//   - Concurrency: Import is called concurrently from several workers.
//   - Closing: an importer that also implements io.Closer owns resources
//     (connections, clients, files) that outlive one file. Whoever built it
//     closes it once it is retired, after its last Import returned: the
//     daemon does when a reload replaces its connection's runner, when a
//     validation attempt that built it fails, and when the daemon stops.
//     Close is called once; Import is not called after it.
//   - Refusing early: an importer that can tell from the File alone that
//     it will refuse a file whatever its content (a key it cannot store)
//     also implements Prechecker, so that the file goes to error/ before
//     its body is downloaded.
type Importer interface {
	Import(ctx context.Context, f File, body io.Reader) error
}

// Prechecker is implemented by importers that can refuse a file before its
// body is downloaded. Precheck is called for every file before its GET
// (with File's listing fields: Key, RelKey, Size, ETag, LastModified,
// IdempotencyKey; not ContentType, Metadata or VersionID, which come with
// the body) and returns:
//   - nil: no objection; the file is downloaded and Import decides, and
//     may still refuse it;
//   - a permanent error (Permanent, Rejected): Import would refuse the
//     file whatever its content; it goes to error/ with a report, exactly
//     as if Import had returned that error, and is never downloaded;
//   - any other error: ignored (logged at debug level); Import decides.
//     Transient trouble is Import's to report, where it counts toward
//     max_attempts as usual.
//
// Precheck must not change anything the sink keeps (it creates no file or
// folder, reserves nothing): the file may never be imported, and a file
// it passes may be rejected later anyway. It is called concurrently, as
// Import is, and a panic in it is the importer's crash (importer_crashed).
type Prechecker interface {
	Precheck(ctx context.Context, f File) error
}

// PermanentError marks an import failure that retrying cannot fix. Err is
// the whole story, for the daemon's log only. Reason, when set, is what the
// error/ report in the customer's bucket says instead: a short,
// customer-safe sentence (see Rejected).
type PermanentError struct {
	Err    error
	Reason string
}

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that IsPermanent reports true for it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// Rejected is Permanent with a customer-safe reason for the error/ report:
// it goes into the customer's bucket, so it must not carry a sink's
// response body, an internal URL or host name, a local path, a command's
// output or any environment value. Put those in err: they reach the
// daemon's log only. Without a reason, the report says "rejected by the
// importer".
func Rejected(reason string, err error) error {
	if err == nil {
		err = errors.New(reason)
	}
	return &PermanentError{Err: err, Reason: reason}
}

// IsPermanent reports whether err (or anything it wraps) is permanent.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
}

// Discard reads every body to the end and drops it: dry runs, and the
// pipeline benchmarks.
type Discard struct{}

// Import implements Importer.
func (Discard) Import(_ context.Context, _ File, body io.Reader) error {
	_, err := io.Copy(io.Discard, body)
	return err
}

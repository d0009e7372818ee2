package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"go.uber.org/zap"

	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/metrics"
)

// Reason codes of error/ reports (archive.Report.ReasonCode).
const (
	// ReasonRejected: the importer's permanent verdict on the content.
	ReasonRejected = "rejected"
	// ReasonImporterCrashed: the importer panicked on the file.
	ReasonImporterCrashed = "importer_crashed"
	// ReasonGaveUp: max_attempts transient failures.
	ReasonGaveUp = "gave_up"
	// ReasonArchiveFailed: imported, but archiving it failed max_attempts
	// times.
	ReasonArchiveFailed = "archive_failed"
	// ReasonTooLarge: larger than the connection's max_file_size.
	ReasonTooLarge = "too_large"
)

var (
	// errReadBody marks a failure to read the file's body from S3.
	errReadBody = errors.New("read body")
	// errImporterPanic marks an importer that panicked.
	errImporterPanic = errors.New("importer panicked")
)

// publicReason says what went wrong in words fit for the customer's bucket
// (error/ reports and file state records): a sink's response body, a host
// name, a local path, a command's output or an environment value never
// goes there; the daemon's log has the full error.
func publicReason(err error) string {
	var pe *PermanentError
	switch {
	case errors.As(err, &pe) && pe.Reason != "":
		return pe.Reason
	case errors.As(err, &pe):
		return "rejected by the importer"
	case errors.Is(err, errReadBody):
		return "reading the file from the bucket failed"
	case errors.Is(err, context.DeadlineExceeded):
		return "the importer timed out"
	case errors.Is(err, ErrSinkMisconfigured):
		return "the import service refused the connector (its address or credentials need the operator's attention)"
	case errors.Is(err, connector.ErrThrottled):
		return "the bucket asked the connector to slow down"
	case errors.Is(err, connector.ErrAccessDenied):
		return "access to the file was denied"
	case errors.Is(err, connector.ErrSSECUnsupported):
		return connector.ErrSSECUnsupported.Error()
	case errors.Is(err, connector.ErrArchivedObject):
		return connector.ErrArchivedObject.Error()
	}
	return "the import failed with a temporary error"
}

// publicMoveReason describes a failed move step for the state record.
func publicMoveReason(op string, denied bool) string {
	switch {
	case denied && op == metrics.OpDelete:
		return "deleting the original from the inbox was denied"
	case denied:
		return "copying the file within the bucket was denied"
	case op == metrics.OpDelete:
		return "deleting the original from the inbox failed with a temporary error"
	}
	return "copying the file within the bucket failed with a temporary error"
}

// importSafely calls the importer, turning a panic into that file's
// permanent failure: the daemon and the other files go on, the panic is
// logged with its stack and counted, and the file goes to error/ with a
// report saying the importer crashed (I4 does not apply: a crash on one
// file's content is repeated on every retry).
func (ru *run) importSafely(ctx context.Context, log fileLog, f File, body io.Reader) (err error) {
	defer func() {
		if p := recover(); p != nil {
			ru.r.metrics.PanicRecovered(ru.r.name)
			log.Error("importer panicked; the file goes to error/", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			err = Rejected("the importer crashed on this file", fmt.Errorf("%w: %v", errImporterPanic, p))
		}
	}()
	return ru.r.importer.Import(ctx, f, body)
}

// processSafely is process that survives a panic of its own (a bug in the
// connector, not the importer's: see importSafely): logged with its stack
// and counted, the file is left in the inbox, and the worker goes on.
func (ru *run) processSafely(ctx context.Context, f File) (res result) {
	defer func() {
		if p := recover(); p != nil {
			ru.r.metrics.PanicRecovered(ru.r.name)
			ru.log.Error("processing the file panicked; it stays in the inbox", zap.String("key", f.Key),
				zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			res = result{out: ru.r.done(outRetry, f, 0)}
		}
	}()
	return ru.process(ctx, f)
}

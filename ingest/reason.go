package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"go.uber.org/zap"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/metrics"
)

// Reason codes of error/ reports (archive.Report.ReasonCode).
const (
	// ReasonRejected: the importer's permanent verdict on the content.
	ReasonRejected = "rejected"
	// ReasonImporterCrashed: the importer panicked on the file.
	ReasonImporterCrashed = "importer_crashed"
	// ReasonProcessingCrashed: s3connector's own processing of the file
	// (outside the importer) panicked.
	ReasonProcessingCrashed = "processing_crashed"
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
	// errProcessingPanic marks a panic in the connector's own processing
	// of a file (see panicError).
	errProcessingPanic = errors.New("processing panicked")
)

// reasonProcessingCrashed is the error/ report's reason for a file whose
// processing panicked (ReasonProcessingCrashed); the log has the panic.
const reasonProcessingCrashed = "the connector crashed while processing this file (a fault in the connector, not in the file or the import service; its operator has the details)"

// panicError is a recovered panic of the connector's own code (not the
// importer's) as an error: that of a file's processing (processSafely,
// finishPending) or of a helper goroutine (a ranged download's fetch),
// which returns it as its result instead of crashing the process. stack
// is the panicking goroutine's stack, for the log; Error leaves it out.
type panicError struct {
	value any
	stack []byte
}

// recovered wraps the value of a recover() made in a deferred call, with
// the stack of the goroutine that panicked (not yet unwound there).
func recovered(v any) *panicError { return &panicError{value: v, stack: debug.Stack()} }

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }
func (e *panicError) Unwrap() error { return errProcessingPanic }

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
	case errors.Is(err, errProcessingPanic):
		return reasonProcessingCrashed
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

// precheck asks the importer, if it is a Prechecker, whether it refuses f
// before its body is downloaded; only a permanent error counts (see
// Prechecker). A panic is the importer's crash, as in importSafely.
func (ru *run) precheck(ctx context.Context, log fileLog, f File) (err error) {
	pc, ok := ru.r.importer.(Prechecker)
	if !ok {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			ru.r.metrics.PanicRecovered(ru.r.name)
			log.Error("importer panicked in its precheck; the file goes to error/", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			err = Rejected("the importer crashed on this file", fmt.Errorf("%w: %v", errImporterPanic, p))
		}
	}()
	if err := pc.Precheck(ctx, f); err != nil {
		if IsPermanent(err) {
			return err
		}
		log.Debug("the importer's precheck failed; the file is downloaded and the import decides", zap.Error(err))
	}
	return nil
}

// processSafely is process that survives a panic of its own (a bug in the
// connector, not the importer's: see importSafely): see crashed.
func (ru *run) processSafely(ctx context.Context, f File) (res result) {
	var pr progress
	defer func() {
		if p := recover(); p != nil {
			res = ru.crashed(ctx, fileLog{ru.log, f.Key}, f, &pr, nil, recovered(p))
		}
	}()
	return ru.process(ctx, f, &pr)
}

// progress is what one file's processing has decided so far: crashed
// needs it to tell a file the importer has not judged yet from one whose
// move is under way.
type progress struct {
	// verdict, code and reason are those of the move under way, set when
	// it starts (move, moveAsync, and finishMove for its delete).
	verdict, code, reason string
	// copied is the move's destination once its copy is known to exist.
	copied string
}

// moving records that a move to the folder of verdict has started.
func (pr *progress) moving(verdict string, report *archive.Report) {
	pr.verdict, pr.code, pr.reason, pr.copied = verdict, "", "", ""
	if report != nil {
		pr.code, pr.reason = report.ReasonCode, report.Reason
	}
}

// crashed handles a panic in the connector's own processing of f (pe; a
// bug here, not in the importer: see importSafely): it is logged with its
// stack and counted (s3connector_processing_panics_total), and then it is
// f's failure, as an importer's panic is, not a retry: a crash on one
// file comes back on every run, and the other files and the daemon go on.
//   - Before a move started: f goes to error/ with a processing_crashed
//     report. That decision is recorded first, so that if the move to
//     error/ crashes too, the next run only moves f (finishMove) and never
//     downloads or imports it again. src is what a move keeps of f, when
//     known (nil: read with a HEAD).
//   - During a move (the importer has decided, pr.verdict): the attempt is
//     recorded as the move's failure (moveFailed), so f is not imported
//     again, only its move is retried, and an archive copy that keeps
//     failing goes to error/ after max_attempts.
//
// A panic while doing so is logged and counted too, and leaves f in the
// inbox.
func (ru *run) crashed(ctx context.Context, log fileLog, f File, pr *progress, src *archive.Source, pe *panicError) (res result) {
	r := ru.r
	r.metrics.ProcessingPanicRecovered(r.name)
	log.Error("processing the file panicked", zap.Any("panic", pe.value), zap.ByteString("stack", pe.stack))
	defer func() {
		if p := recover(); p != nil {
			r.metrics.ProcessingPanicRecovered(r.name)
			log.Error("handling the panic of the file's processing panicked too; the file stays in the inbox",
				zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			res = result{out: r.done(outRetry, f, 0)}
		}
	}()
	if pr.verdict != "" {
		var err error = pe
		if pr.copied != "" {
			err = &archive.DeleteError{Key: f.Key, Copy: pr.copied, Err: pe}
		}
		return result{out: ru.moveFailed(ctx, log, f, pr.verdict, pr.code, pr.reason, err)}
	}
	if src == nil {
		s, res, ok := ru.head(ctx, log, f)
		if !ok {
			return res
		}
		src = &s
	}
	if f.VersionID == "" {
		f.VersionID = src.VersionID
	}
	attempts, first := 1, time.Time{}
	if ru.state != nil {
		rec, err := ru.state.fail(ctx, f, r.now(), reasonProcessingCrashed, func(rec *fileRecord) {
			rec.Verdict, rec.ReasonCode, rec.Reason, rec.Skipped = verdictError, ReasonProcessingCrashed, reasonProcessingCrashed, ""
		})
		if err != nil {
			log.Warn("cannot record the crashed file; if its move fails too, the next run reads it again", zap.Error(err))
		} else {
			attempts, first = max(rec.Attempts, 1), rec.First
		}
	}
	report := ru.report(f, ReasonProcessingCrashed, reasonProcessingCrashed, attempts, first)
	return result{out: ru.move(ctx, log, f, *src, verdictError, report, pr), bytes: src.Size}
}

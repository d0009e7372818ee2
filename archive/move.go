package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3connector/s3connector/connector"
)

// API is the part of the S3 client the move uses; *s3.Client implements it.
type API interface {
	CopyObject(context.Context, *s3.CopyObjectInput, ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	DeleteObjects(context.Context, *s3.DeleteObjectsInput, ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
	CreateMultipartUpload(context.Context, *s3.CreateMultipartUploadInput, ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPartCopy(context.Context, *s3.UploadPartCopyInput, ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error)
	CompleteMultipartUpload(context.Context, *s3.CompleteMultipartUploadInput, ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	GetObjectTagging(context.Context, *s3.GetObjectTaggingInput, ...func(*s3.Options)) (*s3.GetObjectTaggingOutput, error)
}

// Defaults of Mover.
const (
	// SingleCopyLimit is the largest object one CopyObject may copy (5 GiB).
	SingleCopyLimit int64 = 5 << 30
	// MinPartSize is S3's smallest part (except the last).
	MinPartSize int64 = 5 << 20
	// MaxParts is S3's largest number of parts in one upload.
	MaxParts = 10000
	// DefaultPartSize is the part size of multipart copies.
	DefaultPartSize int64 = 512 << 20
	// DefaultPartConcurrency is how many parts of one object are copied at
	// once.
	DefaultPartConcurrency = 4
	// finishTimeout bounds the completion of a move that has started
	// copying, counted from the cancellation of its context (see Move). A
	// move that is not cancelled has no time limit of its own: a
	// multipart copy of a large object may take many minutes.
	finishTimeout = 2 * time.Minute
)

// Source is the inbox object being moved, as the worker read it.
type Source struct {
	Bucket string
	// Key is the full key; RelKey is Key without the base path.
	Key, RelKey string
	// ETag is the listed ETag (with its quotes); every step is pinned to it.
	ETag string
	// VersionID is what GetObject answered on a versioned (or
	// versioning-suspended: "null") bucket. The copy reads exactly that
	// version when it is a real one; the delete never names it.
	VersionID string
	// Modified is the listed LastModified; with the ETag (or the version
	// id) it names the archived copy (DestKey).
	Modified time.Time
	Size     int64
	Attrs    Attributes
	// Uploads, when set, keeps the multipart uploads of the file's moves
	// (uploads.go): a move aborts those an earlier, killed move left, and
	// records its own before copying any part. nil: nothing is recorded,
	// and an upload a killed move leaves is left to the bucket's lifecycle
	// rules.
	Uploads UploadJournal
}

// Version is the source version that names its archived copy.
func (s Source) Version() Version {
	return Version{ID: s.VersionID, ETag: s.ETag, Modified: s.Modified}
}

// Attributes are what the archived copy keeps of the original.
type Attributes struct {
	ContentType, ContentEncoding, ContentDisposition, ContentLanguage, CacheControl string
	// Metadata is the user metadata (x-amz-meta-*).
	Metadata     map[string]string
	StorageClass types.StorageClass
	// Encryption: SSE is "", AES256 (SSE-S3), aws:kms or aws:kms:dsse;
	// KMSKeyID and BucketKeyEnabled go with the KMS kinds.
	SSE              types.ServerSideEncryption
	KMSKeyID         string
	BucketKeyEnabled bool
}

// AttributesFromGet reads the attributes from a GetObject response.
func AttributesFromGet(out *s3.GetObjectOutput) Attributes {
	return Attributes{
		ContentType:        aws.ToString(out.ContentType),
		ContentEncoding:    aws.ToString(out.ContentEncoding),
		ContentDisposition: aws.ToString(out.ContentDisposition),
		ContentLanguage:    aws.ToString(out.ContentLanguage),
		CacheControl:       aws.ToString(out.CacheControl),
		Metadata:           out.Metadata,
		StorageClass:       out.StorageClass,
		SSE:                out.ServerSideEncryption,
		KMSKeyID:           aws.ToString(out.SSEKMSKeyId),
		BucketKeyEnabled:   aws.ToBool(out.BucketKeyEnabled),
	}
}

// AttributesFromHead reads the attributes from a HeadObject response.
func AttributesFromHead(out *s3.HeadObjectOutput) Attributes {
	return Attributes{
		ContentType:        aws.ToString(out.ContentType),
		ContentEncoding:    aws.ToString(out.ContentEncoding),
		ContentDisposition: aws.ToString(out.ContentDisposition),
		ContentLanguage:    aws.ToString(out.ContentLanguage),
		CacheControl:       aws.ToString(out.CacheControl),
		Metadata:           out.Metadata,
		StorageClass:       out.StorageClass,
		SSE:                out.ServerSideEncryption,
		KMSKeyID:           aws.ToString(out.SSEKMSKeyId),
		BucketKeyEnabled:   aws.ToBool(out.BucketKeyEnabled),
	}
}

// Report is the sidecar written next to every error/ file, as
// <name>.error.json. It is written into the customer's bucket: ReasonCode
// is one of a few fixed codes and Reason a short customer-safe sentence,
// never a sink's answer, a host name, a local path, a command's output or
// an environment value (the daemon's log has those).
type Report struct {
	ReasonCode string    `json:"reason_code"`
	Reason     string    `json:"reason"`
	Attempts   int       `json:"attempts"`
	Connection string    `json:"connection"`
	RunID      string    `json:"run_id"`
	Bucket     string    `json:"bucket"`
	Key        string    `json:"key"`
	ETag       string    `json:"etag"`
	VersionID  string    `json:"version_id,omitempty"`
	Size       int64     `json:"size"`
	ErrorKey   string    `json:"error_key"`
	Modified   time.Time `json:"last_modified,omitzero"`
	FirstSeen  time.Time `json:"first_failure,omitzero"`
	FailedAt   time.Time `json:"failed_at"`
}

// Mover moves objects within one bucket and base path. It is safe for
// concurrent use.
type Mover struct {
	S3       API
	Bucket   string
	BasePath string
	// MultipartThreshold: objects larger than this are copied with
	// UploadPartCopy. 0 means SingleCopyLimit (5 GiB), the most one
	// CopyObject can copy, unless the test-only knob
	// connector.EnvTestMultipartThreshold lowers it; tests lower it.
	MultipartThreshold int64
	// PartSize of multipart copies; 0 means DefaultPartSize. It grows when
	// needed to stay within MaxParts.
	PartSize int64
	// PartConcurrency: parts of one object copied at once; 0 means
	// DefaultPartConcurrency.
	PartConcurrency int
	// SingleDeletes turns off batching of deletes into DeleteObjects.
	SingleDeletes bool

	batchOnce sync.Once
	batch     *deleteBatcher
}

// Result is where a moved file went.
type Result struct {
	// Key is the archived copy; Report the sidecar (error/ only).
	Key, Report string
}

// Move copies src to folder under the name DestKey gives its version and
// then deletes it from the inbox, pinned to src.ETag. For error/, report
// (required) is written first as the sidecar.
//
// Moving the same version again (after a crash, or after a delete that
// failed) is safe: it targets the same names, an existing copy or report
// counts as done (If-None-Match answers 412 on AWS; stores that ignore the
// header rewrite the same bytes), and the delete follows. So a version is
// archived exactly once.
//
// Once the copy has started, Move finishes the move even if ctx is
// cancelled (within a bounded time), so a cancelled run leaves no file
// half-moved; it starts nothing when ctx is already done.
//
// On error the original is still in the inbox, except when the error is
// from the final delete (*DeleteError): then a complete copy exists.
func (m *Mover) Move(ctx context.Context, src Source, folder Folder, report *Report) (Result, error) {
	p, err := m.MoveAsync(ctx, src, folder, report)
	if err != nil {
		return Result{}, err
	}
	return p.Wait()
}

// PendingMove is a move whose copy exists and whose delete is in flight.
type PendingMove struct {
	res  Result
	key  string
	done <-chan error
}

// Wait waits for the delete's answer and returns what Move returns: an
// error is a *DeleteError (the complete copy exists, the original is still
// in the inbox).
func (p *PendingMove) Wait() (Result, error) {
	if err := <-p.done; err != nil {
		return p.res, &DeleteError{Key: p.key, Copy: p.res.Key, Err: err}
	}
	return p.res, nil
}

// MoveAsync is Move without waiting for the final delete: it returns once
// the copy exists, with the delete sent (or queued for the next
// DeleteObjects batch), so the caller can go on while it is in flight. The
// delete finishes even if ctx is cancelled (within a bounded time), as in
// Move. On error no delete was sent: the original is still in the inbox.
func (m *Mover) MoveAsync(ctx context.Context, src Source, folder Folder, report *Report) (*PendingMove, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dest := DestKey(m.BasePath, folder, src.RelKey, src.Version())
	if len(dest) > MaxDestLength(folder) {
		return nil, fmt.Errorf("cannot %s %q: the destination key would be longer than S3's %d-byte limit; move or rename the file by hand", verb(folder), src.Key, MaxKeyLength)
	}
	if folder == Error && report == nil {
		return nil, errors.New("archive: moving to error/ needs a report")
	}
	// From here on, finish what we start even if the run is cancelled.
	parent := ctx
	ctx, cancel := finishContext(ctx, finishTimeout)
	defer cancel()

	res := Result{Key: dest}
	if report != nil {
		report.ErrorKey = dest
		res.Report = ReportKey(dest)
		if err := m.putReport(ctx, res.Report, src, report); err != nil && !m.copied(ctx, res.Report, err) {
			return nil, err
		}
	}
	if err := m.copy(ctx, src, dest); err != nil && !m.copied(ctx, dest, err) {
		if res.Report != "" {
			// Best effort: a report without its file would mislead. A
			// later move of this version writes it again.
			_, _ = m.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &m.Bucket, Key: &res.Report})
		}
		return nil, err
	}
	// The delete outlives this call: it gets its own finish context.
	return &PendingMove{res: res, key: src.Key, done: m.startDelete(parent, src)}, nil
}

// copied tells whether a write to dest that failed with 412 Precondition
// Failed (or 409 ConditionalRequestConflict) is in fact done: dest already
// exists. That is the case when an earlier move of the same version
// crashed before its delete, or when the answer to a successful
// CopyObject (or CompleteMultipartUpload) was lost and the SDK's retry
// failed its If-None-Match. dest is named after the source version and
// only ever written from it (CopySourceIfMatch), so if it exists the copy
// is done. The 412 of CopyObject's If-None-Match is AWS's documented
// answer since October 2025 ("Conditional writes", Amazon S3 User Guide,
// conditional-writes.html); MinIO ignores If-None-Match on copies, so
// move_test.go shows the case through a proxy answering as AWS does.
func (m *Mover) copied(ctx context.Context, dest string, err error) bool {
	if !errors.Is(connector.Classify(err, ""), connector.ErrPreconditionFailed) {
		return false
	}
	_, herr := m.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &m.Bucket, Key: &dest})
	return herr == nil
}

// finishContext returns a context that outlives parent by grace: it is
// not cancelled with parent, only grace after parent is done (or by the
// returned cancel).
func finishContext(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
			cancel(fmt.Errorf("move not finished %s after its run was cancelled: %w", grace, context.DeadlineExceeded))
		}
	})
	return ctx, func() { stop(); cancel(context.Canceled) }
}

// DeleteError reports a move whose copy succeeded but whose delete did not:
// the original stays in the inbox (and is re-imported by the next run).
type DeleteError struct {
	Key, Copy string
	Err       error
}

func (e *DeleteError) Error() string {
	return fmt.Sprintf("delete %q after copying it to %q: %v", e.Key, e.Copy, e.Err)
}
func (e *DeleteError) Unwrap() error { return e.Err }

func verb(f Folder) string {
	if f == Error {
		return "move to error/"
	}
	return "archive"
}

// CopySource is the x-amz-copy-source value for bucket/key: URL-encoded
// per path segment, with '+' encoded too (S3 would read it as a space).
func CopySource(bucket, key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(url.PathEscape(s), "+", "%2B")
	}
	return bucket + "/" + strings.Join(segs, "/")
}

// copySource is the x-amz-copy-source of src: pinned to its version when
// it has a real one. "To copy a specific version of an object, append
// ?versionId=<version-id> to the x-amz-copy-source request header", which
// needs s3:GetObjectVersion (CopyObject, Amazon S3 API Reference). A later
// upload under the same key is then never what gets copied, whatever its
// ETag. The version id "null" is not pinned: on a versioning-suspended
// bucket it names whatever the null version is now, and CopySourceIfMatch
// on the ETag already pins the content.
func copySource(src Source) string {
	cs := CopySource(src.Bucket, src.Key)
	if src.Version().Versioned() {
		cs += "?versionId=" + url.QueryEscape(src.VersionID)
	}
	return cs
}

func (m *Mover) threshold() int64 {
	if m.MultipartThreshold > 0 {
		return m.MultipartThreshold
	}
	// The torture suite's SIGKILLs must land in multipart copies, and its
	// files are small (connector/testknobs.go).
	if t := connector.MultipartThresholdOverride(); t > 0 {
		return t
	}
	return SingleCopyLimit
}

func (m *Mover) copy(ctx context.Context, src Source, dest string) error {
	// Uploads a killed move of this file left (recorded in its journal,
	// uploads.go) are aborted before this copy and again once it is done:
	// AWS documents that an abort may have to be repeated while a dead
	// process's part copies are still arriving. Best effort: the copy does
	// not depend on it, and failing the move for it would import the file
	// again.
	left := recordedUploads(ctx, src)
	if len(left) > 0 {
		_, _ = AbortUploads(ctx, m.S3, m.Bucket, left)
		defer func() { _, _ = AbortUploads(ctx, m.S3, m.Bucket, left) }()
	}
	if src.Size > m.threshold() {
		return m.multipartCopy(ctx, src, dest, func(id string) error {
			if src.Uploads == nil {
				return nil
			}
			return src.Uploads.Record(ctx, withUpload(left, Upload{Key: dest, ID: id}))
		})
	}
	in := &s3.CopyObjectInput{
		Bucket:            &m.Bucket,
		Key:               &dest,
		CopySource:        aws.String(copySource(src)),
		CopySourceIfMatch: aws.String(src.ETag),
		// Never replace an existing object: the name belongs to this
		// version, so an existing one is an earlier move's copy (AWS
		// answers 412, see copied; MinIO ignores the header and writes
		// the same bytes again).
		IfNoneMatch:       aws.String("*"),
		MetadataDirective: types.MetadataDirectiveCopy,
		TaggingDirective:  types.TaggingDirectiveCopy,
		StorageClass:      src.Attrs.StorageClass,
	}
	setEncryption(src.Attrs, &in.ServerSideEncryption, &in.SSEKMSKeyId, &in.BucketKeyEnabled)
	if _, err := m.S3.CopyObject(ctx, in); err != nil {
		return fmt.Errorf("copy %q to %q: %w", src.Key, dest, err)
	}
	return nil
}

// setEncryption asks for the source's encryption on the copy. Without it
// S3 would apply the bucket default, which may differ (I6).
func setEncryption(a Attributes, sse *types.ServerSideEncryption, keyID **string, bucketKey **bool) {
	switch a.SSE {
	case "":
		return
	case types.ServerSideEncryptionAwsKms, types.ServerSideEncryptionAwsKmsDsse:
		*sse = a.SSE
		if a.KMSKeyID != "" {
			*keyID = aws.String(a.KMSKeyID)
		}
		if a.BucketKeyEnabled {
			*bucketKey = aws.Bool(true)
		}
	default:
		*sse = a.SSE
	}
}

func (m *Mover) putReport(ctx context.Context, key string, src Source, r *Report) error {
	body, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	body = append(body, '\n')
	in := &s3.PutObjectInput{
		Bucket:      &m.Bucket,
		Key:         &key,
		Body:        bytes.NewReader(body),
		ContentType: aws.String("application/json"),
		IfNoneMatch: aws.String("*"),
		// A bucket with a default Object Lock retention refuses uploads
		// without it (connector.ContentMD5): no report, so no move to
		// error/ at all.
		ContentMD5: aws.String(connector.ContentMD5(body)),
	}
	setEncryption(src.Attrs, &in.ServerSideEncryption, &in.SSEKMSKeyId, &in.BucketKeyEnabled)
	if _, err := m.S3.PutObject(ctx, in); err != nil {
		return fmt.Errorf("write error report %q: %w", key, err)
	}
	return nil
}

// Delete removes the original from the inbox, conditionally on the
// imported ETag: If-Match on DeleteObject, the ETag element of each
// DeleteObjects entry ("How to perform conditional deletes", Amazon S3 User
// Guide, conditional-deletes.html: a mismatch is 412 Precondition Failed;
// it needs s3:GetObject besides s3:DeleteObject). It never names a version:
// "conditional delete evaluations only apply to the current version of the
// object" (same page), and a delete without a version id on a versioned
// bucket only adds a delete marker ("Deleting object versions from a
// versioning-enabled bucket", Amazon S3 User Guide). So the imported version
// and every older one stay in the bucket's history, and none becomes
// current again to be imported a second time (I11). A version id of "null"
// (versioning suspended) is not used either: deleting VersionId=null would
// remove whatever the null version is now, perhaps a re-upload made after
// our GET. Such a delete replaces the null version with a delete marker,
// as S3 documents for suspended buckets; If-Match pins it to what we read.
//
// Move calls it; it is exported so a move whose copy exists already (an
// earlier run copied the file but could not delete it) can finish.
func (m *Mover) Delete(ctx context.Context, src Source) error {
	if done, ok := m.enqueueDelete(ctx, src); ok {
		return <-done
	}
	return m.deleteOne(ctx, src)
}

// enqueueDelete queues src for the next DeleteObjects batch; ok is false
// when it must be deleted on its own (SingleDeletes, a key XML cannot
// carry, a store without DeleteObjects).
func (m *Mover) enqueueDelete(ctx context.Context, src Source) (<-chan error, bool) {
	if m.SingleDeletes || !xmlSafe(src.Key) {
		return nil, false
	}
	m.batchOnce.Do(func() { m.batch = newDeleteBatcher(m) })
	return m.batch.enqueue(ctx, src)
}

// startDelete sends Delete's request without waiting for its answer, which
// arrives on the returned channel. Like the rest of a started move it
// finishes even if ctx is cancelled: a batch is sent without ctx's
// cancellation, a single delete with a finish context of its own.
func (m *Mover) startDelete(ctx context.Context, src Source) <-chan error {
	if done, ok := m.enqueueDelete(ctx, src); ok {
		return done
	}
	done := make(chan error, 1)
	dctx, cancel := finishContext(ctx, finishTimeout)
	go func() {
		defer cancel()
		// A panic here (in the SDK, or on a malformed answer) would end
		// the whole process from this goroutine: it is the delete's
		// error instead (*PanicError, with the stack for the caller's
		// log), and the move fails as with any failed delete.
		defer func() {
			if v := recover(); v != nil {
				done <- &PanicError{Value: v, Stack: debug.Stack()}
			}
		}()
		done <- m.deleteOne(dctx, src)
	}()
	return done
}

func (m *Mover) deleteOne(ctx context.Context, src Source) error {
	_, err := m.S3.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: &m.Bucket, Key: aws.String(src.Key), IfMatch: aws.String(src.ETag),
	})
	return err
}

package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3connector/s3connector/connector"
)

// Lister is what ListErrors needs besides API.
type Lister interface {
	ListObjectsV2(context.Context, *s3.ListObjectsV2Input, ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// StateFolder under error/ holds the daemon's own records (file state,
// the lease); it is not an error file.
const StateFolder = ".s3connector/"

// ErrorFile is one file in error/ with its report.
type ErrorFile struct {
	// Key is the error/ key.
	Key      string
	Size     int64
	Modified time.Time
	// Report is nil when the report is missing or unreadable.
	Report *Report
}

// Errors returned by Requeue, checked with errors.Is.
var (
	// ErrNotAnErrorFile: the key is not a file in this connection's
	// error/ (a report, the daemon's own state, or outside error/).
	ErrNotAnErrorFile = errors.New("not a file in error/")
	// ErrNoReport: the report that names the file's original key is
	// missing or unreadable.
	ErrNoReport = errors.New("the file's report is missing or unreadable, so its original key is unknown")
	// ErrInboxTaken: a file already exists under the original key in the
	// inbox; requeueing would overwrite it.
	ErrInboxTaken = errors.New("a file with the original key is waiting in the inbox")
)

func (m *Mover) errorPrefix() string { return m.BasePath + string(Error) }

// isErrorFile reports whether key is a file of error/ (not a report, not
// the daemon's state).
func (m *Mover) isErrorFile(key string) bool {
	rel, ok := strings.CutPrefix(key, m.errorPrefix())
	return ok && rel != "" && !strings.HasSuffix(key, ReportSuffix) &&
		!strings.HasPrefix(rel, StateFolder) && !strings.HasSuffix(key, "/")
}

// ListErrors lists up to limit files of error/ (0: all) with their
// reports, in key order.
func (m *Mover) ListErrors(ctx context.Context, l Lister, limit int) ([]ErrorFile, error) {
	var out []ErrorFile
	p := s3.NewListObjectsV2Paginator(l, &s3.ListObjectsV2Input{
		Bucket: &m.Bucket, Prefix: aws.String(m.errorPrefix()), EncodingType: connector.ListEncoding,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, fmt.Errorf("list s3://%s/%s: %w", m.Bucket, m.errorPrefix(), connector.Classify(err, ""))
		}
		for _, o := range page.Contents {
			key, err := connector.ListedKey(page.EncodingType, aws.ToString(o.Key))
			if err != nil {
				return out, fmt.Errorf("list s3://%s/%s: %w", m.Bucket, m.errorPrefix(), err)
			}
			if !m.isErrorFile(key) {
				continue
			}
			f := ErrorFile{Key: key, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)}
			if r, err := m.readReport(ctx, l, key); err == nil {
				f.Report = r
			}
			out = append(out, f)
			if limit > 0 && len(out) == limit {
				return out, nil
			}
		}
	}
	return out, nil
}

func (m *Mover) readReport(ctx context.Context, l Lister, errorKey string) (*Report, error) {
	out, err := l.GetObject(ctx, &s3.GetObjectInput{Bucket: &m.Bucket, Key: aws.String(ReportKey(errorKey))})
	if err != nil {
		return nil, connector.Classify(err, "")
	}
	defer out.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(out.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Requeue moves a file of error/ back to the inbox under its original key
// (its report's key), with the move protocol: copy first, pinned to the
// error file's ETag (and version), never over a file in the inbox; then
// delete the error file conditionally, and its report. So a requeue never
// loses a file: until the copy exists the error file stays, and a file
// waiting under the same key is never replaced (If-None-Match: *, and a
// HEAD first, since some stores ignore that header on copies).
//
// The copy drops the object's tags: the generated policy lets the role tag
// only archive/ and error/, never the customer's inbox. It returns the
// inbox key.
func (m *Mover) Requeue(ctx context.Context, l Lister, errorKey string) (string, error) {
	if !m.isErrorFile(errorKey) {
		return "", fmt.Errorf("requeue %q: %w of this connection (s3://%s/%s)", errorKey, ErrNotAnErrorFile, m.Bucket, m.errorPrefix())
	}
	rep, err := m.readReport(ctx, l, errorKey)
	if err != nil || rep.Key == "" {
		return "", fmt.Errorf("requeue %q: %w", errorKey, ErrNoReport)
	}
	target := rep.Key
	// The report is in the customer's bucket: it must not send a file
	// outside this connection's inbox (I8).
	rel, ok := strings.CutPrefix(target, m.BasePath)
	if !ok || rel == "" || strings.HasPrefix(rel, string(Archive)) || strings.HasPrefix(rel, string(Error)) || strings.HasSuffix(rel, "/") {
		return "", fmt.Errorf("requeue %q: its report names %q, which is not in this connection's inbox", errorKey, target)
	}
	head, err := m.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &m.Bucket, Key: &errorKey})
	if err != nil {
		return "", fmt.Errorf("requeue %q: %w", errorKey, connector.Classify(err, ""))
	}
	if _, err := m.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &m.Bucket, Key: &target}); err == nil {
		return "", fmt.Errorf("requeue %q to %q: %w; move or delete that one first", errorKey, target, ErrInboxTaken)
	} else if !errors.Is(connector.Classify(err, ""), connector.ErrNotFound) {
		return "", fmt.Errorf("requeue %q: check %q: %w", errorKey, target, connector.Classify(err, ""))
	}
	src := Source{Bucket: m.Bucket, Key: errorKey, ETag: aws.ToString(head.ETag), VersionID: aws.ToString(head.VersionId),
		Size: aws.ToInt64(head.ContentLength), Attrs: AttributesFromHead(head)}
	if src.Size > m.threshold() {
		return "", fmt.Errorf("requeue %q: files above %d bytes are not requeued (a multipart copy); copy it back by hand", errorKey, m.threshold())
	}
	in := &s3.CopyObjectInput{
		Bucket: &m.Bucket, Key: &target,
		CopySource:        aws.String(copySource(src)),
		CopySourceIfMatch: aws.String(src.ETag),
		IfNoneMatch:       aws.String("*"),
		MetadataDirective: types.MetadataDirectiveCopy,
		TaggingDirective:  types.TaggingDirectiveReplace,
		StorageClass:      src.Attrs.StorageClass,
	}
	setEncryption(src.Attrs, &in.ServerSideEncryption, &in.SSEKMSKeyId, &in.BucketKeyEnabled)
	if _, err := m.S3.CopyObject(ctx, in); err != nil {
		if errors.Is(connector.Classify(err, ""), connector.ErrPreconditionFailed) {
			return "", fmt.Errorf("requeue %q to %q: %w (or the error file changed meanwhile)", errorKey, target, ErrInboxTaken)
		}
		return "", fmt.Errorf("requeue %q to %q: %w", errorKey, target, connector.Classify(err, ""))
	}
	if err := m.deleteOne(ctx, src); err != nil {
		return target, fmt.Errorf("requeued %q to %q, but deleting it from error/ failed (delete it by hand): %w", errorKey, target, connector.Classify(err, ""))
	}
	if _, err := m.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &m.Bucket, Key: aws.String(ReportKey(errorKey))}); err != nil {
		return target, fmt.Errorf("requeued %q to %q, but its report stays (delete it by hand): %w", errorKey, target, connector.Classify(err, ""))
	}
	return target, nil
}

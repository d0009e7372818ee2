package archive

import (
	"context"
	"fmt"
	"net/url"
	"runtime/debug"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// partSize returns the part size for an object of the given size: the
// configured size, grown to stay within MaxParts, never below MinPartSize.
func (m *Mover) partSize(size int64) int64 {
	ps := m.PartSize
	if ps <= 0 {
		ps = DefaultPartSize
	}
	if need := (size + MaxParts - 1) / MaxParts; ps < need {
		ps = need
	}
	return max(ps, MinPartSize)
}

// PanicError is the error of a step of a move that panicked (a part copy
// of multipartCopy): recovered, so that the process and the other files go
// on, the move fails as it would with that part's error. Value is what
// panicked; Stack is the panicking goroutine's stack, for the caller's log
// (Error leaves it out).
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// multipartCopy copies objects above the single-copy limit with
// UploadPartCopy, every part pinned to the source ETag. The upload carries
// the attributes CopyObject would have copied (content type, metadata,
// storage class, encryption); it is aborted on any failure, so no
// half-written object is left behind. record is called with the upload's
// id before any part is copied (see UploadJournal); its error fails the
// copy, and the upload is aborted.
func (m *Mover) multipartCopy(ctx context.Context, src Source, dest string, record func(id string) error) (err error) {
	a := src.Attrs
	create := &s3.CreateMultipartUploadInput{
		Bucket:       &m.Bucket,
		Key:          &dest,
		Metadata:     a.Metadata,
		StorageClass: a.StorageClass,
	}
	for _, f := range []struct {
		dst **string
		v   string
	}{
		{&create.ContentType, a.ContentType}, {&create.ContentEncoding, a.ContentEncoding},
		{&create.ContentDisposition, a.ContentDisposition}, {&create.ContentLanguage, a.ContentLanguage},
		{&create.CacheControl, a.CacheControl},
	} {
		if f.v != "" {
			*f.dst = aws.String(f.v)
		}
	}
	setEncryption(a, &create.ServerSideEncryption, &create.SSEKMSKeyId, &create.BucketKeyEnabled)
	// UploadPartCopy copies bytes only; the tags CopyObject's
	// TaggingDirective COPY would keep are read from the imported version
	// and set on the upload (s3:GetObjectTagging, or
	// s3:GetObjectVersionTagging with a version id; s3:PutObjectTagging on
	// the destination: "Required permissions for Amazon S3 API
	// operations", Amazon S3 User Guide).
	tags, err := m.tagging(ctx, src)
	if err != nil {
		return fmt.Errorf("copy %q to %q: read its tags: %w", src.Key, dest, err)
	}
	create.Tagging = tags
	up, err := m.S3.CreateMultipartUpload(ctx, create)
	if err != nil {
		return fmt.Errorf("copy %q to %q: start multipart copy: %w", src.Key, dest, err)
	}
	defer func() {
		if err != nil {
			// Detached: the upload must be cleaned up even if ctx is done.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
			defer cancel()
			_, _ = m.S3.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
				Bucket: &m.Bucket, Key: &dest, UploadId: up.UploadId})
		}
	}()
	if err := record(aws.ToString(up.UploadId)); err != nil {
		return fmt.Errorf("copy %q to %q: record multipart upload %s: %w", src.Key, dest, aws.ToString(up.UploadId), err)
	}

	ps := m.partSize(src.Size)
	n := int((src.Size + ps - 1) / ps)
	parts := make([]types.CompletedPart, n)
	conc := m.PartConcurrency
	if conc <= 0 {
		conc = DefaultPartConcurrency
	}
	cs := aws.String(copySource(src))

	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     = make(chan int)
	)
	copyPart := func(i int) (err error) {
		// A panic here (in the SDK, or a malformed answer) would take the
		// whole process down from this goroutine: it becomes the part's
		// error instead, and the move fails (and is aborted) as with any.
		defer func() {
			if p := recover(); p != nil {
				err = &PanicError{Value: p, Stack: debug.Stack()}
			}
		}()
		first := int64(i) * ps
		last := min(first+ps, src.Size) - 1
		out, err := m.S3.UploadPartCopy(pctx, &s3.UploadPartCopyInput{
			Bucket:            &m.Bucket,
			Key:               &dest,
			UploadId:          up.UploadId,
			PartNumber:        aws.Int32(int32(i + 1)),
			CopySource:        cs,
			CopySourceIfMatch: aws.String(src.ETag),
			CopySourceRange:   aws.String(fmt.Sprintf("bytes=%d-%d", first, last)),
		})
		if err != nil {
			return err
		}
		parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.CopyPartResult.ETag}
		return nil
	}
	for range min(conc, n) {
		wg.Go(func() {
			for i := range next {
				if err := copyPart(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("copy %q to %q: part %d of %d: %w", src.Key, dest, i+1, n, err)
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		select {
		case next <- i:
		case <-pctx.Done():
		}
		if pctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err = m.S3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          &m.Bucket,
		Key:             &dest,
		UploadId:        up.UploadId,
		IfNoneMatch:     aws.String("*"),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return fmt.Errorf("copy %q to %q: complete multipart copy: %w", src.Key, dest, err)
	}
	return nil
}

// tagging returns src's tags as CreateMultipartUpload's Tagging value (URL
// query encoding), or nil when it has none.
func (m *Mover) tagging(ctx context.Context, src Source) (*string, error) {
	in := &s3.GetObjectTaggingInput{Bucket: &m.Bucket, Key: aws.String(src.Key)}
	if src.Version().Versioned() {
		in.VersionId = aws.String(src.VersionID)
	}
	out, err := m.S3.GetObjectTagging(ctx, in)
	if err != nil {
		return nil, err
	}
	if len(out.TagSet) == 0 {
		return nil, nil
	}
	q := url.Values{}
	for _, t := range out.TagSet {
		q.Add(aws.ToString(t.Key), aws.ToString(t.Value))
	}
	return aws.String(q.Encode()), nil
}

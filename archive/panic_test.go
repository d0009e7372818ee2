package archive

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3connector/s3connector/connector/miniotest"
)

// panickingParts is the real client whose UploadPartCopy panics for one
// part number: no real server makes the SDK panic on demand (the ingest
// tests show a malformed answer doing it through the whole run).
type panickingParts struct {
	*s3.Client
	part int32
}

func (p panickingParts) UploadPartCopy(ctx context.Context, in *s3.UploadPartCopyInput, opts ...func(*s3.Options)) (*s3.UploadPartCopyOutput, error) {
	if aws.ToInt32(in.PartNumber) == p.part {
		panic("injected part copy panic")
	}
	return p.Client.UploadPartCopy(ctx, in, opts...)
}

// A part copy that panics would end the whole process from its goroutine;
// it is that part's error instead (a *PanicError with the stack): the
// move fails, the upload is aborted, nothing is written at the
// destination and the original stays in the inbox.
func TestMoveMultipartPartPanicIsItsError(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Root()
	bucket := newBucket(t, srv)
	mover := &Mover{S3: panickingParts{Client: client, part: 2}, Bucket: bucket, BasePath: "in/", MultipartThreshold: 5 << 20, PartSize: MinPartSize, PartConcurrency: 2}
	src := putObject(t, client, bucket, "in/", "big.bin", randomBytes(t, 11<<20), s3.PutObjectInput{})
	_, err := mover.Move(t.Context(), src, Archive, nil)
	var pe *PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("Move = %v, want a *PanicError", err)
	}
	if pe.Value != "injected part copy panic" || !strings.Contains(string(pe.Stack), "panic_test.go") {
		t.Errorf("PanicError value %v, stack:\n%s", pe.Value, pe.Stack)
	}
	if strings.Contains(err.Error(), "goroutine") {
		t.Errorf("the error's text carries the stack: %v", err)
	}
	if !strings.Contains(err.Error(), "part 2 of 3") {
		t.Errorf("the error does not name the part: %v", err)
	}
	if !exists(t, client, bucket, src.Key) {
		t.Error("the original left the inbox")
	}
	if got := keysUnder(t, client, bucket, "in/archive/"); len(got) != 0 {
		t.Errorf("archive/ holds %q after a failed move", got)
	}
	uploads, err := client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Errorf("%d multipart uploads left behind", len(uploads.Uploads))
	}
}

func keysUnder(t *testing.T, client *s3.Client, bucket, prefix string) []string {
	t.Helper()
	out, err := client.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// panickingDeletes is the real client whose DeleteObjects and DeleteObject
// panic the first batches and singles times: no real server makes the SDK
// panic on demand. A DeleteObjects waits for hold to close, if set.
type panickingDeletes struct {
	*s3.Client
	batches, singles *atomic.Int32
	hold             chan struct{}
}

func (p panickingDeletes) DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, opts ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	if p.hold != nil {
		<-p.hold
	}
	if p.batches.Add(-1) >= 0 {
		panic("injected batch delete panic")
	}
	return p.Client.DeleteObjects(ctx, in, opts...)
}

func (p panickingDeletes) DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, opts ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	if p.singles.Add(-1) >= 0 {
		panic("injected delete panic")
	}
	return p.Client.DeleteObject(ctx, in, opts...)
}

func counterOf(n int32) *atomic.Int32 {
	var c atomic.Int32
	c.Store(n)
	return &c
}

// A delete that panics, in the DeleteObjects batcher's goroutine or in a
// single delete's, would end the whole process from there; it is that
// delete's error instead (*DeleteError wrapping a *PanicError with the
// stack): the copy exists, the original stays in the inbox, and the
// deletes after it go on (the batcher sends its next batch).
func TestMoveDeletePanicIsItsError(t *testing.T) {
	tests := []struct {
		name    string
		single  bool
		client  func(*s3.Client) API
		message string
	}{
		{name: "batched", client: func(c *s3.Client) API {
			return panickingDeletes{Client: c, batches: counterOf(1), singles: counterOf(0)}
		}, message: "injected batch delete panic"},
		{name: "single", single: true, client: func(c *s3.Client) API {
			return panickingDeletes{Client: c, batches: counterOf(0), singles: counterOf(1)}
		}, message: "injected delete panic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := miniotest.Shared(t)
			client := srv.Root()
			bucket := newBucket(t, srv)
			mover := &Mover{S3: tt.client(client), Bucket: bucket, BasePath: "in/", SingleDeletes: tt.single}
			first := putObject(t, client, bucket, "in/", "first.csv", []byte("first"), s3.PutObjectInput{})
			_, err := mover.Move(t.Context(), first, Archive, nil)
			var (
				de *DeleteError
				pe *PanicError
			)
			if !errors.As(err, &de) || !errors.As(err, &pe) {
				t.Fatalf("Move = %v, want a *DeleteError wrapping a *PanicError", err)
			}
			if pe.Value != tt.message || !strings.Contains(string(pe.Stack), "panic_test.go") {
				t.Errorf("PanicError value %v, stack:\n%s", pe.Value, pe.Stack)
			}
			if strings.Contains(err.Error(), "goroutine") {
				t.Errorf("the error's text carries the stack: %v", err)
			}
			if !exists(t, client, bucket, first.Key) || !exists(t, client, bucket, de.Copy) {
				t.Errorf("after the failed delete: original there %v, copy %s there %v; want both",
					exists(t, client, bucket, first.Key), de.Copy, exists(t, client, bucket, de.Copy))
			}
			// The next deletes go through: the same file's move again, and
			// another file's.
			second := putObject(t, client, bucket, "in/", "second.csv", []byte("second"), s3.PutObjectInput{})
			for _, src := range []Source{first, second} {
				if _, err := mover.Move(t.Context(), src, Archive, nil); err != nil {
					t.Fatalf("Move %s after the panic: %v", src.Key, err)
				}
				if exists(t, client, bucket, src.Key) {
					t.Errorf("%s still in the inbox", src.Key)
				}
			}
		})
	}
}

// Every delete of a batch that panics gets the panic as its error; none is
// left without an answer (its move would hang). The first batch (one
// delete) is held in flight until seven more are queued: they leave
// together in the second batch, which panics too.
func TestMoveBatchPanicAnswersEveryDelete(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Root()
	bucket := newBucket(t, srv)
	hold := make(chan struct{})
	mover := &Mover{S3: panickingDeletes{Client: client, batches: counterOf(2), singles: counterOf(0), hold: hold}, Bucket: bucket, BasePath: "in/"}
	var pending []*PendingMove
	for i := range 8 {
		src := putObject(t, client, bucket, "in/", fmt.Sprintf("f%d.csv", i), []byte("x"), s3.PutObjectInput{})
		p, err := mover.MoveAsync(t.Context(), src, Archive, nil)
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, p)
	}
	close(hold)
	var panicked, moved int
	for _, p := range pending {
		done := make(chan error, 1)
		go func() { _, err := p.Wait(); done <- err }()
		select {
		case err := <-done:
			var pe *PanicError
			switch {
			case err == nil:
				moved++
			case errors.As(err, &pe):
				panicked++
			default:
				t.Errorf("Wait = %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a delete got no answer")
		}
	}
	if panicked != len(pending) {
		t.Errorf("%d deletes failed with the panic and %d went through, of %d; want all failed (two batches panicked)", panicked, moved, len(pending))
	}
}

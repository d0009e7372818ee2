package archive

import (
	"context"
	"errors"
	"strings"
	"testing"

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

package archive

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3connector/s3connector/connector/miniotest"
)

// uploadsIn lists every multipart upload in progress in bucket, as key →
// upload ids. No prefix: the pinned MinIO lists uploads by prefix only when
// the prefix is a whole key (it answers none for "in/"), so a prefix would
// hide what this test looks for.
func uploadsIn(t *testing.T, client *s3.Client, bucket string) map[string][]string {
	t.Helper()
	out, err := client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, u := range out.Uploads {
		got[aws.ToString(u.Key)] = append(got[aws.ToString(u.Key)], aws.ToString(u.UploadId))
	}
	return got
}

// A move killed mid multipart copy leaves an incomplete upload at its
// destination; the next move of the same version targets the same key
// (DestKey) and aborts it before its own copy. Uploads at other keys --
// one whose key only starts with the destination, another file's -- are
// left alone.
func TestMoveAbortsUploadLeftAtDestination(t *testing.T) {
	srv := miniotest.Shared(t)
	rec, client := newRecorder(t, srv)
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket, BasePath: "in/", MultipartThreshold: 1 << 10}
	body := randomBytes(t, 6<<20+17)
	src := putObject(t, client, bucket, "in/", "big/data.bin", body, s3.PutObjectInput{})
	dest := DestKey("in/", Archive, src.RelKey, src.Version())

	// What a SIGKILL after the first part copy leaves: an upload with a
	// part, never completed nor aborted. Two of them (two crashes).
	var left []string
	for range 2 {
		up, err := client.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &dest})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.UploadPartCopy(t.Context(), &s3.UploadPartCopyInput{
			Bucket: &bucket, Key: &dest, UploadId: up.UploadId, PartNumber: aws.Int32(1),
			CopySource: aws.String(CopySource(bucket, src.Key)), CopySourceRange: aws.String("bytes=0-1048575"),
		}); err != nil {
			t.Fatal(err)
		}
		left = append(left, aws.ToString(up.UploadId))
	}
	others := []string{dest + ".tmp", "in/archive/other.bin"}
	for _, k := range others {
		if _, err := client.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}

	res, err := mover.Move(t.Context(), src, Archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Key != dest {
		t.Fatalf("moved to %s, want %s", res.Key, dest)
	}
	if got, _ := readObject(t, client, bucket, dest); !slices.Equal(got, body) {
		t.Fatalf("archived copy differs from the source: %d bytes, want %d", len(got), len(body))
	}
	uploads := uploadsIn(t, srv.Root(), bucket)
	if ids := uploads[dest]; len(ids) != 0 {
		t.Errorf("uploads %v left at %s, want the crashed moves' %v aborted", ids, dest, left)
	}
	for _, k := range others {
		if len(uploads[k]) != 1 {
			t.Errorf("upload at %s: %v, want it left alone", k, uploads[k])
		}
	}
	// Two listings, before the copy and after it, with the destination as
	// the prefix; the aborts name exactly the crashed uploads.
	lists := rec.Matching(http.MethodGet, "uploads")
	if len(lists) != 2 {
		t.Fatalf("%d ListMultipartUploads requests, want 2", len(lists))
	}
	for _, l := range lists {
		if q, _ := url.ParseQuery(l.Query); q.Get("prefix") != dest {
			t.Errorf("ListMultipartUploads prefix %q, want the destination %q", q.Get("prefix"), dest)
		}
	}
	var aborted []string
	for _, r := range rec.Matching(http.MethodDelete, "uploadId=") {
		q, _ := url.ParseQuery(r.Query)
		aborted = append(aborted, q.Get("uploadId"))
	}
	slices.Sort(aborted)
	slices.Sort(left)
	if !slices.Equal(aborted, left) {
		t.Errorf("aborted %v, want exactly the uploads left behind %v", aborted, left)
	}
}

// An upload that appears at the destination while the copy runs -- this
// move's own CreateMultipartUpload sent again after its answer was lost,
// or a dead move's request the store carried out late -- is an orphan
// once the copy is done, and the move aborts it then.
func TestMoveAbortsUploadAppearingDuringCopy(t *testing.T) {
	srv := miniotest.Shared(t)
	rec, client := newRecorder(t, srv)
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket, BasePath: "in/", MultipartThreshold: 1 << 10}
	src := putObject(t, client, bucket, "in/", "late.bin", randomBytes(t, 3<<20), s3.PutObjectInput{})
	dest := DestKey("in/", Archive, src.RelKey, src.Version())
	var orphan atomic.Value
	rec.Answer(func(r *http.Request) (int, string, bool) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.RawQuery, "partNumber=") && orphan.Load() == nil {
			// As the part copy arrives: another upload at the destination,
			// straight to MinIO.
			up, err := srv.Root().CreateMultipartUpload(r.Context(), &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &dest})
			if err != nil {
				t.Error(err)
				return 0, "", false
			}
			orphan.Store(aws.ToString(up.UploadId))
		}
		return 0, "", false
	})
	if _, err := mover.Move(t.Context(), src, Archive, nil); err != nil {
		t.Fatal(err)
	}
	if orphan.Load() == nil {
		t.Fatal("no part copy seen")
	}
	if left := uploadsIn(t, srv.Root(), bucket)[dest]; len(left) != 0 {
		t.Errorf("uploads %v left at %s, want the orphan %v aborted", left, dest, orphan.Load())
	}
}

// Below the threshold a move is one CopyObject and lists no uploads.
func TestMoveSingleCopyListsNoUploads(t *testing.T) {
	srv := miniotest.Shared(t)
	rec, client := newRecorder(t, srv)
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket, BasePath: "in/"}
	src := putObject(t, client, bucket, "in/", "small.csv", []byte("a,b\n"), s3.PutObjectInput{})
	if _, err := mover.Move(t.Context(), src, Archive, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Matching(http.MethodGet, "uploads")); n != 0 {
		t.Errorf("%d ListMultipartUploads requests for a single copy, want 0", n)
	}
}

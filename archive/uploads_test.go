package archive

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3connector/s3connector/connector/miniotest"
)

// uploadsIn lists every multipart upload in progress in bucket, as key →
// upload ids, with MinIO's root credentials (the test's view, not the
// mover's: the mover never lists uploads). No prefix: the pinned MinIO
// lists uploads by prefix only when the prefix is a whole key (it answers
// none for "in/"), so a prefix would hide what these tests look for.
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

// memJournal is an UploadJournal in memory, for the mover's side of the
// contract; ingest's tests show the real one, the file's state record, on
// MinIO. onRecord, when set, runs before a Record is kept, and its error is
// Record's.
type memJournal struct {
	mu       sync.Mutex
	ups      []Upload
	records  [][]Upload
	onRecord func([]Upload) error
}

func (j *memJournal) Uploads(context.Context) ([]Upload, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.ups), nil
}

func (j *memJournal) Record(_ context.Context, ups []Upload) error {
	if j.onRecord != nil {
		if err := j.onRecord(ups); err != nil {
			return err
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.ups = slices.Clone(ups)
	j.records = append(j.records, slices.Clone(ups))
	return nil
}

// leaveUpload is what a SIGKILL after the first part copy leaves at dest:
// an upload with a part, never completed nor aborted.
func leaveUpload(t *testing.T, client *s3.Client, bucket, dest, from string) Upload {
	t.Helper()
	up, err := client.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &dest})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.UploadPartCopy(t.Context(), &s3.UploadPartCopyInput{
		Bucket: &bucket, Key: &dest, UploadId: up.UploadId, PartNumber: aws.Int32(1),
		CopySource: aws.String(CopySource(bucket, from)), CopySourceRange: aws.String("bytes=0-1048575"),
	}); err != nil {
		t.Fatal(err)
	}
	return Upload{Key: dest, ID: aws.ToString(up.UploadId)}
}

// abortsIn returns the upload ids of the AbortMultipartUpload requests
// recorded, in order.
func abortsIn(rec *miniotest.Proxy) []string {
	var ids []string
	for _, r := range rec.Matching(http.MethodDelete, "uploadId=") {
		q, _ := url.ParseQuery(r.Query)
		ids = append(ids, q.Get("uploadId"))
	}
	return ids
}

// A move killed mid multipart copy leaves an incomplete upload, whose id
// its journal holds; the next move of the file aborts it by that id, before
// its own copy and again after it, records its own upload (after the
// others) before copying a part, and never lists uploads (which needs a
// bucket-wide grant, I10). An upload the journal does not hold is left
// alone, even at the same destination: the mover cannot know it.
func TestMoveAbortsRecordedUploads(t *testing.T) {
	srv := miniotest.Shared(t)
	rec, client := newRecorder(t, srv)
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket, BasePath: "in/", MultipartThreshold: 1 << 10}
	body := randomBytes(t, 6<<20+17)
	src := putObject(t, client, bucket, "in/", "big/data.bin", body, s3.PutObjectInput{})
	dest := DestKey("in/", Archive, src.RelKey, src.Version())

	// Two crashed moves of this file: one at this destination, one at
	// error/ (a move the importer's verdict had sent there). And uploads
	// no journal holds: one at the destination, one of another file.
	left := []Upload{
		leaveUpload(t, srv.Root(), bucket, dest, src.Key),
		leaveUpload(t, srv.Root(), bucket, DestKey("in/", Error, src.RelKey, src.Version()), src.Key),
	}
	unknown := leaveUpload(t, srv.Root(), bucket, dest, src.Key)
	other := leaveUpload(t, srv.Root(), bucket, "in/archive/other.bin", src.Key)
	j := &memJournal{ups: slices.Clone(left)}
	j.onRecord = func([]Upload) error {
		if n := len(rec.Matching(http.MethodPut, "partNumber=")); n != 0 {
			t.Errorf("%d parts copied before the upload was recorded", n)
		}
		return nil
	}
	src.Uploads = j

	res, err := mover.Move(t.Context(), src, Archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := readObject(t, client, bucket, res.Key); !slices.Equal(got, body) {
		t.Fatalf("archived copy differs from the source: %d bytes, want %d", len(got), len(body))
	}
	if len(j.records) != 1 {
		t.Fatalf("%d Record calls, want 1 (one multipart copy): %v", len(j.records), j.records)
	}
	got := j.records[0]
	if len(got) != 3 || !slices.Equal(got[:2], left) || got[2].Key != dest || got[2].ID == "" {
		t.Errorf("recorded %v, want the uploads left %v and then the new one at %s", got, left, dest)
	}
	uploads := uploadsIn(t, srv.Root(), bucket)
	for _, u := range left {
		if slices.Contains(uploads[u.Key], u.ID) {
			t.Errorf("recorded upload %s at %s left, want it aborted", u.ID, u.Key)
		}
	}
	if slices.Contains(uploads[dest], got[2].ID) {
		t.Errorf("the move's own upload %s is still in progress, want it completed", got[2].ID)
	}
	for _, u := range []Upload{unknown, other} {
		if !slices.Contains(uploads[u.Key], u.ID) {
			t.Errorf("upload %s at %s, which no journal holds, was aborted", u.ID, u.Key)
		}
	}
	// Each recorded upload aborted twice (before the copy, after it), in
	// that order; nothing else aborted; no listing.
	want := []string{left[0].ID, left[1].ID, left[0].ID, left[1].ID}
	if a := abortsIn(rec); !slices.Equal(a, want) {
		t.Errorf("aborted %v, want %v", a, want)
	}
	if n := len(rec.Matching(http.MethodGet, "uploads")); n != 0 {
		t.Errorf("%d ListMultipartUploads requests, want none", n)
	}
}

// A journal that cannot keep the new upload fails the move before any part
// is copied, and the upload is aborted: nothing is left that no journal
// holds.
func TestMoveFailsWhenItsUploadCannotBeRecorded(t *testing.T) {
	srv := miniotest.Shared(t)
	rec, client := newRecorder(t, srv)
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket, BasePath: "in/", MultipartThreshold: 1 << 10}
	src := putObject(t, client, bucket, "in/", "big.bin", randomBytes(t, 6<<20), s3.PutObjectInput{})
	errFull := errors.New("state record refused")
	src.Uploads = &memJournal{onRecord: func([]Upload) error { return errFull }}

	_, err := mover.Move(t.Context(), src, Archive, nil)
	if !errors.Is(err, errFull) {
		t.Fatalf("Move: %v, want the journal's error", err)
	}
	if n := len(rec.Matching(http.MethodPut, "partNumber=")); n != 0 {
		t.Errorf("%d parts copied into an unrecorded upload", n)
	}
	if u := uploadsIn(t, srv.Root(), bucket); len(u) != 0 {
		t.Errorf("uploads left: %v", u)
	}
	if _, err := srv.Root().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: &src.Key}); err != nil {
		t.Errorf("the original is gone after a failed move: %v", err)
	}
}

// A recorded upload that is already gone (aborted by an earlier move, or
// completed: S3 answers 404 NoSuchUpload) counts as aborted, and a single
// CopyObject move aborts recorded uploads too: an older, larger version of
// the file may have left one.
func TestSingleCopyMoveAbortsRecordedUploads(t *testing.T) {
	srv := miniotest.Shared(t)
	rec, client := newRecorder(t, srv)
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket, BasePath: "in/"}
	src := putObject(t, client, bucket, "in/", "small.csv", []byte("a,b\n"), s3.PutObjectInput{})
	big := putObject(t, client, bucket, "in/", "old.bin", randomBytes(t, 6<<20), s3.PutObjectInput{})
	live := leaveUpload(t, srv.Root(), bucket, "in/archive/small.20260101T000000Z-0123456789ab.csv", big.Key)
	gone := leaveUpload(t, srv.Root(), bucket, "in/archive/small.20250101T000000Z-0123456789ab.csv", big.Key)
	if _, err := srv.Root().AbortMultipartUpload(t.Context(), &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &gone.Key, UploadId: &gone.ID}); err != nil {
		t.Fatal(err)
	}
	j := &memJournal{ups: []Upload{gone, live}}
	src.Uploads = j
	if n, err := AbortUploads(t.Context(), client, bucket, []Upload{gone}); n != 1 || err != nil {
		t.Fatalf("AbortUploads of an aborted upload: %d, %v; want 1, nil (NoSuchUpload is done)", n, err)
	}
	if _, err := mover.Move(t.Context(), src, Archive, nil); err != nil {
		t.Fatal(err)
	}
	if ids := uploadsIn(t, srv.Root(), bucket)[live.Key]; slices.Contains(ids, live.ID) {
		t.Errorf("recorded upload %s left", live.ID)
	}
	if len(j.records) != 0 {
		t.Errorf("a single copy recorded %v", j.records)
	}
	if n := len(rec.Matching(http.MethodGet, "uploads")); n != 0 {
		t.Errorf("%d ListMultipartUploads requests, want none", n)
	}
}

// Without a journal a move aborts nothing, lists nothing, and still
// completes its multipart copy.
func TestMoveWithoutJournal(t *testing.T) {
	srv := miniotest.Shared(t)
	rec, client := newRecorder(t, srv)
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket, BasePath: "in/", MultipartThreshold: 1 << 10}
	body := randomBytes(t, 6<<20)
	src := putObject(t, client, bucket, "in/", "big.bin", body, s3.PutObjectInput{})
	res, err := mover.Move(t.Context(), src, Archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := readObject(t, client, bucket, res.Key); !slices.Equal(got, body) {
		t.Fatal("archived copy differs from the source")
	}
	for _, r := range rec.Requests() {
		if strings.Contains(r.Query, "uploads") && r.Method == http.MethodGet {
			t.Errorf("listed uploads: %s %s", r.Method, r.Query)
		}
	}
	if a := abortsIn(rec); len(a) != 0 {
		t.Errorf("aborted %v", a)
	}
	if u := uploadsIn(t, srv.Root(), bucket); len(u) != 0 {
		t.Errorf("uploads left: %v", u)
	}
}

// The journal keeps at most maxRecordedUploads, the newest.
func TestWithUploadBounded(t *testing.T) {
	var ups []Upload
	for i := range maxRecordedUploads + 5 {
		ups = withUpload(ups, Upload{Key: "k", ID: strings.Repeat("x", i+1)})
	}
	if len(ups) != maxRecordedUploads {
		t.Fatalf("%d uploads kept, want %d", len(ups), maxRecordedUploads)
	}
	if got := len(ups[len(ups)-1].ID); got != maxRecordedUploads+5 {
		t.Errorf("last upload is #%d, want the newest #%d", got, maxRecordedUploads+5)
	}
	if got := len(ups[0].ID); got != 6 {
		t.Errorf("oldest kept is #%d, want #6", got)
	}
}

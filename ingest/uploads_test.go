package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector/miniotest"
)

// uploadsLeft lists the bucket's multipart uploads in progress (MinIO's
// root: the connection's policy grants no listing of uploads, I10), as
// upload ids. No prefix: the pinned MinIO lists uploads by prefix only
// for a whole key.
func uploadsLeft(t *testing.T, srv *miniotest.Server, bucket string) []string {
	t.Helper()
	out, err := srv.Root().ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range out.Uploads {
		ids = append(ids, aws.ToString(u.UploadId))
	}
	return ids
}

// stateRecord reads the state record of the relative key rel.
func stateRecord(t *testing.T, srv *miniotest.Server, bucket, rel string) *fileRecord {
	t.Helper()
	key := "in/" + AttemptsFolder + rel + ".json"
	out, err := srv.Root().GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return nil
	}
	defer out.Body.Close()
	rec := &fileRecord{}
	if err := json.NewDecoder(out.Body).Decode(rec); err != nil {
		t.Fatalf("state record %s: %v", key, err)
	}
	return rec
}

// failMultipart makes the proxy refuse, while on is set, the second part
// copy of every multipart copy and every AbortMultipartUpload: the copy
// fails and its own abort does not take, which leaves the upload in the
// bucket as a SIGKILL mid-copy would (a kill cannot be had in-process).
// 400 InvalidRequest: the SDK does not retry it.
func failMultipart(p *miniotest.Proxy, on *atomic.Bool) {
	refuse := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidRequest</Code><Message>refused by the test's proxy</Message></Error>`
	p.Answer(func(r *http.Request) (int, string, bool) {
		if !on.Load() {
			return 0, "", false
		}
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodPut && q.Get("partNumber") == "2":
			return http.StatusBadRequest, refuse, true
		case r.Method == http.MethodDelete && q.Has("uploadId"):
			return http.StatusBadRequest, refuse, true
		}
		return 0, "", false
	})
}

// A multipart copy's upload id is in the file's state record before any
// part is copied, so an upload a failed (or killed) move leaves is aborted
// by the next run's move of the file, by that id, under the generated
// policy alone: no listing of uploads anywhere (I10).
func TestRunAbortsRecordedUploadOfEarlierMove(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	data := randomBody(11 << 20) // 3 parts of 5 MiB
	put(t, srv, bucket, "in/big.bin", data)
	proxy := srv.NewProxy(t)
	var on atomic.Bool
	on.Store(true)
	failMultipart(proxy, &on)
	core, logs := observer.New(zap.InfoLevel)
	conn := testConnection(t, srv, bucket, "in/", proxy.URL, nil)
	r, err := NewRunner(conn, Options{Importer: Dir{Root: t.TempDir()}, Logger: zap.New(core),
		MultipartThreshold: 5 << 20, PartSize: 5 << 20, ParallelDownloadThreshold: -1})
	if err != nil {
		t.Fatal(err)
	}

	if s := r.Run(t.Context()); s.Retry != 1 || s.Archived != 0 {
		t.Fatalf("first run: %+v, want the file left for a retry (its copy refused)", s)
	}
	left := uploadsLeft(t, srv, bucket)
	if len(left) != 1 {
		t.Fatalf("uploads after the refused copy: %v, want the one whose abort was refused", left)
	}
	rec := stateRecord(t, srv, bucket, "big.bin")
	if rec == nil || len(rec.Uploads) != 1 || rec.Uploads[0].ID != left[0] ||
		!strings.HasPrefix(rec.Uploads[0].Key, "in/archive/big.") {
		t.Fatalf("state record %+v, want upload %s at in/archive/big.* recorded", rec, left[0])
	}
	if n := logs.FilterMessage("multipart upload recorded").FilterField(zap.String("upload_id", left[0])).Len(); n != 1 {
		t.Errorf("%d log lines \"multipart upload recorded\" naming %s, want 1", n, left[0])
	}
	// Recorded before its first part was copied.
	var createdAt, recordedAt, firstPartAt = -1, -1, -1
	for i, q := range proxy.Requests() {
		v, _ := url.ParseQuery(q.Query)
		switch {
		case q.Method == http.MethodPost && v.Has("uploads") && createdAt < 0:
			createdAt = i
		case q.Method == http.MethodPut && strings.Contains(q.Path, AttemptsFolder) && createdAt >= 0 && recordedAt < 0:
			recordedAt = i
		case q.Method == http.MethodPut && v.Has("partNumber") && firstPartAt < 0:
			firstPartAt = i
		}
	}
	if createdAt < 0 || recordedAt < createdAt || firstPartAt < recordedAt {
		t.Errorf("request order: CreateMultipartUpload #%d, state record #%d, first part #%d; want them in that order", createdAt, recordedAt, firstPartAt)
	}

	on.Store(false)
	before := len(proxy.Requests())
	if s := r.Run(t.Context()); s.Archived != 1 || !s.OK() {
		t.Fatalf("second run: %+v, want the file archived", s)
	}
	if u := uploadsLeft(t, srv, bucket); len(u) != 0 {
		t.Errorf("uploads left after the next move: %v, want %s aborted", u, left[0])
	}
	var aborted []string
	for _, q := range proxy.Requests()[before:] {
		v, _ := url.ParseQuery(q.Query)
		if q.Method == http.MethodDelete && v.Has("uploadId") {
			aborted = append(aborted, v.Get("uploadId"))
		}
		if q.Method == http.MethodGet && v.Has("uploads") {
			t.Errorf("the run listed multipart uploads: %s?%s", q.Path, q.Query)
		}
	}
	if !slices.Contains(aborted, left[0]) {
		t.Errorf("aborted %v, want %s among them", aborted, left[0])
	}
	if rec := stateRecord(t, srv, bucket, "big.bin"); rec != nil {
		t.Errorf("state record left after the move: %+v", rec)
	}
	if got := body(t, srv, bucket, keys(t, srv, bucket, "in/archive/")[0]); !slices.Equal(got, data) {
		t.Error("archived copy differs from the upload")
	}
}

// The uploads a record holds are the key's: a newer version of the file
// (here a small one, copied in one CopyObject) aborts what a move of the
// older one left; a file gone from the inbox has its record's uploads
// aborted before the record goes (removeOrphans).
func TestRecordedUploadsOutliveTheirVersion(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "in/a.bin", randomBody(11<<20))
	put(t, srv, bucket, "in/b.bin", randomBody(11<<20))
	proxy := srv.NewProxy(t)
	var on atomic.Bool
	on.Store(true)
	failMultipart(proxy, &on)
	conn := testConnection(t, srv, bucket, "in/", proxy.URL, nil)
	r, err := NewRunner(conn, Options{Importer: Dir{Root: t.TempDir()},
		MultipartThreshold: 5 << 20, PartSize: 5 << 20, ParallelDownloadThreshold: -1})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Retry != 2 {
		t.Fatalf("first run: %+v, want both files left for a retry", s)
	}
	if u := uploadsLeft(t, srv, bucket); len(u) != 2 {
		t.Fatalf("uploads after the refused copies: %v, want 2", u)
	}
	on.Store(false)

	// a.bin: a new, small version. b.bin: deleted by the customer.
	put(t, srv, bucket, "in/a.bin", []byte("small now"))
	if _, err := srv.Root().DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("in/b.bin")}); err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Archived != 1 || !s.OK() {
		t.Fatalf("second run: %+v, want the new a.bin archived", s)
	}
	if u := uploadsLeft(t, srv, bucket); len(u) != 0 {
		t.Errorf("uploads left: %v, want the older version's and the deleted file's aborted", u)
	}
	for _, rel := range []string{"a.bin", "b.bin"} {
		if rec := stateRecord(t, srv, bucket, rel); rec != nil {
			t.Errorf("state record of %s left: %+v", rel, rec)
		}
	}
}

// The uploads field round-trips through a record, and records without it
// (earlier releases) read as none.
func TestRecordUploadsField(t *testing.T) {
	in := fileRecord{ETag: `"x"`, Uploads: []archive.Upload{{Key: "in/archive/a.bin", ID: "id-1"}}}
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"uploads":[{"key":"in/archive/a.bin","id":"id-1"}]`) {
		t.Errorf("record JSON %s", raw)
	}
	var out, old fileRecord
	if err := json.Unmarshal(raw, &out); err != nil || !slices.Equal(out.Uploads, in.Uploads) {
		t.Errorf("round trip: %+v, %v", out, err)
	}
	if err := json.Unmarshal([]byte(`{"etag":"\"x\"","attempts":2}`), &old); err != nil || old.Uploads != nil {
		t.Errorf("old record: %+v, %v", old, err)
	}
}

// A newer version's record keeps the uploads an older version's move left
// even when it is written for another reason (here a transient import
// failure, before any move): the uploads are the key's until a move
// aborts them.
func TestNewerVersionsRecordKeepsUploads(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "in/a.bin", randomBody(11<<20))
	proxy := srv.NewProxy(t)
	var on, sinkDown atomic.Bool
	on.Store(true)
	failMultipart(proxy, &on)
	imp := importerFunc(func(ctx context.Context, f File, body io.Reader) error {
		if _, err := io.Copy(io.Discard, body); err != nil {
			return err
		}
		if sinkDown.Load() {
			return errors.New("sink unavailable")
		}
		return nil
	})
	// max_attempts: transient failures are counted in the record.
	conn := testConnection(t, srv, bucket, "in/", proxy.URL, func(c *config.Connection) { c.MaxAttempts = 5 })
	r, err := NewRunner(conn, Options{Importer: imp, MultipartThreshold: 5 << 20, PartSize: 5 << 20, ParallelDownloadThreshold: -1})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Retry != 1 {
		t.Fatalf("first run: %+v, want a.bin left for a retry", s)
	}
	left := uploadsLeft(t, srv, bucket)
	if len(left) != 1 {
		t.Fatalf("uploads: %v, want 1", left)
	}
	on.Store(false)

	put(t, srv, bucket, "in/a.bin", []byte("a new, small version"))
	sinkDown.Store(true)
	if s := r.Run(t.Context()); s.Retry != 1 {
		t.Fatalf("second run: %+v, want the new version left for a retry", s)
	}
	rec := stateRecord(t, srv, bucket, "a.bin")
	if rec == nil || rec.Attempts != 1 || len(rec.Uploads) != 1 || rec.Uploads[0].ID != left[0] {
		t.Fatalf("the new version's record %+v, want 1 attempt and the older move's upload %s kept", rec, left[0])
	}

	sinkDown.Store(false)
	if s := r.Run(t.Context()); s.Archived != 1 || !s.OK() {
		t.Fatalf("third run: %+v, want a.bin archived", s)
	}
	if u := uploadsLeft(t, srv, bucket); len(u) != 0 {
		t.Errorf("uploads left: %v, want %s aborted by the new version's move", u, left[0])
	}
}

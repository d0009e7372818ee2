package ingest

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector/miniotest"
)

// lockedBucket creates a bucket with Object Lock enabled and a default
// GOVERNANCE retention of a day, so that every object version written to
// it (inbox files, archive copies, error reports, state records, the
// lease) is locked, as on a customer's compliance bucket.
func lockedBucket(t *testing.T, srv *miniotest.Server) string {
	t.Helper()
	name := bucketName(t.Name(), bucketSeq.Add(1))
	ctx := t.Context()
	if _, err := srv.Root().CreateBucket(ctx, &s3.CreateBucketInput{
		Bucket:                     aws.String(name),
		ObjectLockEnabledForBucket: aws.Bool(true),
		CreateBucketConfiguration:  &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(miniotest.Region)},
	}); err != nil {
		t.Fatalf("create an Object Lock bucket: %v", err)
	}
	if _, err := srv.Root().PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{
		Bucket: aws.String(name),
		ObjectLockConfiguration: &types.ObjectLockConfiguration{
			ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{
				Mode: types.ObjectLockRetentionModeGovernance, Days: aws.Int32(1),
			}},
		},
	}); err != nil {
		t.Fatalf("set a default retention: %v", err)
	}
	return name
}

// A run over a bucket whose every version is locked by a default
// retention archives, rejects and retries files as on any bucket: the
// move's delete (no version id, pinned to the ETag) leaves a delete marker
// over each locked original, which Object Lock allows ("Retention periods
// and legal holds don't prevent new versions of the object from being
// created, or delete markers to be added on top of the object", Locking
// objects with Object Lock, Amazon S3 User Guide, object-lock.html); the
// error/ report and the state records are new locked versions, and
// clearing a record leaves a delete marker too. Nothing is imported twice
// and no version is lost. Run under the generated policy alone (I10).
//
// MinIO, unlike what AWS documents for PutObject ("The Content-MD5 or
// x-amz-sdk-checksum-algorithm header is required for any request to
// upload an object with a retention period configured using Amazon S3
// Object Lock", PutObject, Amazon S3 API Reference), accepts the record
// and report uploads without a checksum header: this test cannot show
// what AWS answers them.
func TestRunOnObjectLockBucket(t *testing.T) {
	srv := needMinIO(t)
	bucket := lockedBucket(t, srv)
	files := map[string][]byte{"in/good.csv": []byte("good"), "in/bad.csv": []byte("bad"), "in/flaky.csv": []byte("flaky")}
	for k, b := range files {
		put(t, srv, bucket, k, b)
	}
	counts := &countingImporter{}
	imp := importerFunc(func(ctx context.Context, f File, body io.Reader) error {
		if err := counts.Import(ctx, f, body); err != nil {
			return err
		}
		switch f.RelKey {
		case "bad.csv":
			return Permanent(errors.New("bad rows"))
		case "flaky.csv":
			return errors.New("sink unavailable")
		}
		return nil
	})
	conn := testConnection(t, srv, bucket, "in/", "", func(c *config.Connection) { c.MaxAttempts = 2 })
	r, err := NewRunner(conn, Options{Importer: imp})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Archived != 1 || s.Errored != 1 || s.Retry != 1 {
		t.Fatalf("run 1: %+v, want good.csv archived, bad.csv in error/, flaky.csv left for a retry", s)
	}
	if got := keys(t, srv, bucket, "in/error/.s3connector/attempts/"); len(got) != 1 {
		t.Fatalf("state records %v, want flaky.csv's", got)
	}
	// Its second failure reaches max_attempts: error/, record cleared.
	if s := r.Run(t.Context()); s.Errored != 1 || !s.OK() {
		t.Fatalf("run 2: %+v, want flaky.csv in error/", s)
	}
	if s := r.Run(t.Context()); s.Listed != 0 {
		t.Fatalf("run 3: %+v, want an empty inbox", s)
	}
	for k, n := range map[string]int{"in/good.csv": 1, "in/bad.csv": 1, "in/flaky.csv": 2} {
		if got := counts.imports(k); got != n {
			t.Errorf("%s imported %d times, want %d", k, got, n)
		}
	}
	var archived, errored, reports int
	for _, k := range keys(t, srv, bucket, "in/") {
		switch {
		case strings.HasPrefix(k, "in/archive/"):
			archived++
		case strings.HasPrefix(k, "in/error/.s3connector/attempts/"):
			t.Errorf("state record %s left behind", k)
		case strings.HasSuffix(k, ".error.json"):
			reports++
		case strings.HasPrefix(k, "in/error/") && !strings.HasPrefix(k, "in/error/.s3connector/"):
			errored++
		case !strings.HasPrefix(k, "in/error/.s3connector/"):
			t.Errorf("%s still current in the inbox", k)
		}
	}
	if archived != 1 || errored != 2 || reports != 2 {
		t.Errorf("%d archived, %d in error/ with %d reports; want 1, 2, 2", archived, errored, reports)
	}

	// Every inbox original is still there, locked, under a delete marker.
	for k, b := range files {
		out, err := srv.Root().ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: &bucket, Prefix: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Versions) != 1 || aws.ToBool(out.Versions[0].IsLatest) || len(out.DeleteMarkers) != 1 || !aws.ToBool(out.DeleteMarkers[0].IsLatest) {
			t.Errorf("%s: versions %+v, delete markers %+v; want the original under one current delete marker", k, out.Versions, out.DeleteMarkers)
			continue
		}
		v := aws.ToString(out.Versions[0].VersionId)
		got, err := srv.Root().GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(k), VersionId: &v})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(got.Body)
		got.Body.Close()
		if string(data) != string(b) || got.ObjectLockMode != types.ObjectLockModeGovernance {
			t.Errorf("%s version %s: body %q, lock mode %q; want the original, locked", k, v, data, got.ObjectLockMode)
		}
	}
}

// On AWS a PUT to a bucket with a default retention needs Content-MD5 or
// a checksum header (see contentMD5); MinIO does not require one, so this
// is checked on the recorded request: a state record's PUT carries the
// MD5 of the record it stored (MinIO checks a Content-MD5 it is given).
func TestStateRecordCarriesContentMD5(t *testing.T) {
	srv := needMinIO(t)
	bucket := lockedBucket(t, srv)
	put(t, srv, bucket, "in/flaky.csv", []byte("flaky"))
	p := srv.NewProxy(t)
	imp := importerFunc(func(ctx context.Context, f File, body io.Reader) error {
		io.Copy(io.Discard, body)
		return errors.New("sink unavailable")
	})
	conn := testConnection(t, srv, bucket, "in/", p.URL, func(c *config.Connection) { c.MaxAttempts = 3 })
	r, err := NewRunner(conn, Options{Importer: imp})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Retry != 1 {
		t.Fatalf("run: %+v, want flaky.csv left for a retry", s)
	}
	stored := keys(t, srv, bucket, "in/"+AttemptsFolder)
	if len(stored) != 1 {
		t.Fatalf("state records %v, want flaky.csv's", stored)
	}
	sum := md5.Sum(body(t, srv, bucket, stored[0]))
	var records int
	for _, q := range p.Matching(http.MethodPut, "") {
		if !strings.HasSuffix(q.Path, "/"+stored[0]) {
			continue
		}
		records++
		if got, want := q.Header.Get("Content-Md5"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
			t.Errorf("PUT %s: Content-MD5 %q, want %q (the MD5 of the record)", q.Path, got, want)
		}
	}
	if records != 1 {
		t.Errorf("%d state record PUTs, want 1", records)
	}
}

package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	miniotest.CloseShared()
	os.Exit(code)
}

var bucketName = regexp.MustCompile(`[^a-z0-9-]+`)

// newBucket creates a fresh bucket named after the test.
func newBucket(t *testing.T, srv *miniotest.Server) string {
	t.Helper()
	name := strings.Trim(bucketName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-") + fmt.Sprintf("-%d", time.Now().UnixNano()%100000)
	if err := srv.CreateBucket(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

// putObject uploads body with attributes and returns the source as a
// worker would see it after GetObject.
func putObject(t *testing.T, client *s3.Client, bucket, base, rel string, body []byte, in s3.PutObjectInput) Source {
	t.Helper()
	ctx := t.Context()
	in.Bucket, in.Key = aws.String(bucket), aws.String(base+rel)
	in.Body = bytes.NewReader(body)
	in.ContentLength = aws.Int64(int64(len(body)))
	if _, err := client.PutObject(ctx, &in); err != nil {
		t.Fatalf("put %s: %v", base+rel, err)
	}
	return getSource(t, client, bucket, base, rel)
}

func getSource(t *testing.T, client *s3.Client, bucket, base, rel string) Source {
	t.Helper()
	out, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(base + rel)})
	if err != nil {
		t.Fatalf("get %s: %v", base+rel, err)
	}
	io.Copy(io.Discard, out.Body)
	out.Body.Close()
	return Source{
		Bucket: bucket, Key: base + rel, RelKey: rel,
		ETag: aws.ToString(out.ETag), VersionID: aws.ToString(out.VersionId),
		Modified: aws.ToTime(out.LastModified),
		Size:     aws.ToInt64(out.ContentLength), Attrs: AttributesFromGet(out),
	}
}

func readObject(t *testing.T, client *s3.Client, bucket, key string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, out
}

func exists(t *testing.T, client *s3.Client, bucket, key string) bool {
	t.Helper()
	_, err := client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err == nil {
		return true
	}
	if errors.Is(connector.Classify(err, miniotest.Region), connector.ErrNotFound) {
		return false
	}
	t.Fatalf("head %s: %v", key, err)
	return false
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestMoveArchivesKeepingAttributes(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Root()
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket, BasePath: "in/"}

	for _, rel := range []string{"plain.csv", "dir with space/a+b.csv", "données/été.csv", "empty.txt"} {
		t.Run(rel, func(t *testing.T) {
			body := randomBytes(t, 3000)
			if rel == "empty.txt" {
				body = nil
			}
			src := putObject(t, client, bucket, "in/", rel, body, s3.PutObjectInput{
				ContentType:     aws.String("text/csv; charset=utf-8"),
				ContentEncoding: aws.String("identity"),
				CacheControl:    aws.String("no-cache"),
				Metadata:        map[string]string{"origin": "erp", "batch": "42"},
			})
			res, err := mover.Move(t.Context(), src, Archive, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := DestKey("in/", Archive, rel, src.Version()); res.Key != want {
				t.Errorf("moved to %q, want %q", res.Key, want)
			}
			if res.Report != "" {
				t.Errorf("archive move wrote a report %q", res.Report)
			}
			got, out := readObject(t, client, bucket, res.Key)
			if !bytes.Equal(got, body) {
				t.Errorf("archived body differs: %d bytes, want %d", len(got), len(body))
			}
			if ct := aws.ToString(out.ContentType); ct != "text/csv; charset=utf-8" {
				t.Errorf("content type %q", ct)
			}
			if cc := aws.ToString(out.CacheControl); cc != "no-cache" {
				t.Errorf("cache control %q", cc)
			}
			if out.Metadata["origin"] != "erp" || out.Metadata["batch"] != "42" {
				t.Errorf("metadata %v", out.Metadata)
			}
			if exists(t, client, bucket, src.Key) {
				t.Errorf("original %q still in the inbox", src.Key)
			}
		})
	}
}

func TestMoveToErrorWritesReportFirst(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Root()
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket, BasePath: ""}
	src := putObject(t, client, bucket, "", "bad/rows.csv", []byte("not,a,valid\nfile"), s3.PutObjectInput{})
	failed := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	res, err := mover.Move(t.Context(), src, Error, &Report{
		Reason: "line 2: expected 3 fields", Attempts: 1, Connection: "acme", RunID: "run000000002",
		Bucket: bucket, Key: src.Key, ETag: src.ETag, Size: src.Size, FailedAt: failed,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.Key, "error/bad/rows.") || res.Report != res.Key+".error.json" {
		t.Fatalf("result %+v", res)
	}
	if got, _ := readObject(t, client, bucket, res.Key); string(got) != "not,a,valid\nfile" {
		t.Errorf("error copy body %q", got)
	}
	raw, out := readObject(t, client, bucket, res.Report)
	if ct := aws.ToString(out.ContentType); ct != "application/json" {
		t.Errorf("report content type %q", ct)
	}
	var rep map[string]any
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, raw)
	}
	for k, want := range map[string]any{
		"reason": "line 2: expected 3 fields", "attempts": 1.0, "connection": "acme",
		"run_id": "run000000002", "key": "bad/rows.csv", "error_key": res.Key,
		"etag": src.ETag, "failed_at": "2026-11-22T10:00:00Z",
	} {
		if rep[k] != want {
			t.Errorf("report[%q] = %v, want %v", k, rep[k], want)
		}
	}
	if exists(t, client, bucket, src.Key) {
		t.Error("original still in the inbox")
	}
	if _, err := mover.Move(t.Context(), src, Error, nil); err == nil {
		t.Error("a move to error/ without a report succeeded")
	}
}

// A file re-uploaded after it was listed must not be copied or deleted: the
// copy is pinned to the listed ETag (MinIO honours CopySourceIfMatch).
// A file whose name is near S3's key limit still reaches error/ with its
// report: the report's longer name must fit too.
func TestMoveToErrorLongName(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Root()
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket, BasePath: "in/"}
	// 983 bytes in all (MinIO also limits each path segment to 255 bytes):
	// the error/ name would be 1,016 bytes and its report's 1,027.
	rel := strings.Repeat(strings.Repeat("d", 193)+"/", 4) + strings.Repeat("n", 200) + ".csv"
	src := putObject(t, client, bucket, "in/", rel, []byte("x"), s3.PutObjectInput{})
	res, err := mover.Move(t.Context(), src, Error, &Report{Reason: "rejected", Key: src.Key})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Report) > MaxKeyLength || !exists(t, client, bucket, res.Key) || !exists(t, client, bucket, res.Report) {
		t.Errorf("result %+v: want the copy and its report in error/", res)
	}
	if exists(t, client, bucket, src.Key) {
		t.Error("original still in the inbox")
	}
}

func TestMoveRefusesChangedSource(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Root()
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket}
	listed := putObject(t, client, bucket, "", "f.csv", []byte("version 1"), s3.PutObjectInput{})
	putObject(t, client, bucket, "", "f.csv", []byte("version 2, re-uploaded"), s3.PutObjectInput{})

	_, err := mover.Move(t.Context(), listed, Archive, nil)
	if !errors.Is(connector.Classify(err, miniotest.Region), connector.ErrPreconditionFailed) {
		t.Fatalf("Move of a changed source: err = %v, want precondition failed", err)
	}
	if got, _ := readObject(t, client, bucket, "f.csv"); string(got) != "version 2, re-uploaded" {
		t.Errorf("inbox file = %q, want the re-uploaded version", got)
	}
	keys, err := srv.Keys(t.Context(), bucket, "archive/")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("archive/ holds %v after a refused move", keys)
	}
}

// SSE-KMS objects keep their key id, SSE-S3 objects stay SSE-S3, also when
// the bucket default differs (here: none) and also for multipart copies.
func TestMoveKeepsEncryption(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Root()
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket, BasePath: "in/", MultipartThreshold: 6 << 20, PartSize: MinPartSize}
	for _, tc := range []struct {
		name string
		size int
		in   s3.PutObjectInput
	}{
		{"kms.csv", 1000, s3.PutObjectInput{ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(miniotest.KMSKeyID)}},
		{"sse-s3.csv", 1000, s3.PutObjectInput{ServerSideEncryption: types.ServerSideEncryptionAes256}},
		{"kms-multipart.bin", 13 << 20, s3.PutObjectInput{ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(miniotest.KMSKeyID)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := randomBytes(t, tc.size)
			src := putObject(t, client, bucket, "in/", tc.name, body, tc.in)
			if src.Attrs.SSE != tc.in.ServerSideEncryption {
				t.Fatalf("fixture: source encryption %q, want %q", src.Attrs.SSE, tc.in.ServerSideEncryption)
			}
			res, err := mover.Move(t.Context(), src, Archive, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, out := readObject(t, client, bucket, res.Key)
			if !bytes.Equal(got, body) {
				t.Errorf("archived body differs")
			}
			if out.ServerSideEncryption != tc.in.ServerSideEncryption {
				t.Errorf("archived encryption %q, want %q", out.ServerSideEncryption, tc.in.ServerSideEncryption)
			}
			if tc.in.SSEKMSKeyId != nil && !strings.HasSuffix(aws.ToString(out.SSEKMSKeyId), miniotest.KMSKeyID) {
				t.Errorf("archived KMS key %q, want %q", aws.ToString(out.SSEKMSKeyId), miniotest.KMSKeyID)
			}
		})
	}
}

// newRecorder is a recording proxy in front of MinIO and a root client
// through it. MinIO ignores If-Match on DeleteObject and the ETag of
// DeleteObjects entries (AWS honours them), so the conditional delete can
// only be checked by looking at the request we send.
func newRecorder(t *testing.T, srv *miniotest.Server) (*miniotest.Proxy, *s3.Client) {
	p := srv.NewProxy(t)
	return p, p.Client()
}

// A copy whose answer is lost is retried by the SDK; on AWS the retry
// fails its If-None-Match because the first attempt's copy exists. The
// move must see that the copy is done and finish, report included, rather
// than give up with an error/ file and no report. MinIO ignores
// If-None-Match on CopyObject, so the proxy answers the retry as AWS would.
func TestMoveCopyAnswerLost(t *testing.T) {
	srv := miniotest.Shared(t)
	for _, folder := range []Folder{Archive, Error} {
		t.Run(string(folder), func(t *testing.T) {
			rec, client := newRecorder(t, srv)
			bucket := newBucket(t, srv)
			src := putObject(t, client, bucket, "in/", "a.csv", []byte("a,b\n"), s3.PutObjectInput{})
			isCopy := func(r *http.Request) bool {
				return r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != ""
			}
			var copies atomic.Int32
			rec.LoseAnswer(func(r *http.Request) (int, string, bool) {
				if isCopy(r) && copies.Add(1) == 1 {
					return http.StatusInternalServerError, "<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>", true
				}
				return 0, "", false
			})
			rec.Answer(func(r *http.Request) (int, string, bool) {
				if isCopy(r) && copies.Load() >= 2 {
					return http.StatusPreconditionFailed, "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>", true
				}
				return 0, "", false
			})
			mover := &Mover{S3: client, Bucket: bucket, BasePath: "in/"}
			var report *Report
			if folder == Error {
				report = &Report{Reason: "rejected", Key: src.Key}
			}
			res, err := mover.Move(t.Context(), src, folder, report)
			if err != nil {
				t.Fatalf("move: %v", err)
			}
			if n := len(rec.Matching(http.MethodPut, "")); n < 2 {
				t.Fatalf("%d PUT requests: the lost answer was not retried", n)
			}
			if got, _ := readObject(t, client, bucket, res.Key); string(got) != "a,b\n" {
				t.Errorf("copy body %q", got)
			}
			if folder == Error && !exists(t, client, bucket, res.Report) {
				t.Error("report deleted although its file is in error/")
			}
			if exists(t, client, bucket, src.Key) {
				t.Error("original still in the inbox")
			}
		})
	}
}

func TestMoveDeleteIsConditional(t *testing.T) {
	srv := miniotest.Shared(t)
	rec, client := newRecorder(t, srv)
	bucket := newBucket(t, srv)

	t.Run("single delete carries If-Match", func(t *testing.T) {
		mover := &Mover{S3: client, Bucket: bucket, SingleDeletes: true}
		src := putObject(t, client, bucket, "", "single.csv", []byte("x"), s3.PutObjectInput{})
		if _, err := mover.Move(t.Context(), src, Archive, nil); err != nil {
			t.Fatal(err)
		}
		dels := rec.Matching(http.MethodDelete, "")
		if len(dels) != 1 {
			t.Fatalf("%d DELETE requests, want 1", len(dels))
		}
		if got := dels[0].Header.Get("If-Match"); got != src.ETag {
			t.Errorf("DELETE If-Match = %q, want the listed ETag %q", got, src.ETag)
		}
		copies := rec.Matching(http.MethodPut, "")
		var sawCopy bool
		for _, c := range copies {
			if c.Header.Get("X-Amz-Copy-Source") != "" {
				sawCopy = true
				if got := c.Header.Get("X-Amz-Copy-Source-If-Match"); got != src.ETag {
					t.Errorf("copy source If-Match = %q, want %q", got, src.ETag)
				}
				if got := c.Header.Get("If-None-Match"); got != "*" {
					t.Errorf("copy If-None-Match = %q, want *", got)
				}
			}
		}
		if !sawCopy {
			t.Error("no CopyObject request seen")
		}
	})

	t.Run("batched deletes carry each ETag", func(t *testing.T) {
		mover := &Mover{S3: client, Bucket: bucket}
		const n = 40
		srcs := make([]Source, n)
		for i := range srcs {
			srcs[i] = putObject(t, client, bucket, "", fmt.Sprintf("batch/%02d.csv", i), []byte(fmt.Sprint(i)), s3.PutObjectInput{})
		}
		before := len(rec.Matching(http.MethodPost, "delete"))
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range srcs {
			wg.Go(func() { _, errs[i] = mover.Move(context.Background(), srcs[i], Archive, nil) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		posts := rec.Matching(http.MethodPost, "delete")[before:]
		if len(posts) == 0 || len(posts) > n {
			t.Fatalf("%d DeleteObjects requests for %d moves", len(posts), n)
		}
		all := ""
		for _, p := range posts {
			all += p.Body
		}
		for _, s := range srcs {
			entry := "<Object><ETag>" + xmlEscape(s.ETag) + "</ETag><Key>" + s.Key + "</Key></Object>"
			if !strings.Contains(all, entry) {
				t.Errorf("no DeleteObjects entry %s", entry)
			}
		}
		keys, err := srv.Keys(t.Context(), bucket, "batch/")
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 0 {
			t.Errorf("inbox still holds %v", keys)
		}
		t.Logf("%d moves, %d DeleteObjects requests", n, len(posts))
	})

	// On a versioned bucket the move copies exactly the imported version
	// (?versionId= in the copy source) and deletes without a version id,
	// conditionally on the ETag, which only adds a delete marker: the
	// imported version stays in the bucket's history (I11). MinIO shows the
	// versions; the headers it ignores are checked on the recorded requests.
	t.Run("versioned bucket keeps every version", func(t *testing.T) {
		vbucket := newBucket(t, srv)
		if _, err := client.PutBucketVersioning(t.Context(), &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(vbucket),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
		}); err != nil {
			t.Fatal(err)
		}
		for _, single := range []bool{true, false} {
			mover := &Mover{S3: client, Bucket: vbucket, SingleDeletes: single}
			key := fmt.Sprintf("v-%v.csv", single)
			src := putObject(t, client, vbucket, "", key, []byte("v1"), s3.PutObjectInput{})
			if src.VersionID == "" {
				t.Fatal("fixture: versioned bucket returned no version id")
			}
			res, err := mover.Move(t.Context(), src, Archive, nil)
			if err != nil {
				t.Fatal(err)
			}
			versions, err := client.ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: aws.String(vbucket), Prefix: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			if len(versions.Versions) != 1 || aws.ToString(versions.Versions[0].VersionId) != src.VersionID ||
				len(versions.DeleteMarkers) != 1 || !aws.ToBool(versions.DeleteMarkers[0].IsLatest) {
				t.Errorf("single=%v: inbox key has versions %+v and delete markers %+v, want the imported version under one delete marker",
					single, versions.Versions, versions.DeleteMarkers)
			}
			if exists(t, client, vbucket, key) {
				t.Errorf("single=%v: %s still current in the inbox", single, key)
			}
			if got, _ := readObject(t, client, vbucket, res.Key); string(got) != "v1" {
				t.Errorf("archived %q", got)
			}
			var pinned bool
			for _, c := range rec.Matching(http.MethodPut, "") {
				pinned = pinned || c.Header.Get("X-Amz-Copy-Source") == CopySource(vbucket, key)+"?versionId="+url.QueryEscape(src.VersionID)
			}
			if !pinned {
				t.Errorf("single=%v: no copy pinned to version %s", single, src.VersionID)
			}
		}
		for _, d := range rec.Matching(http.MethodDelete, "versionId=") {
			t.Errorf("a delete named a version: %s?%s", d.Path, d.Query)
		}
		for _, p := range rec.Matching(http.MethodPost, "delete") {
			if strings.Contains(p.Body, "VersionId") {
				t.Errorf("a DeleteObjects entry named a version: %s", p.Body)
			}
		}
		var conditional bool
		for _, d := range rec.Matching(http.MethodDelete, "") {
			conditional = conditional || (strings.HasSuffix(d.Path, "/v-true.csv") && d.Header.Get("If-Match") != "")
		}
		if !conditional {
			t.Error("single delete on a versioned bucket did not carry If-Match")
		}
	})
}

func xmlEscape(s string) string { return strings.ReplaceAll(s, `"`, "&#34;") }

// Some S3-compatible stores (GCS's XML API among them) answer DeleteObjects
// with 501 NotImplemented; the recorder plays such a store, which no server
// here is. The mover falls back to single conditional deletes.
func TestMoveFallsBackWithoutDeleteObjects(t *testing.T) {
	srv := miniotest.Shared(t)
	rec, client := newRecorder(t, srv)
	rec.Answer(func(r *http.Request) (int, string, bool) {
		if r.Method == http.MethodPost && r.URL.Query().Has("delete") {
			return http.StatusNotImplemented, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>`, true
		}
		return 0, "", false
	})
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket}
	for i := range 3 {
		src := putObject(t, client, bucket, "", fmt.Sprintf("f%d", i), []byte("x"), s3.PutObjectInput{})
		if _, err := mover.Move(t.Context(), src, Archive, nil); err != nil {
			t.Fatalf("move %d: %v", i, err)
		}
		if exists(t, client, bucket, src.Key) {
			t.Errorf("%s still in the inbox", src.Key)
		}
	}
	if n := len(rec.Matching(http.MethodPost, "delete")); n != 1 {
		t.Errorf("%d DeleteObjects attempts, want 1 (then single deletes)", n)
	}
	if n := len(rec.Matching(http.MethodDelete, "")); n != 3 {
		t.Errorf("%d single deletes, want 3", n)
	}
}

// Multipart copy (lowered threshold) copies every byte and the attributes,
// pinned to the ETag; a changed source aborts the upload.
func TestMoveMultipart(t *testing.T) {
	srv := miniotest.Shared(t)
	rec, client := newRecorder(t, srv)
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket, BasePath: "in/", MultipartThreshold: 5 << 20, PartSize: MinPartSize, PartConcurrency: 2}
	body := randomBytes(t, 17<<20+123)
	src := putObject(t, client, bucket, "in/", "big/data.bin", body, s3.PutObjectInput{
		ContentType: aws.String("application/x-parquet"),
		Metadata:    map[string]string{"rows": "1000000"},
		Tagging:     aws.String("source=erp&class=a b"),
	})
	res, err := mover.Move(t.Context(), src, Archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, out := readObject(t, client, bucket, res.Key)
	if !bytes.Equal(got, body) {
		t.Fatalf("multipart copy differs: %d bytes, want %d", len(got), len(body))
	}
	// Tags are kept, as CopyObject's TaggingDirective COPY keeps them.
	tags, err := client.GetObjectTagging(t.Context(), &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(res.Key)})
	if err != nil {
		t.Fatal(err)
	}
	gotTags := map[string]string{}
	for _, tg := range tags.TagSet {
		gotTags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if len(gotTags) != 2 || gotTags["source"] != "erp" || gotTags["class"] != "a b" {
		t.Errorf("multipart copy has tags %v, want the source's", gotTags)
	}
	if aws.ToString(out.ContentType) != "application/x-parquet" || out.Metadata["rows"] != "1000000" {
		t.Errorf("attributes lost: %q %v", aws.ToString(out.ContentType), out.Metadata)
	}
	parts := 0
	for _, p := range rec.Matching(http.MethodPut, "partNumber=") {
		parts++
		if p.Header.Get("X-Amz-Copy-Source-If-Match") != src.ETag {
			t.Errorf("part copy without If-Match %q", src.ETag)
		}
	}
	if parts != 4 {
		t.Errorf("%d UploadPartCopy requests, want 4 (17 MiB in 5 MiB parts)", parts)
	}
	if exists(t, client, bucket, src.Key) {
		t.Error("original still in the inbox")
	}

	// Changed after listing: every part copy fails its precondition, the
	// upload is aborted and the new version stays.
	listed := putObject(t, client, bucket, "in/", "big/changed.bin", body[:11<<20], s3.PutObjectInput{})
	putObject(t, client, bucket, "in/", "big/changed.bin", body[:12<<20], s3.PutObjectInput{})
	if _, err := mover.Move(t.Context(), listed, Archive, nil); err == nil {
		t.Fatal("multipart move of a changed source succeeded")
	}
	if len(rec.Matching(http.MethodDelete, "uploadId=")) == 0 {
		t.Error("failed multipart copy was not aborted")
	}
	uploads, err := client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(uploads.Uploads) != 0 {
		t.Errorf("%d multipart uploads left behind", len(uploads.Uploads))
	}
	if got, _ := readObject(t, client, bucket, "in/big/changed.bin"); len(got) != 12<<20 {
		t.Errorf("inbox file has %d bytes, want the re-uploaded 12 MiB", len(got))
	}
}

func TestMoveDoesNotStartWhenCancelled(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Root()
	bucket := newBucket(t, srv)
	mover := &Mover{S3: client, Bucket: bucket}
	src := putObject(t, client, bucket, "", "f.csv", []byte("x"), s3.PutObjectInput{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := mover.Move(ctx, src, Archive, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !exists(t, client, bucket, "f.csv") {
		t.Error("cancelled move touched the original")
	}
}

// A move repeated for the same version, as after a crash between its copy
// and its delete, targets the same names and leaves one copy (I2): the
// existing copy (and report) count as done, the delete follows.
func TestMoveRepeatedArchivesOnce(t *testing.T) {
	srv := miniotest.Shared(t)
	client := srv.Root()
	for _, folder := range []Folder{Archive, Error} {
		t.Run(string(folder), func(t *testing.T) {
			bucket := newBucket(t, srv)
			src := putObject(t, client, bucket, "in/", "a.csv", []byte("a,b\n"), s3.PutObjectInput{})
			report := func() *Report {
				if folder == Error {
					return &Report{Reason: "rejected", Key: src.Key}
				}
				return nil
			}
			// The crashed first move: copy (and report) done, no delete.
			dest := DestKey("in/", folder, "a.csv", src.Version())
			if r := report(); r != nil {
				m := &Mover{S3: client, Bucket: bucket, BasePath: "in/"}
				if err := m.putReport(t.Context(), ReportKey(dest), src, r); err != nil {
					t.Fatal(err)
				}
			}
			if err := (&Mover{S3: client, Bucket: bucket, BasePath: "in/"}).copy(t.Context(), src, dest); err != nil {
				t.Fatal(err)
			}
			res, err := (&Mover{S3: client, Bucket: bucket, BasePath: "in/"}).Move(t.Context(), src, folder, report())
			if err != nil {
				t.Fatalf("repeated move: %v", err)
			}
			if res.Key != dest {
				t.Errorf("repeated move went to %q, want %q", res.Key, dest)
			}
			got, err := srv.Keys(t.Context(), bucket, "in/")
			if err != nil {
				t.Fatal(err)
			}
			want := []string{dest}
			if folder == Error {
				want = append(want, ReportKey(dest))
			}
			if !slices.Equal(got, want) {
				t.Errorf("bucket holds %q, want %q", got, want)
			}
		})
	}
}

// On a bucket whose versioning is suspended, AWS answers GetObject with
// `x-amz-version-id: null` (MinIO does not, so the Source carries it as
// the worker would read it from AWS). Neither the copy nor the delete may
// name that version: VersionId=null would delete whatever the null version
// is now, perhaps a re-upload nobody imported. Checked on the requests.
func TestMoveNullVersionIsNotPinned(t *testing.T) {
	srv := miniotest.Shared(t)
	rec, client := newRecorder(t, srv)
	bucket := newBucket(t, srv)
	for _, single := range []bool{true, false} {
		src := putObject(t, client, bucket, "", fmt.Sprintf("s-%v.csv", single), []byte("x"), s3.PutObjectInput{})
		src.VersionID = "null"
		if _, err := (&Mover{S3: client, Bucket: bucket, SingleDeletes: single}).Move(t.Context(), src, Archive, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range rec.Requests() {
		if strings.Contains(r.Query, "versionId") || strings.Contains(r.Header.Get("X-Amz-Copy-Source"), "versionId") || strings.Contains(r.Body, "VersionId") {
			t.Errorf("%s %s?%s names a version (copy source %q, body %q)", r.Method, r.Path, r.Query, r.Header.Get("X-Amz-Copy-Source"), r.Body)
		}
		if r.Method == http.MethodDelete && r.Header.Get("If-Match") == "" {
			t.Errorf("DELETE %s without If-Match", r.Path)
		}
	}
}

package ingest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
	"github.com/s3connector/s3connector/metrics"
)

var userSeq atomic.Int64

// testConnection returns a connection to bucket/base on MinIO whose
// platform user holds exactly the permissions policy we generate for it
// (I10: every ingestion step must work under it alone). endpoint may point
// at a proxy in front of srv; "" means srv itself.
func testConnection(t testing.TB, srv *miniotest.Server, bucket, base, endpoint string, edit func(*config.Connection)) *connector.Connection {
	t.Helper()
	return testConnectionWith(t, srv, bucket, base, endpoint, edit)
}

// testConnectionWith is testConnection whose platform user's policy also
// holds the extra statements (a Deny, say, as a bucket policy or an
// Object Lock would refuse a step).
func testConnectionWith(t testing.TB, srv *miniotest.Server, bucket, base, endpoint string, edit func(*config.Connection), extra ...connector.PolicyStatement) *connector.Connection {
	t.Helper()
	if endpoint == "" {
		endpoint = srv.Endpoint
	}
	c := config.Connection{
		Name: "acme", Status: config.StatusActive, AccountID: "123456789012",
		Bucket: bucket, Region: miniotest.Region, BasePath: base,
		RoleName: "s3connector-acme", ExternalID: "s3connector-test-external-id-0001",
		Workers: 4, Endpoint: endpoint, STSEndpoint: endpoint,
	}
	if edit != nil {
		edit(&c)
	}
	doc := connector.PermissionsPolicyFor(c)
	doc.Statement = append(doc.Statement, extra...)
	policy, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	n := userSeq.Add(1)
	user, secret := fmt.Sprintf("ingest-%d", n), fmt.Sprintf("ingest-secret-%d", n)
	if err := srv.AddUser(context.Background(), user, secret, policy); err != nil {
		t.Fatal(err)
	}
	platform := aws.Config{
		Region:      miniotest.Region,
		Credentials: credentials.NewStaticCredentialsProvider(user, secret, ""),
		HTTPClient:  awshttp.NewBuildableClient(),
	}
	conn, err := connector.New(platform, "arn:aws:iam::049579744830:root", c)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func put(t *testing.T, srv *miniotest.Server, bucket, key string, body []byte) {
	t.Helper()
	if err := srv.Put(context.Background(), bucket, key, body); err != nil {
		t.Fatal(err)
	}
}

func keys(t *testing.T, srv *miniotest.Server, bucket, prefix string) []string {
	t.Helper()
	k, err := srv.Keys(context.Background(), bucket, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func body(t *testing.T, srv *miniotest.Server, bucket, key string) []byte {
	t.Helper()
	out, err := srv.Root().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomBody(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// archivedRel maps an archived key back to the relative key it came from
// (the inverse of archive.DestKey's insertion of ".<time>-<run id>").
func archivedRel(t *testing.T, base string, folder archive.Folder, key string) string {
	t.Helper()
	rel := strings.TrimPrefix(key, base+string(folder))
	dir, file := filepath.Split(rel)
	// stem.<stamp>-<run>[.ext]
	parts := strings.Split(file, ".")
	for i, p := range parts {
		if len(p) == len("20060102T150405Z-")+12 && p[8] == 'T' && p[15] == 'Z' && p[16] == '-' {
			return dir + strings.Join(append(slices.Clone(parts[:i]), parts[i+1:]...), ".")
		}
	}
	t.Fatalf("archived key %q has no timestamp-run component", key)
	return ""
}

func TestRunArchivesEveryFileByteForByte(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	want := map[string][]byte{}
	for i := range 300 {
		rel := fmt.Sprintf("batch-%d/sub-%d/file-%03d.csv", i%5, i%3, i)
		want[rel] = []byte(fmt.Sprintf("id,value\n%d,%d\n", i, i*i))
	}
	want["dir with space/a+b c.csv"] = []byte("plus and space")
	want["données/été 2026.csv"] = []byte("unicode")
	// Control characters: listed URL-encoded, deleted one by one (an XML
	// DeleteObjects body cannot name them).
	want["ctl\x01char.csv"] = []byte("control")
	want["tab\tcr\rlf\n.csv"] = []byte("whitespace")
	want["empty.csv"] = nil
	want["big/3mib.bin"] = randomBody(3<<20 + 17)
	for rel, b := range want {
		put(t, srv, bucket, "inbox/"+rel, b)
	}
	// Not in the inbox: must not be touched.
	put(t, srv, bucket, "inbox/archive/old.csv", []byte("old"))
	put(t, srv, bucket, "inbox/error/old.csv", []byte("old"))
	put(t, srv, bucket, "outside/x.csv", []byte("x"))

	dir := t.TempDir()
	conn := testConnection(t, srv, bucket, "inbox/", "", func(c *config.Connection) { c.Workers = 8 })
	r, err := NewRunner(conn, Options{Importer: Dir{Root: dir}, PageSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Run(t.Context())
	t.Log(s)
	if !s.OK() || s.Listed != len(want) || s.Imported != len(want) || s.Archived != len(want) || s.Errored != 0 || s.Retry != 0 {
		t.Fatalf("summary %+v, want all %d archived", s, len(want))
	}
	var total int64
	for rel, b := range want {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatalf("imported file: %v", err)
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s: imported %d bytes differ from the %d uploaded", rel, len(got), len(b))
		}
		total += int64(len(b))
	}
	if s.Bytes != total {
		t.Errorf("summary bytes %d, want %d", s.Bytes, total)
	}
	var left []string
	for _, k := range keys(t, srv, bucket, "inbox/") {
		if !strings.HasPrefix(k, "inbox/archive/") && !strings.HasPrefix(k, "inbox/error/") {
			left = append(left, k)
		}
	}
	if len(left) != 0 {
		t.Errorf("inbox/ still holds %d files: %v", len(left), left[:min(len(left), 5)])
	}
	if got := body(t, srv, bucket, "inbox/error/old.csv"); string(got) != "old" {
		t.Error("error/old.csv was touched")
	}
	archived := map[string]string{}
	for _, k := range keys(t, srv, bucket, "inbox/archive/") {
		if k == "inbox/archive/old.csv" {
			continue
		}
		rel := archivedRel(t, "inbox/", archive.Archive, k)
		if prev, dup := archived[rel]; dup {
			t.Errorf("%s archived twice: %s and %s", rel, prev, k)
		}
		archived[rel] = k
	}
	for rel, b := range want {
		k, ok := archived[rel]
		if !ok {
			t.Errorf("%s not archived", rel)
			continue
		}
		if got := body(t, srv, bucket, k); !bytes.Equal(got, b) {
			t.Errorf("archived %s differs", k)
		}
	}
	if got := body(t, srv, bucket, "outside/x.csv"); string(got) != "x" {
		t.Error("a key outside the base path was touched")
	}
}

// importerFunc adapts a function to Importer.
type importerFunc func(ctx context.Context, f File, body io.Reader) error

func (fn importerFunc) Import(ctx context.Context, f File, body io.Reader) error {
	return fn(ctx, f, body)
}

func TestRunPermanentFailuresGoToErrorWithReport(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	for _, k := range []string{"good-1.csv", "good-2.csv", "bad-1.csv", "nested/bad-2.csv"} {
		put(t, srv, bucket, k, []byte("content of "+k))
	}
	imp := importerFunc(func(_ context.Context, f File, body io.Reader) error {
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		if strings.Contains(f.RelKey, "bad") {
			// The customer-safe reason goes into the report; the error
			// with the content only into the log.
			return Rejected("row 1: cannot parse the first column", fmt.Errorf("row 1: cannot parse %q", b))
		}
		return nil
	})
	r, err := NewRunner(testConnection(t, srv, bucket, "", "", nil), Options{Importer: imp})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Run(t.Context())
	if s.Archived != 2 || s.Errored != 2 || s.Retry != 0 || !s.OK() {
		t.Fatalf("summary %+v", s)
	}
	var files, reports []string
	for _, k := range keys(t, srv, bucket, "error/") {
		if strings.HasSuffix(k, archive.ReportSuffix) {
			reports = append(reports, k)
		} else {
			files = append(files, k)
		}
	}
	if len(files) != 2 || len(reports) != 2 {
		t.Fatalf("error/ holds files %v and reports %v, want 2 of each", files, reports)
	}
	for _, f := range files {
		var rep archive.Report
		if err := json.Unmarshal(body(t, srv, bucket, archive.ReportKey(f)), &rep); err != nil {
			t.Fatalf("report of %s: %v", f, err)
		}
		rel := archivedRel(t, "", archive.Error, f)
		if rep.Key != rel || rep.Connection != "acme" || rep.RunID != s.RunID || rep.Attempts != 1 ||
			rep.Reason != "row 1: cannot parse the first column" || rep.ReasonCode != ReasonRejected || rep.ErrorKey != f || rep.FailedAt.IsZero() {
			t.Errorf("report of %s: %+v", f, rep)
		}
		if got := string(body(t, srv, bucket, f)); got != "content of "+rel {
			t.Errorf("%s holds %q", f, got)
		}
	}
	if n := len(keys(t, srv, bucket, "archive/")); n != 2 {
		t.Errorf("archive/ holds %d files, want 2", n)
	}
}

func TestRunTransientFailuresStayForTheNextRun(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	for i := range 10 {
		put(t, srv, bucket, fmt.Sprintf("f%d.csv", i), []byte("x"))
	}
	var sinkDown atomic.Bool
	sinkDown.Store(true)
	imp := importerFunc(func(_ context.Context, f File, body io.Reader) error {
		io.Copy(io.Discard, body)
		if sinkDown.Load() && (f.RelKey == "f3.csv" || f.RelKey == "f7.csv") {
			return errors.New("sink unavailable: connection refused")
		}
		return nil
	})
	r, err := NewRunner(testConnection(t, srv, bucket, "", "", nil), Options{Importer: imp})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Run(t.Context())
	if s.Archived != 8 || s.Retry != 2 || s.Errored != 0 || s.OK() {
		t.Fatalf("first run %+v, want 8 archived and 2 left", s)
	}
	if left := keys(t, srv, bucket, ""); !slices.Contains(left, "f3.csv") || !slices.Contains(left, "f7.csv") {
		t.Fatalf("transient failures not in the inbox: %v", left)
	}
	if n := len(keys(t, srv, bucket, "error/")); n != 0 {
		t.Fatalf("transient failure sent %d files to error/", n)
	}
	sinkDown.Store(false)
	s = r.Run(t.Context())
	if s.Archived != 2 || s.Retry != 0 || !s.OK() {
		t.Fatalf("second run %+v, want the 2 left archived", s)
	}
	if n := len(keys(t, srv, bucket, "archive/")); n != 10 {
		t.Errorf("archive/ holds %d files, want 10", n)
	}
}

func TestRunMaxAttemptsSendsAStuckFileToError(t *testing.T) {
	// The long name's count record would pass S3's key limit under its own
	// name (998 + 36 bytes); it is kept under a hash.
	long := strings.Repeat(strings.Repeat("d", 200)+"/", 4) + strings.Repeat("n", 190) + ".csv"
	for _, stuck := range []string{"stuck.csv", long} {
		t.Run(fmt.Sprintf("%d bytes", len(stuck)), func(t *testing.T) {
			testMaxAttempts(t, stuck)
		})
	}
}

func testMaxAttempts(t *testing.T, stuck string) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "in/"+stuck, []byte("always times out"))
	put(t, srv, bucket, "in/fine.csv", []byte("fine"))
	imp := importerFunc(func(_ context.Context, f File, body io.Reader) error {
		io.Copy(io.Discard, body)
		if f.RelKey == stuck {
			return errors.New("sink timeout")
		}
		return nil
	})
	conn := testConnection(t, srv, bucket, "in/", "", func(c *config.Connection) { c.MaxAttempts = 3 })
	r, err := NewRunner(conn, Options{Importer: imp})
	if err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		if s := r.Run(t.Context()); s.Retry != 1 || s.Errored != 0 {
			t.Fatalf("run %d: %+v, want the stuck file left", run, s)
		}
	}
	if got := keys(t, srv, bucket, "in/error/.s3connector/attempts/"); len(got) != 1 {
		t.Fatalf("attempt records %v, want one", got)
	}
	s := r.Run(t.Context())
	if s.Errored != 1 || s.Retry != 0 {
		t.Fatalf("third run %+v, want the stuck file in error/", s)
	}
	var report string
	for _, k := range keys(t, srv, bucket, "in/error/") {
		if strings.HasSuffix(k, archive.ReportSuffix) {
			report = k
		}
	}
	var rep archive.Report
	if err := json.Unmarshal(body(t, srv, bucket, report), &rep); err != nil {
		t.Fatal(err)
	}
	// The sink's own words stay in the log: the report says what kind of
	// trouble it was.
	if rep.Attempts != 3 || rep.ReasonCode != ReasonGaveUp || !strings.Contains(rep.Reason, "gave up after 3 attempts") ||
		!strings.Contains(rep.Reason, "temporary error") || strings.Contains(rep.Reason, "sink timeout") || rep.FirstSeen.IsZero() {
		t.Errorf("report %+v", rep)
	}
	if got := keys(t, srv, bucket, "in/error/.s3connector/attempts/"); len(got) != 0 {
		t.Errorf("attempt record not cleared: %v", got)
	}
	if got := keys(t, srv, bucket, "in/"+stuck); len(got) != 0 {
		t.Error("stuck file still in the inbox")
	}
}

// A failing file's state record goes once the customer deletes the file
// from the inbox (no run would clear it otherwise), while the record of a
// failing file that is still there, though no longer listed (a changed
// include pattern), stays. On a versioned bucket (MinIO has versioning)
// the deleted file is hidden by a delete marker, which HeadObject answers
// with 404 as AWS does.
func TestRunRemovesRecordsOfVanishedFiles(t *testing.T) {
	for _, versioned := range []bool{false, true} {
		t.Run(fmt.Sprintf("versioned=%v", versioned), func(t *testing.T) { testRemovesRecordsOfVanishedFiles(t, versioned) })
	}
}

func testRemovesRecordsOfVanishedFiles(t *testing.T, versioned bool) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	if versioned {
		if _, err := srv.Root().PutBucketVersioning(t.Context(), &s3.PutBucketVersioningInput{
			Bucket: aws.String(bucket), VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
		}); err != nil {
			t.Fatal(err)
		}
	}
	put(t, srv, bucket, "in/gone.csv", []byte("fails, then deleted"))
	put(t, srv, bucket, "in/kept.txt", []byte("fails, then excluded"))
	put(t, srv, bucket, "in/fine.csv", []byte("fine"))
	failing := importerFunc(func(_ context.Context, f File, body io.Reader) error {
		io.Copy(io.Discard, body)
		if f.RelKey != "fine.csv" {
			return errors.New("sink timeout")
		}
		return nil
	})
	r, err := NewRunner(testConnection(t, srv, bucket, "in/", "", func(c *config.Connection) { c.MaxAttempts = 5 }), Options{Importer: failing})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Retry != 2 || s.Archived != 1 {
		t.Fatalf("first run %+v", s)
	}
	records := func() []string { return keys(t, srv, bucket, "in/error/.s3connector/attempts/") }
	if got := records(); len(got) != 2 {
		t.Fatalf("records %v, want one per failing file", got)
	}
	if _, err := srv.Root().DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("in/gone.csv")}); err != nil {
		t.Fatal(err)
	}
	r, err = NewRunner(testConnection(t, srv, bucket, "in/", "", func(c *config.Connection) {
		c.MaxAttempts = 5
		c.Include = []string{"*.csv"}
	}), Options{Importer: failing})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); !s.OK() || s.Listed != 0 {
		t.Fatalf("second run %+v, want nothing listed", s)
	}
	if got := records(); !slices.Equal(got, []string{"in/error/.s3connector/attempts/kept.txt.json"}) {
		t.Errorf("records after the second run %v, want only kept.txt's", got)
	}
}

// The same key uploaded, processed, re-uploaded with new content and
// processed again leaves both versions in archive/ (I2).
func TestRunReuploadKeepsBothVersions(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	r, err := NewRunner(testConnection(t, srv, bucket, "", "", nil), Options{Importer: Discard{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{"version one", "version two"} {
		put(t, srv, bucket, "daily.csv", []byte(content))
		if s := r.Run(t.Context()); s.Archived != 1 {
			t.Fatalf("summary %+v", s)
		}
	}
	got := keys(t, srv, bucket, "archive/")
	if len(got) != 2 {
		t.Fatalf("archive/ holds %v, want two copies", got)
	}
	contents := []string{string(body(t, srv, bucket, got[0])), string(body(t, srv, bucket, got[1]))}
	slices.Sort(contents)
	if !slices.Equal(contents, []string{"version one", "version two"}) {
		t.Errorf("archived contents %q", contents)
	}
}

// A file re-uploaded while it is being imported is neither archived nor
// deleted: the new version stays in the inbox for the next run (I3).
func TestRunReuploadDuringImportIsNotLost(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "live.csv", []byte("old"))
	var once sync.Once
	imp := importerFunc(func(ctx context.Context, f File, body io.Reader) error {
		io.Copy(io.Discard, body)
		once.Do(func() { put(t, srv, bucket, "live.csv", []byte("new, uploaded during the import")) })
		return nil
	})
	r, err := NewRunner(testConnection(t, srv, bucket, "", "", nil), Options{Importer: imp})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Archived != 0 || s.Retry != 1 {
		t.Fatalf("summary %+v, want the file left for the next run", s)
	}
	if got := string(body(t, srv, bucket, "live.csv")); got != "new, uploaded during the import" {
		t.Fatalf("inbox holds %q", got)
	}
	if s := r.Run(t.Context()); s.Archived != 1 {
		t.Fatalf("second run %+v", s)
	}
	got := keys(t, srv, bucket, "archive/")
	if len(got) != 1 || string(body(t, srv, bucket, got[0])) != "new, uploaded during the import" {
		t.Errorf("archive/ holds %v", got)
	}
}

func TestRunKeepsSSEKMSAndCopiesLargeFilesInParts(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	if err := srv.EnableKMS(context.Background(), bucket); err != nil {
		t.Fatal(err)
	}
	small, large := randomBody(4096), randomBody(12<<20+5)
	put(t, srv, bucket, "in/small.bin", small)
	put(t, srv, bucket, "in/large.bin", large)
	dir := t.TempDir()
	conn := testConnection(t, srv, bucket, "in/", "", nil)
	r, err := NewRunner(conn, Options{Importer: Dir{Root: dir}, MultipartThreshold: 5 << 20, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Archived != 2 || !s.OK() {
		t.Fatalf("summary %+v", s)
	}
	for _, k := range keys(t, srv, bucket, "in/archive/") {
		out, err := srv.Root().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		if out.ServerSideEncryption != types.ServerSideEncryptionAwsKms || !strings.HasSuffix(aws.ToString(out.SSEKMSKeyId), miniotest.KMSKeyID) {
			t.Errorf("%s: encryption %q key %q, want aws:kms with %s", k, out.ServerSideEncryption, aws.ToString(out.SSEKMSKeyId), miniotest.KMSKeyID)
		}
		want := small
		if strings.Contains(k, "large") {
			want = large
		}
		if !bytes.Equal(body(t, srv, bucket, k), want) {
			t.Errorf("%s differs", k)
		}
	}
	for name, want := range map[string][]byte{"small.bin": small, "large.bin": large} {
		if got, _ := os.ReadFile(filepath.Join(dir, name)); !bytes.Equal(got, want) {
			t.Errorf("imported %s differs", name)
		}
	}
}

// Cancelling a run mid-way loses nothing and leaves nothing half-moved;
// the next run takes the rest.
func TestRunCancelledMidwayLosesNothing(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	const n = 60
	for i := range n {
		put(t, srv, bucket, fmt.Sprintf("f%02d.csv", i), []byte(fmt.Sprint(i)))
	}
	ctx, cancel := context.WithCancel(t.Context())
	var imported atomic.Int64
	imp := importerFunc(func(ctx context.Context, f File, body io.Reader) error {
		io.Copy(io.Discard, body)
		if imported.Add(1) == 20 {
			cancel()
		}
		return ctx.Err()
	})
	r, err := NewRunner(testConnection(t, srv, bucket, "", "", nil), Options{Importer: imp, PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Run(ctx)
	if !errors.Is(s.Err, context.Canceled) || s.Archived == 0 || s.Archived >= n {
		t.Fatalf("cancelled run %+v", s)
	}
	inbox := map[string]bool{}
	for _, k := range keys(t, srv, bucket, "") {
		if !strings.HasPrefix(k, "archive/") {
			inbox[k] = true
		}
	}
	archived := keys(t, srv, bucket, "archive/")
	for _, k := range archived {
		if rel := archivedRel(t, "", archive.Archive, k); inbox[rel] {
			t.Errorf("%s is both archived and still in the inbox (half-moved)", rel)
		}
	}
	if len(inbox)+len(archived) != n {
		t.Fatalf("after cancel: %d in the inbox + %d archived != %d", len(inbox), len(archived), n)
	}
	if s.Archived != len(archived) {
		t.Errorf("summary says %d archived, archive/ holds %d", s.Archived, len(archived))
	}
	r2, err := NewRunner(testConnection(t, srv, bucket, "", "", nil), Options{Importer: Discard{}})
	if err != nil {
		t.Fatal(err)
	}
	if s := r2.Run(t.Context()); !s.OK() || s.Archived != len(inbox) {
		t.Fatalf("second run %+v, want the %d left", s, len(inbox))
	}
	seen := map[string]bool{}
	for _, k := range keys(t, srv, bucket, "archive/") {
		rel := archivedRel(t, "", archive.Archive, k)
		if seen[rel] {
			t.Errorf("%s archived twice", rel)
		}
		seen[rel] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct files archived, want %d", len(seen), n)
	}
}

// S3 answering 503 SlowDown is retried with backoff by the connection's
// retryer; the run completes. A proxy in front of MinIO injects the 503s
// (MinIO does not throttle on demand).
func TestRunRetriesSlowDown(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	for i := range 5 {
		put(t, srv, bucket, fmt.Sprintf("f%d.csv", i), []byte("x"))
	}
	target, _ := url.Parse(srv.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var slowDowns atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Every other GetObject and CopyObject is throttled once.
		throttle := (r.Method == http.MethodGet && strings.Contains(r.URL.Path, ".csv")) || r.Header.Get("X-Amz-Copy-Source") != ""
		if throttle && slowDowns.Add(1)%2 == 1 {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer hs.Close()
	r, err := NewRunner(testConnection(t, srv, bucket, "", hs.URL, nil), Options{Importer: Discard{}})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Run(t.Context())
	if !s.OK() || s.Archived != 5 {
		t.Fatalf("summary %+v, want all 5 archived despite SlowDown", s)
	}
	if slowDowns.Load() < 10 {
		t.Errorf("only %d throttle-eligible requests seen", slowDowns.Load())
	}
}

// On a versioned bucket, under the generated policy alone, the move copies
// the imported version and hides it behind a delete marker: the version
// stays in the bucket's history and nothing is imported again (I11).
func TestRunVersionedBucket(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	if _, err := srv.Root().PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	}); err != nil {
		t.Fatal(err)
	}
	// Two uploads before a run: only the current one is imported, and the
	// older one never comes back (measured before the fix: "tuesday",
	// then "monday" on the next run).
	put(t, srv, bucket, "in/day.csv", []byte("monday"))
	put(t, srv, bucket, "in/day.csv", []byte("tuesday"))
	var mu sync.Mutex
	var imported []string
	imp := importerFunc(func(_ context.Context, f File, body io.Reader) error {
		b, err := io.ReadAll(body)
		mu.Lock()
		imported = append(imported, string(b))
		mu.Unlock()
		return err
	})
	r, err := NewRunner(testConnection(t, srv, bucket, "in/", "", nil), Options{Importer: imp})
	if err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 3; run++ {
		s := r.Run(t.Context())
		if !s.OK() || (run == 1 && s.Archived != 1) || (run > 1 && s.Listed != 0) {
			t.Fatalf("run %d: %+v", run, s)
		}
	}
	if !slices.Equal(imported, []string{"tuesday"}) {
		t.Errorf("imported %q, want only the current version, once", imported)
	}
	versions, err := srv.Root().ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("in/day.csv")})
	if err != nil {
		t.Fatal(err)
	}
	if len(versions.Versions) != 2 || len(versions.DeleteMarkers) != 1 || !aws.ToBool(versions.DeleteMarkers[0].IsLatest) {
		t.Errorf("inbox key has %d versions and %d delete markers, want both versions under one delete marker",
			len(versions.Versions), len(versions.DeleteMarkers))
	}
	got := keys(t, srv, bucket, "in/archive/")
	if len(got) != 1 || string(body(t, srv, bucket, got[0])) != "tuesday" {
		t.Errorf("archive/ holds %v", got)
	}
}

// A read from S3 that breaks off mid-body must not end in archive/, even
// when the importer swallows the error and reports success: the sink cannot
// hold the whole file. The file stays for the next run (I1, I4).
// cuttingProxy is a proxy in front of srv that answers the requests cut
// selects with MinIO's headers and half its body, then drops the
// connection: a connection reset mid-answer, which MinIO cannot be made to
// do. It is closed when the test ends.
func cuttingProxy(t *testing.T, srv *miniotest.Server, cut func(*http.Request) bool) *httptest.Server {
	t.Helper()
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !cut(r) {
			proxy.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		proxy.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes()[:rec.Body.Len()/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	t.Cleanup(hs.Close)
	return hs
}

func TestRunBrokenReadIsNeverASuccess(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "cut.csv", randomBody(256<<10))
	put(t, srv, bucket, "whole.csv", []byte("whole"))
	hs := cuttingProxy(t, srv, func(r *http.Request) bool {
		return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/cut.csv")
	})
	swallow := importerFunc(func(_ context.Context, _ File, body io.Reader) error {
		io.Copy(io.Discard, body) // error ignored: a careless sink
		return nil
	})
	r, err := NewRunner(testConnection(t, srv, bucket, "", hs.URL, nil), Options{Importer: swallow})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Run(t.Context())
	if s.Archived != 1 || s.Retry != 1 || s.Errored != 0 {
		t.Fatalf("summary %+v, want whole.csv archived and cut.csv left for retry", s)
	}
	if got := keys(t, srv, bucket, "cut.csv"); len(got) != 1 {
		t.Errorf("cut.csv left the inbox after a broken read: %v", got)
	}
}

// BenchmarkRunSmallFiles measures what one run costs this process per small
// file: 500 files of 4 KiB through the Discard importer with 16 workers,
// production logging (JSON at info, as `s3connector run` logs) and metrics.
// MinIO runs in a process of its own, so allocs-per-file and
// cpu-ms-per-file are the client's alone; the seeding of each run is left
// out of them.
//
//	go test -run '^$' -bench RunSmallFiles -benchtime 4x ./ingest
func BenchmarkRunSmallFiles(b *testing.B) {
	const files, base = 500, "inbox/"
	srv := needMinIO(b)
	bucket := minioBucket(b, srv)
	conn := testConnection(b, srv, bucket, base, "", func(c *config.Connection) { c.Name, c.Workers = "bench", 16 })
	m, err := metrics.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zap.InfoLevel))
	r, err := NewRunner(conn, Options{Importer: Discard{}, Metrics: m, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	content := randomBody(4 << 10)
	objects := make(map[string][]byte, files)
	for i := range files {
		objects[fmt.Sprintf("%s%04d/file-%04d.csv", base, i%10, i)] = content
	}
	var (
		mallocs uint64
		cpu     time.Duration
		ms      runtime.MemStats
		ru      syscall.Rusage
	)
	usage := func() time.Duration {
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	for b.Loop() {
		b.StopTimer()
		minioPut(b, srv, bucket, objects)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		m0, c0 := ms.Mallocs, usage()
		b.StartTimer()
		s := r.Run(b.Context())
		b.StopTimer()
		runtime.ReadMemStats(&ms)
		mallocs += ms.Mallocs - m0
		cpu += usage() - c0
		if !s.OK() || s.Archived != files {
			b.Fatalf("run: %s", s)
		}
		deleteUnder(b.Context(), b, srv, bucket, base+"archive/")
		b.StartTimer()
	}
	n := float64(b.N * files)
	b.ReportMetric(float64(mallocs)/n, "allocs/file")
	b.ReportMetric(cpu.Seconds()*1e3/n, "cpu-ms/file")
}

// TestFileLog: every line about a file carries its key, as a logger made
// With the key would; a level that is off costs no allocation.
func TestFileLog(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	l := fileLog{zap.New(core).With(zap.String("run_id", "r1")), "inbox/a b.csv"}
	l.Debug("not written", zap.String("to", "x"))
	l.Info("file vanished before it was read")
	l.Warn("cannot clear the file's state record", zap.Error(errors.New("boom")))
	got := logs.AllUntimed()
	if len(got) != 2 {
		t.Fatalf("%d lines logged, want 2: %v", len(got), got)
	}
	for _, e := range got {
		fields := e.ContextMap()
		if fields["key"] != "inbox/a b.csv" || fields["run_id"] != "r1" {
			t.Errorf("%q: fields %v, want key and run_id", e.Message, fields)
		}
	}
	if got[1].Level != zap.WarnLevel || got[1].ContextMap()["error"] != "boom" {
		t.Errorf("warning logged as %v with %v", got[1].Level, got[1].ContextMap())
	}
	if n := testing.AllocsPerRun(100, func() {
		fileLog{l.log, "inbox/b.csv"}.Debug("file archived", zap.String("to", "archive/b.csv"), zap.Int64("bytes", 4096))
	}); n != 0 {
		t.Errorf("a debug line at info level allocates %.0f times, want 0", n)
	}
}

package ingest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/metrics"
)

// imports returns how often key (the full key) was imported.
func (c *countingImporter) imports(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

// Versioning suspended: AWS answers GetObject with `x-amz-version-id: null`
// (MinIO does not, so the proxy adds it). The run must treat the object as
// unversioned: no request may name the version "null" (deleting
// VersionId=null would remove a re-upload made after our GET), and the
// delete is pinned to the ETag instead. Checked on the recorded requests.
func TestRunSuspendedVersioningNeverNamesTheNullVersion(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	for _, status := range []types.BucketVersioningStatus{types.BucketVersioningStatusEnabled, types.BucketVersioningStatusSuspended} {
		if _, err := srv.Root().PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{
			Bucket: aws.String(bucket), VersioningConfiguration: &types.VersioningConfiguration{Status: status},
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"in/a.csv", "in/b.csv", "in/c.csv"} {
		put(t, srv, bucket, k, []byte(k))
	}
	p := srv.NewProxy(t)
	p.RewriteHeader(func(r *http.Request, h http.Header) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.Set("X-Amz-Version-Id", "null")
		}
	})
	r, err := NewRunner(testConnection(t, srv, bucket, "in/", p.URL, nil), Options{Importer: Discard{}})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Archived != 3 || !s.OK() {
		t.Fatalf("summary %+v", s)
	}
	var deletes int
	for _, q := range p.Requests() {
		if strings.Contains(q.Query, "versionId") || strings.Contains(q.Header.Get("X-Amz-Copy-Source"), "versionId") || strings.Contains(q.Body, "<VersionId>") {
			t.Errorf("%s %s?%s names a version (copy source %q, body %q)", q.Method, q.Path, q.Query, q.Header.Get("X-Amz-Copy-Source"), q.Body)
		}
		switch {
		case q.Method == http.MethodDelete && strings.Contains(q.Path, "/in/") && !strings.Contains(q.Path, "/.s3connector/"):
			deletes++
			if q.Header.Get("If-Match") == "" {
				t.Errorf("DELETE %s without If-Match", q.Path)
			}
		case q.Method == http.MethodPost && strings.Contains(q.Query, "delete"):
			deletes += strings.Count(q.Body, "<Object>")
			if strings.Count(q.Body, "<Object>") != strings.Count(q.Body, "<ETag>") {
				t.Errorf("DeleteObjects entry without its ETag: %s", q.Body)
			}
		}
	}
	if deletes != 3 {
		t.Errorf("%d deletes of inbox files, want 3", deletes)
	}
}

// A delete denied after a complete import and copy (a bucket policy Deny,
// as Object Lock or an admin would refuse it; MinIO plays it with a Deny
// statement in the platform user's policy) must not make the file come
// back through the importer every run: the version is imported and copied
// once, reported as blocked (not as a failed run), and only its delete is
// tried again. When the block is lifted, the move finishes.
func TestRunBlockedDeleteIsNotImportedAgain(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "in/locked.csv", []byte("locked"))
	put(t, srv, bucket, "in/free.txt", []byte("free"))
	deny := connector.PolicyStatement{
		Sid: "DenyDelete", Effect: "Deny", Action: connector.StringOrList{"s3:DeleteObject"},
		Resource: connector.StringOrList{"arn:aws:s3:::" + bucket + "/in/*.csv"},
	}
	imp := &countingImporter{}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	conn := testConnectionWith(t, srv, bucket, "in/", "", nil, deny)
	// Runs 1 and 2 are minutes apart: run 2 leaves the blocked file out
	// until its next try. Runs 3 and 4 come after it and try the delete.
	start := time.Now()
	at := []time.Duration{0, time.Minute, DefaultStuckRetry + time.Minute, 2*DefaultStuckRetry + 2*time.Minute, 3*DefaultStuckRetry + 3*time.Minute}
	clock := func(run int) func() time.Time {
		return func() time.Time { return start.Add(at[run-1]).Add(time.Since(start)) }
	}
	for run := 1; run <= 4; run++ {
		r, err := NewRunner(conn, Options{Importer: imp, Now: clock(run), Metrics: m})
		if err != nil {
			t.Fatal(err)
		}
		s := r.Run(t.Context())
		if s.Blocked != 1 || !s.OK() {
			t.Fatalf("run %d: %+v, want locked.csv blocked and the run OK", run, s)
		}
		if run == 1 && (s.Archived != 1 || s.Imported != 2) {
			t.Fatalf("run 1: %+v, want free.txt archived and both imported", s)
		}
		if run > 1 && s.Imported != 0 {
			t.Fatalf("run %d imported %d files again", run, s.Imported)
		}
	}
	if n := imp.imports("in/locked.csv"); n != 1 {
		t.Errorf("locked.csv imported %d times, want once", n)
	}
	// Tried in runs 1, 3 and 4 (run 2 left it out until its next try);
	// blocked in every run's gauge, which the alert reads.
	if got := counter(t, reg, "s3connector_moves_blocked_total"); got != 3 {
		t.Errorf("s3connector_moves_blocked_total = %v, want 3", got)
	}
	if got := counter(t, reg, "s3connector_files_blocked"); got != 1 {
		t.Errorf("s3connector_files_blocked = %v, want 1", got)
	}
	if got := keys(t, srv, bucket, "in/archive/locked"); len(got) != 1 {
		t.Errorf("archive copies of locked.csv: %v, want one", got)
	}
	if got := keys(t, srv, bucket, "in/locked.csv"); len(got) != 1 {
		t.Fatalf("locked.csv left the inbox although its delete is denied: %v", got)
	}

	// The block is lifted (a connection whose user has the generated
	// policy only): the next try deletes it, nothing is imported again.
	r, err := NewRunner(testConnection(t, srv, bucket, "in/", "", nil), Options{Importer: imp, Now: clock(5)})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Archived != 1 || s.Imported != 0 || s.Blocked != 0 || !s.OK() {
		t.Fatalf("after the block was lifted: %+v", s)
	}
	if got := keys(t, srv, bucket, "in/"); len(got) != 2 || !strings.HasPrefix(got[0], "in/archive/") || !strings.HasPrefix(got[1], "in/archive/") {
		t.Errorf("bucket holds %v, want the two archived copies only (no record left)", got)
	}
	if n := imp.imports("in/locked.csv"); n != 1 {
		t.Errorf("locked.csv imported %d times, want once", n)
	}
}

// A copy that keeps being denied counts toward max_attempts like any
// failure; the file is imported once and, after the last attempt, moved to
// error/ with a report instead (archive/ denied, error/ allowed).
func TestRunBlockedCopyCountsTowardMaxAttempts(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "in/a.csv", []byte("a"))
	deny := connector.PolicyStatement{
		Sid: "DenyArchive", Effect: "Deny", Action: connector.StringOrList{"s3:PutObject"},
		Resource: connector.StringOrList{"arn:aws:s3:::" + bucket + "/in/archive/*"},
	}
	imp := &countingImporter{}
	conn := testConnectionWith(t, srv, bucket, "in/", "", func(c *config.Connection) { c.MaxAttempts = 2 }, deny)
	r, err := NewRunner(conn, Options{Importer: imp, StuckRetry: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	// A stuck_retry of 1 ns: every run tries the copy again.
	for run := 1; run <= 2; run++ {
		if s := r.Run(t.Context()); s.Blocked != 1 || s.Errored != 0 {
			t.Fatalf("run %d: %+v, want a.csv blocked", run, s)
		}
	}
	s := r.Run(t.Context())
	if s.Errored != 1 || s.Blocked != 0 || !s.OK() {
		t.Fatalf("run 3: %+v, want a.csv in error/", s)
	}
	if n := imp.imports("in/a.csv"); n != 1 {
		t.Errorf("a.csv imported %d times, want once", n)
	}
	var report archive.Report
	for _, k := range keys(t, srv, bucket, "in/error/") {
		if strings.HasSuffix(k, archive.ReportSuffix) {
			if err := json.Unmarshal(body(t, srv, bucket, k), &report); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !strings.Contains(report.Reason, "archiving it failed 2 times") {
		t.Errorf("report reason %q", report.Reason)
	}
	if got := keys(t, srv, bucket, "in/a.csv"); len(got) != 0 {
		t.Error("a.csv still in the inbox")
	}
}

// An object in an archive storage class answers GetObject with 403
// InvalidObjectState on AWS (MinIO has no such class: the proxy answers as
// AWS does). It is skipped, not retried as an access problem: the run is
// OK, the next runs leave it out until its next try without another GET,
// and with max_files it does not starve the files after it.
func TestRunSkipsArchivedObjectsWithoutStarvingOthers(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "in/a-glacier.csv", []byte("frozen"))
	put(t, srv, bucket, "in/b.csv", []byte("b"))
	put(t, srv, bucket, "in/c.csv", []byte("c"))
	p := srv.NewProxy(t)
	var glacierGets atomic.Int32
	p.Answer(func(r *http.Request) (int, string, bool) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/a-glacier.csv") {
			glacierGets.Add(1)
			return http.StatusForbidden, "<Error><Code>InvalidObjectState</Code><Message>The operation is not valid for the object's storage class</Message><StorageClass>GLACIER</StorageClass></Error>", true
		}
		return 0, "", false
	})
	imp := &countingImporter{}
	conn := testConnection(t, srv, bucket, "in/", p.URL, func(c *config.Connection) { c.MaxFiles = 1 })
	r, err := NewRunner(conn, Options{Importer: imp})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Run(t.Context())
	if s.Skipped != 1 || s.Archived != 0 || !s.OK() {
		t.Fatalf("run 1: %+v, want the glacier object skipped and the run OK", s)
	}
	for run := 2; run <= 3; run++ {
		s := r.Run(t.Context())
		if s.Skipped != 1 || s.Archived != 1 || !s.OK() {
			t.Fatalf("run %d: %+v, want one file archived past the skipped one", run, s)
		}
	}
	if n := glacierGets.Load(); n != 1 {
		t.Errorf("%d GETs of the glacier object, want 1 (left out until its next try)", n)
	}
	if imp.imports("in/b.csv") != 1 || imp.imports("in/c.csv") != 1 || imp.imports("in/a-glacier.csv") != 0 {
		t.Errorf("imports %v", imp.n)
	}
	if got := keys(t, srv, bucket, "in/a-glacier.csv"); len(got) != 1 {
		t.Error("the glacier object left the inbox")
	}
}

package ingest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3connector/s3connector/connector"
)

func TestFileRecordMatches(t *testing.T) {
	listed := time.Date(2026, 11, 22, 10, 49, 10, 0, time.UTC)
	file := File{ETag: `"e1"`, LastModified: listed}
	tests := []struct {
		name string
		rec  fileRecord
		f    File
		want bool
	}{
		{"same version", fileRecord{ETag: `"e1"`, Modified: listed}, file, true},
		{"same instant, other zone", fileRecord{ETag: `"e1"`, Modified: listed.In(time.FixedZone("CET", 3600))}, file, true},
		{"other ETag", fileRecord{ETag: `"e2"`, Modified: listed}, file, false},
		// A re-upload of the same bytes: same ETag, later LastModified.
		{"same bytes uploaded again", fileRecord{ETag: `"e1"`, Modified: listed}, File{ETag: `"e1"`, LastModified: listed.Add(time.Second)}, false},
		// Written by an older release: no LastModified, matched on the
		// ETag alone as it was then.
		{"old record", fileRecord{ETag: `"e1"`}, file, true},
		{"old record, other ETag", fileRecord{ETag: `"e2"`}, file, false},
		// Version ids: compared when both are known; a listed file has
		// none, and "null" is no version of its own.
		{"same version id", fileRecord{ETag: `"e1"`, Modified: listed, VersionID: "v1"}, File{ETag: `"e1"`, LastModified: listed, VersionID: "v1"}, true},
		{"other version id", fileRecord{ETag: `"e1"`, Modified: listed, VersionID: "v1"}, File{ETag: `"e1"`, LastModified: listed, VersionID: "v2"}, false},
		{"listed file, no version id", fileRecord{ETag: `"e1"`, Modified: listed, VersionID: "v1"}, file, true},
		{"null version", fileRecord{ETag: `"e1"`, Modified: listed, VersionID: "v1"}, File{ETag: `"e1"`, LastModified: listed, VersionID: "null"}, true},
	}
	for _, tt := range tests {
		if got := tt.rec.matches(tt.f); got != tt.want {
			t.Errorf("%s: matches = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// A version whose copy to archive/ succeeded but whose delete was denied
// has a record: the next run only sends the delete. If the customer then
// uploads the same bytes again (same ETag, a new LastModified, on a
// versioned bucket a new version id), that upload is another version: it
// must be imported and archived under its own name, not taken for the
// recorded one and merely deleted.
func TestRunSameBytesUploadedAgainAfterABlockedDeleteIsANewVersion(t *testing.T) {
	for _, versioned := range []bool{false, true} {
		name := "unversioned"
		if versioned {
			name = "versioned"
		}
		t.Run(name, func(t *testing.T) { testSameBytesUploadedAgain(t, versioned) })
	}
}

func testSameBytesUploadedAgain(t *testing.T, versioned bool) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	if versioned {
		if _, err := srv.Root().PutBucketVersioning(t.Context(), &s3.PutBucketVersioningInput{
			Bucket: &bucket, VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
		}); err != nil {
			t.Fatal(err)
		}
	}
	data := []byte("id,amount\n1,100\n")
	put(t, srv, bucket, "in/orders.csv", data)
	deny := connector.PolicyStatement{
		Sid: "DenyDelete", Effect: "Deny", Action: connector.StringOrList{"s3:DeleteObject"},
		Resource: connector.StringOrList{"arn:aws:s3:::" + bucket + "/in/orders.csv"},
	}
	imp := &countingImporter{}
	// A stuck_retry of 1 ns: the blocked file is tried again next run.
	opts := Options{Importer: imp, StuckRetry: time.Nanosecond}
	r, err := NewRunner(testConnectionWith(t, srv, bucket, "in/", "", nil, deny), opts)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Imported != 1 || s.Blocked != 1 {
		t.Fatalf("run 1: %+v, want orders.csv imported and its delete blocked", s)
	}
	if got := keys(t, srv, bucket, "in/archive/"); len(got) != 1 {
		t.Fatalf("archive after run 1: %v, want one copy", got)
	}

	// The same bytes again, a second later (AWS lists LastModified to
	// the second): same ETag, another version.
	time.Sleep(1100 * time.Millisecond)
	put(t, srv, bucket, "in/orders.csv", data)

	r, err = NewRunner(testConnection(t, srv, bucket, "in/", "", nil), opts)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Imported != 1 || s.Archived != 1 || s.Blocked != 0 || !s.OK() {
		t.Fatalf("run 2: %+v, want the new upload imported and archived", s)
	}
	if n := imp.imports("in/orders.csv"); n != 2 {
		t.Errorf("orders.csv imported %d times, want twice (once per upload)", n)
	}
	archived := keys(t, srv, bucket, "in/archive/")
	if len(archived) != 2 {
		t.Fatalf("archive: %v, want one copy per upload", archived)
	}
	for _, k := range archived {
		if got := body(t, srv, bucket, k); string(got) != string(data) {
			t.Errorf("%s holds %q", k, got)
		}
	}
	if got := keys(t, srv, bucket, "in/"); len(got) != 2 {
		t.Errorf("bucket holds %v, want the two archived copies only (inbox empty, no record left)", got)
	}
	if versioned {
		out, err := srv.Root().ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: &bucket, Prefix: aws.String("in/orders.csv")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Versions) != 2 || len(out.DeleteMarkers) != 1 {
			t.Errorf("orders.csv history: %d versions, %d delete markers; want both uploads under one delete marker", len(out.Versions), len(out.DeleteMarkers))
		}
	}
}

// A record written by a release that did not store LastModified still
// holds: its version is not imported again, only its move is finished.
func TestRunHonoursARecordWithoutLastModified(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "in/a.csv", []byte("a"))
	head, err := srv.Root().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("in/a.csv")})
	if err != nil {
		t.Fatal(err)
	}
	old := `{"etag":` + jsonString(aws.ToString(head.ETag)) + `,"attempts":1,"verdict":"archive","last_error":"the move failed"}`
	put(t, srv, bucket, "in/"+AttemptsFolder+"a.csv.json", []byte(old))

	imp := &countingImporter{}
	r, err := NewRunner(testConnection(t, srv, bucket, "in/", "", nil), Options{Importer: imp})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Archived != 1 || s.Imported != 0 || !s.OK() {
		t.Fatalf("run: %+v, want a.csv archived without a new import", s)
	}
	if n := imp.imports("in/a.csv"); n != 0 {
		t.Errorf("a.csv imported %d times, want none (its verdict was recorded)", n)
	}
	got := keys(t, srv, bucket, "in/")
	if len(got) != 1 || !strings.HasPrefix(got[0], "in/archive/a.") {
		t.Errorf("bucket holds %v, want a.csv's archived copy only", got)
	}
}

// An old record is stamped with the LastModified on its next write, so
// from then on it tells re-uploads apart like a new one.
func TestStateUpdateStampsAnOldRecord(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "in/a.csv", []byte("a"))
	st := newStateStore(srv.Root(), bucket, "in/", "")
	put(t, srv, bucket, st.key("a.csv"), []byte(`{"etag":"\"e1\"","attempts":1}`))
	ctx := context.Background()
	if err := st.load(ctx); err != nil {
		t.Fatal(err)
	}
	listed := time.Date(2026, 11, 22, 10, 49, 10, 0, time.UTC)
	f := File{Key: "in/a.csv", RelKey: "a.csv", ETag: `"e1"`, LastModified: listed, VersionID: "v1"}
	rec, err := st.fail(ctx, f, listed.Add(time.Minute), "sink unavailable", nil)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Attempts != 2 || !rec.Modified.Equal(listed) || rec.VersionID != "v1" {
		t.Fatalf("record after its next write: %+v, want attempt 2, stamped with the listed time and version", rec)
	}
	fresh := newStateStore(srv.Root(), bucket, "in/", "")
	if err := fresh.load(ctx); err != nil {
		t.Fatal(err)
	}
	again := f
	again.LastModified, again.VersionID = listed.Add(time.Second), ""
	if got, err := fresh.lookup(ctx, again); err != nil || got != nil {
		t.Errorf("lookup of a later upload of the same bytes = %+v, %v; want no record", got, err)
	}
	f.VersionID = ""
	if got, err := fresh.lookup(ctx, f); err != nil || got == nil || got.Attempts != 2 {
		t.Errorf("lookup of the recorded version = %+v, %v; want its record", got, err)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

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
	"time"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
)

// Every PutObject the connector sends carries a Content-MD5 that matches
// its body: the validation marker, the lease (taken and renewed), a state
// record and an error/ report. AWS refuses any upload without it (or a
// checksum header) on a bucket with a default Object Lock retention (see
// connector.ContentMD5); MinIO does not require it, so this is checked on
// the recorded requests.
func TestEveryPutObjectCarriesContentMD5(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "in/good.csv", []byte("good"))
	put(t, srv, bucket, "in/bad.csv", []byte("bad"))
	put(t, srv, bucket, "in/flaky.csv", []byte("flaky"))
	proxy := srv.NewProxy(t)
	conn := testConnection(t, srv, bucket, "in/", proxy.URL, func(c *config.Connection) { c.MaxAttempts = 3 })

	report, err := conn.Validate(t.Context())
	if err != nil || !report.OK() {
		t.Fatalf("validate: %v, %+v", err, report)
	}
	imp := importerFunc(func(ctx context.Context, f File, body io.Reader) error {
		io.Copy(io.Discard, body)
		switch f.RelKey {
		case "bad.csv":
			return Rejected("bad content", errors.New("bad"))
		case "flaky.csv":
			return errors.New("sink unavailable")
		}
		// Long enough for the lease (TTL 300 ms) to be renewed.
		time.Sleep(500 * time.Millisecond)
		return nil
	})
	r, err := NewRunner(conn, Options{Importer: imp, Lease: LeaseOptions{TTL: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Archived != 1 || s.Errored != 1 || s.Retry != 1 || s.Err != nil {
		t.Fatalf("run: %+v, want good.csv archived, bad.csv in error/, flaky.csv left for a retry", s)
	}

	kinds := map[string]int{}
	for _, p := range proxy.Requests() {
		// Uploads only: a copy is a PUT too, but uploads nothing.
		if p.Method != http.MethodPut || p.Header.Get("X-Amz-Copy-Source") != "" {
			continue
		}
		kind := "other"
		switch {
		case strings.HasSuffix(p.Path, "/in/"+LeaseKey):
			kind = "lease"
		case strings.Contains(p.Path, "/in/"+AttemptsFolder):
			kind = "state record"
		case strings.HasSuffix(p.Path, archive.ReportSuffix):
			kind = "error report"
		case strings.Contains(p.Path, "/in/"+connector.ArchiveFolder+".s3connector-validate-"):
			kind = "validation marker"
		}
		kinds[kind]++
		md5Header := p.Header.Get("Content-Md5")
		if md5Header == "" {
			t.Errorf("%s PUT %s has no Content-MD5", kind, p.Path)
			continue
		}
		sum := md5.Sum([]byte(p.Body))
		if want := base64.StdEncoding.EncodeToString(sum[:]); md5Header != want {
			t.Errorf("%s PUT %s: Content-MD5 %q, want %q (the MD5 of the %d bytes sent)", kind, p.Path, md5Header, want, len(p.Body))
		}
	}
	// The lease is taken, renewed at least once, and released (a DELETE).
	if kinds["lease"] < 2 || kinds["state record"] < 1 || kinds["error report"] != 1 || kinds["validation marker"] != 1 || kinds["other"] != 0 {
		t.Errorf("PUTs by kind %v, want the lease's (taken and renewed), a state record, one error report, one validation marker, and nothing else", kinds)
	}
}

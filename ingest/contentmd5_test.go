package ingest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
)

// putRecord is one PutObject as it crossed the wire.
type putRecord struct {
	path string
	md5  string // the Content-MD5 header, "" without one
	body []byte
}

// putRecorder is a reverse proxy in front of MinIO that keeps every PUT
// with its body (miniotest.Proxy keeps no upload bodies), so a test can
// compare each upload's Content-MD5 with the bytes it carried.
func putRecorder(t *testing.T, srv *miniotest.Server) (endpoint string, puts func() []putRecord) {
	t.Helper()
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var (
		mu  sync.Mutex
		all []putRecord
	)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A copy is a PUT too, but uploads nothing (x-amz-copy-source).
		if r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") == "" {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
			mu.Lock()
			all = append(all, putRecord{path: r.URL.Path, md5: r.Header.Get("Content-Md5"), body: b})
			mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	return hs.URL, func() []putRecord {
		mu.Lock()
		defer mu.Unlock()
		return append([]putRecord(nil), all...)
	}
}

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
	endpoint, puts := putRecorder(t, srv)
	conn := testConnection(t, srv, bucket, "in/", endpoint, func(c *config.Connection) { c.MaxAttempts = 3 })

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
	for _, p := range puts() {
		kind := "other"
		switch {
		case strings.HasSuffix(p.path, "/in/"+LeaseKey):
			kind = "lease"
		case strings.Contains(p.path, "/in/"+AttemptsFolder):
			kind = "state record"
		case strings.HasSuffix(p.path, archive.ReportSuffix):
			kind = "error report"
		case strings.Contains(p.path, "/in/"+connector.ArchiveFolder+".s3connector-validate-"):
			kind = "validation marker"
		}
		kinds[kind]++
		if p.md5 == "" {
			t.Errorf("%s PUT %s has no Content-MD5", kind, p.path)
			continue
		}
		sum := md5.Sum(p.body)
		if want := base64.StdEncoding.EncodeToString(sum[:]); p.md5 != want {
			t.Errorf("%s PUT %s: Content-MD5 %q, want %q (the MD5 of the %d bytes sent)", kind, p.path, p.md5, want, len(p.body))
		}
	}
	// The lease is taken, renewed at least once, and released (a DELETE).
	if kinds["lease"] < 2 || kinds["state record"] < 1 || kinds["error report"] != 1 || kinds["validation marker"] != 1 || kinds["other"] != 0 {
		t.Errorf("PUTs by kind %v, want the lease's (taken and renewed), a state record, one error report, one validation marker, and nothing else", kinds)
	}
}

package ingest

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/metrics"
)

// AWS's answers to a HEAD and a GET, without the key headers, of an object
// encrypted with a customer-provided key (SSE-C), and to a GET of one in an
// archive storage class. MinIO needs TLS for SSE-C and has no archive
// class, so the proxy answers as AWS does (HeadObject, GetObject, Amazon S3
// API Reference: a HEAD's error has no body, "a generic code, such as 400
// Bad Request").
const (
	sseCGetAnswer    = "<Error><Code>InvalidRequest</Code><Message>The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.</Message></Error>"
	archivedGetError = "<Error><Code>InvalidObjectState</Code><Message>The operation is not valid for the object's storage class</Message><StorageClass>DEEP_ARCHIVE</StorageClass></Error>"
)

// A file decided without its body (above max_file_size, or refused by the
// importer's precheck) is read with a HEAD before it is moved. A HEAD that
// answers a bare 400 is asked again with a 1-byte GET pinned to the listed
// ETag, whose answer says why: SSE-C or an archive storage class is skipped
// with the reason, as on the GET path (the run is OK, the file stays in the
// inbox, counted in s3connector_files_skipped_total, left out of the next
// run until its next try); a GET that succeeds leaves the 400 unexplained,
// and the file is tried again next run.
func TestRunHeadRefusedAsksWithARangedGet(t *testing.T) {
	tests := []struct {
		name string
		// edit makes the file one decided without its body.
		edit     func(*config.Connection)
		importer Importer
		// get is the proxy's answer to the GET ("": MinIO's own).
		getStatus int
		get       string
		reason    string // the skip reason; "" = not skipped (retried)
	}{
		{name: "SSE-C above max_file_size", edit: func(c *config.Connection) { c.MaxFileSize = 4 },
			importer: Discard{}, getStatus: http.StatusBadRequest, get: sseCGetAnswer, reason: metrics.SkipSSEC},
		{name: "archive storage class refused by the precheck",
			importer: &precheckImporter{precheck: func(f File) error {
				if strings.HasSuffix(f.Key, "/locked.csv") {
					return Rejected("cannot store it", errors.New("refused"))
				}
				return nil
			}},
			getStatus: http.StatusForbidden, get: archivedGetError, reason: metrics.SkipArchivedStorage},
		{name: "unexplained", edit: func(c *config.Connection) { c.MaxFileSize = 4 }, importer: Discard{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := needMinIO(t)
			bucket := minioBucket(t, srv)
			put(t, srv, bucket, "in/locked.csv", []byte("locked content"))
			etag := listedETag(t, srv, bucket, "in/locked.csv")
			p := srv.NewProxy(t)
			p.Answer(func(r *http.Request) (int, string, bool) {
				if !strings.HasSuffix(r.URL.Path, "/in/locked.csv") {
					return 0, "", false
				}
				switch {
				case r.Method == http.MethodHead:
					return http.StatusBadRequest, "", true
				case r.Method == http.MethodGet && tt.get != "":
					return tt.getStatus, tt.get, true
				}
				return 0, "", false
			})
			reg := prometheus.NewRegistry()
			m, err := metrics.New(reg)
			if err != nil {
				t.Fatal(err)
			}
			conn := testConnection(t, srv, bucket, "in/", p.URL, tt.edit)
			start := time.Now()
			at := time.Duration(0)
			r, err := NewRunner(conn, Options{Importer: tt.importer, Metrics: m, Now: func() time.Time { return start.Add(at).Add(time.Since(start)) }})
			if err != nil {
				t.Fatal(err)
			}
			s := r.Run(t.Context())
			if tt.reason == "" {
				if s.Retry != 1 || s.Skipped != 0 || s.OK() {
					t.Fatalf("summary %+v, want the file left for a retry", s)
				}
			} else if s.Skipped != 1 || s.Errored != 0 || s.Retry != 0 || !s.OK() {
				t.Fatalf("summary %+v, want the file skipped and the run OK", s)
			}
			var gets int
			for _, q := range p.Requests() {
				if q.Method != http.MethodGet || !strings.HasSuffix(q.Path, "/in/locked.csv") {
					continue
				}
				gets++
				if q.Header.Get("Range") != "bytes=0-0" || q.Header.Get("If-Match") != etag {
					t.Errorf("GET with Range %q, If-Match %q; want bytes=0-0 and the listed ETag %s", q.Header.Get("Range"), q.Header.Get("If-Match"), etag)
				}
			}
			if gets != 1 {
				t.Errorf("%d GETs of the file after its HEAD's 400, want 1", gets)
			}
			for _, k := range keys(t, srv, bucket, "in/") {
				if k != "in/locked.csv" && !strings.HasPrefix(k, "in/"+AttemptsFolder) {
					t.Errorf("the bucket holds %s; want the file in the inbox and nothing moved", k)
				}
			}
			if len(keys(t, srv, bucket, "in/locked.csv")) != 1 {
				t.Error("the file left the inbox")
			}
			if tt.reason == "" {
				return
			}
			if got := counter(t, reg, "s3connector_files_skipped_total"); got != 1 {
				t.Errorf("s3connector_files_skipped_total = %v, want 1", got)
			}
			// The next run leaves it out until its next try: no request for
			// it, still reported as skipped.
			at = time.Minute
			before := len(p.Requests())
			if s := r.Run(t.Context()); s.Skipped != 1 || !s.OK() {
				t.Fatalf("run 2: %+v, want the file still reported as skipped", s)
			}
			for _, q := range p.Requests()[before:] {
				if strings.HasSuffix(q.Path, "/in/locked.csv") {
					t.Errorf("run 2 sent %s %s before the file's next try", q.Method, q.Path)
				}
			}
		})
	}
}

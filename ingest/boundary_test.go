package ingest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector/miniotest"
	"github.com/s3connector/s3connector/metrics"
)

// bucketText is every key and every JSON object body under prefix: what
// the customer can read of our reports and records.
func bucketText(t *testing.T, srv *miniotest.Server, bucket, prefix string) string {
	t.Helper()
	var b strings.Builder
	for _, k := range keys(t, srv, bucket, prefix) {
		b.WriteString(k + "\n")
		if strings.HasSuffix(k, ".json") {
			b.Write(body(t, srv, bucket, k))
		}
	}
	return b.String()
}

// Reports and state records in the customer's bucket carry a reason code
// and a short sentence, never what a sink answered, a command's stderr, a
// host name or a local path; the daemon's log has all of it (issue: the
// trust boundary). Markers in an exec command's stderr and an http sink's
// bodies must show up in the log and nowhere in the bucket.
func TestRunReportsKeepSinkDetailOutOfTheBucket(t *testing.T) {
	srv := needMinIO(t)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch {
		case strings.HasSuffix(r.Header.Get("X-S3connector-Key"), "bad.csv") || strings.Contains(r.URL.RawQuery, "bad"):
			w.WriteHeader(http.StatusUnprocessableEntity)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, "MARKER-SINK-BODY internal-db.corp.example:5432 at /srv/secret/path")
	}))
	defer sink.Close()
	t.Setenv("S3C_TEST_SECRET", "MARKER-ENV-VALUE")
	for _, tc := range []struct {
		name    string
		imp     Importer
		markers []string
	}{
		{"exec", Exec{Command: []string{"sh", "-c", `cat >/dev/null; echo "MARKER-STDERR $PWD $S3CONNECTOR_KEY" >&2; case "$S3CONNECTOR_KEY" in *bad.csv) exit 65;; esac; exit 1`},
			Env: map[string]string{"TOKEN": "MARKER-ENV-VALUE"}}, []string{"MARKER-STDERR"}},
		{"http", &HTTP{URL: sink.URL + "/ingest?token=MARKER-URL-TOKEN", PermanentStatus: []int{422}}, []string{"MARKER-SINK-BODY"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := minioBucket(t, srv)
			put(t, srv, bucket, "in/bad.csv", []byte("bad"))
			put(t, srv, bucket, "in/flaky.csv", []byte("flaky"))
			core, logs := observer.New(zap.DebugLevel)
			imp := tc.imp
			if h, ok := imp.(*HTTP); ok {
				// The sink tells the files apart by the query.
				imp = importerFunc(func(ctx context.Context, f File, body io.Reader) error {
					c := *h
					if strings.HasSuffix(f.Key, "bad.csv") {
						c.URL += "&bad"
					}
					return c.Import(ctx, f, body)
				})
			}
			conn := testConnection(t, srv, bucket, "in/", "", func(c *config.Connection) { c.MaxAttempts = 1 })
			r, err := NewRunner(conn, Options{Importer: imp, Logger: zap.New(core)})
			if err != nil {
				t.Fatal(err)
			}
			if s := r.Run(t.Context()); s.Errored != 2 {
				t.Fatalf("summary %+v, want both files in error/", s)
			}
			text := bucketText(t, srv, bucket, "in/")
			for _, leak := range append(tc.markers, "MARKER-ENV-VALUE", "MARKER-URL-TOKEN", "127.0.0.1", "internal-db", "/srv/secret", "/tmp") {
				if strings.Contains(text, leak) {
					t.Errorf("the bucket shows %q:\n%s", leak, text)
				}
			}
			var log strings.Builder
			for _, e := range logs.All() {
				log.WriteString(e.Message)
				for _, f := range e.Context {
					if f.Interface != nil {
						if err, ok := f.Interface.(error); ok {
							log.WriteString(" " + err.Error())
						}
					}
					log.WriteString(" " + f.String)
				}
				log.WriteString("\n")
			}
			for _, m := range tc.markers {
				if !strings.Contains(log.String(), m) {
					t.Errorf("the log lacks %q, the detail an operator needs:\n%s", m, log.String())
				}
			}
			for _, want := range []string{`"reason_code": "rejected"`, `"reason_code": "gave_up"`} {
				if !strings.Contains(text, want) {
					t.Errorf("reports lack %s:\n%s", want, text)
				}
			}
		})
	}
}

// A panic in an importer is that file's permanent failure: recovered,
// logged with its stack, counted, the file in error/ with a report saying
// the importer crashed; the daemon and the other files go on.
func TestRunImporterPanicIsThatFilesFailure(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "in/boom.csv", []byte("boom"))
	put(t, srv, bucket, "in/fine.csv", []byte("fine"))
	core, logs := observer.New(zap.DebugLevel)
	imp := importerFunc(func(_ context.Context, f File, body io.Reader) error {
		io.Copy(io.Discard, body)
		if strings.HasSuffix(f.Key, "boom.csv") {
			var m map[string]int
			//lint:ignore SA5000 the runtime panic is the point of the test
			m["nil map"]++
		}
		return nil
	})
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(testConnection(t, srv, bucket, "in/", "", nil), Options{Importer: imp, Logger: zap.New(core), Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Run(t.Context())
	if s.Archived != 1 || s.Errored != 1 || !s.OK() {
		t.Fatalf("summary %+v, want fine.csv archived and boom.csv in error/", s)
	}
	if !strings.Contains(bucketText(t, srv, bucket, "in/error/"), `"reason_code": "importer_crashed"`) {
		t.Error("no importer_crashed report in error/")
	}
	panics := logs.FilterMessageSnippet("importer panicked").All()
	if len(panics) != 1 {
		t.Fatalf("%d panic log lines, want 1", len(panics))
	}
	var stack string
	for _, f := range panics[0].Context {
		if f.Key == "stack" {
			stack = string(f.Interface.([]byte))
		}
	}
	if !strings.Contains(stack, "boundary_test.go") {
		t.Errorf("the log's stack does not show where it panicked:\n%s", stack)
	}
	if got := counter(t, reg, "s3connector_importer_panics_total"); got != 1 {
		t.Errorf("s3connector_importer_panics_total = %v, want 1", got)
	}
}

// counter sums the samples of a counter (or gauge) family in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// A file above max_file_size goes to error/ with a report, unread: the
// importer never sees it and no GET is sent for it.
func TestRunMaxFileSizeSendsLargeFilesToErrorUnread(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "in/big.bin", randomBody(64<<10))
	put(t, srv, bucket, "in/small.bin", randomBody(1<<10))
	p := srv.NewProxy(t)
	imp := &countingImporter{}
	conn := testConnection(t, srv, bucket, "in/", p.URL, func(c *config.Connection) { c.MaxFileSize = 16 << 10 })
	r, err := NewRunner(conn, Options{Importer: imp})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Run(t.Context())
	if s.Archived != 1 || s.Errored != 1 || s.Imported != 1 || !s.OK() {
		t.Fatalf("summary %+v, want small.bin archived and big.bin in error/", s)
	}
	if imp.imports("in/big.bin") != 0 {
		t.Error("big.bin was imported")
	}
	for _, q := range p.Requests() {
		if q.Method == http.MethodGet && strings.HasSuffix(q.Path, "/big.bin") {
			t.Errorf("GET %s sent for a file above max_file_size", q.Path)
		}
	}
	text := bucketText(t, srv, bucket, "in/error/")
	if !strings.Contains(text, `"reason_code": "too_large"`) || !strings.Contains(text, "65536 bytes, more than the connection's max_file_size of 16384 bytes") {
		t.Errorf("error/ holds:\n%s", text)
	}
}

package ingest

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/metrics"
)

// A move whose copy is refused because the object cannot be read at all
// (an archive storage class: its HEAD answers, its CopyObject is 403
// InvalidObjectState on AWS; or SSE-C: 400 InvalidRequest without the
// key) is skipped with the reason, as a file the GET path cannot read:
// the run is OK (no NoSuccessfulRun alert over one file), the file stays
// in the inbox, counted in s3connector_files_skipped_total, and left out
// until its next try, without counting toward max_attempts. It is not
// imported again; once it is restored, its next try only moves it. MinIO
// has no archive class and needs TLS for SSE-C, so the proxy refuses the
// copies as AWS does.
func TestRunCopyOfAnUnreadableObjectIsSkipped(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*config.Connection)
		status int
		answer string
		reason string
		// to is where the file goes once the copies are allowed again.
		to string
	}{
		{name: "deep archive, imported", status: http.StatusForbidden, answer: archivedGetError,
			reason: metrics.SkipArchivedStorage, to: "in/archive/"},
		{name: "deep archive, above max_file_size", edit: func(c *config.Connection) { c.MaxFileSize = 4 },
			status: http.StatusForbidden, answer: archivedGetError, reason: metrics.SkipArchivedStorage, to: "in/error/"},
		{name: "SSE-C, imported", status: http.StatusBadRequest, answer: sseCGetAnswer,
			reason: metrics.SkipSSEC, to: "in/archive/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := needMinIO(t)
			bucket := minioBucket(t, srv)
			put(t, srv, bucket, "in/frozen.csv", []byte("frozen content"))
			p := srv.NewProxy(t)
			var refuse atomic.Bool
			refuse.Store(true)
			var copies atomic.Int32
			p.Answer(func(r *http.Request) (int, string, bool) {
				if r.Method == http.MethodPut && strings.Contains(r.Header.Get("X-Amz-Copy-Source"), "/in/frozen.csv") {
					copies.Add(1)
					if refuse.Load() {
						return tt.status, tt.answer, true
					}
				}
				return 0, "", false
			})
			reg := prometheus.NewRegistry()
			m, err := metrics.New(reg)
			if err != nil {
				t.Fatal(err)
			}
			imp := &countingImporter{}
			edit := func(c *config.Connection) {
				c.MaxAttempts = 1
				if tt.edit != nil {
					tt.edit(c)
				}
			}
			conn := testConnection(t, srv, bucket, "in/", p.URL, edit)
			start := time.Now()
			var at atomic.Int64
			clock := func() time.Time { return start.Add(time.Duration(at.Load())).Add(time.Since(start)) }
			r, err := NewRunner(conn, Options{Importer: imp, Metrics: m, Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			for run, offset := range []time.Duration{0, time.Minute, DefaultStuckRetry + time.Minute} {
				at.Store(int64(offset))
				s := r.Run(t.Context())
				if s.Skipped != 1 || s.Errored != 0 || s.Archived != 0 || s.Retry != 0 || !s.OK() {
					t.Fatalf("run %d: %+v, want the file skipped and the run OK", run+1, s)
				}
			}
			// Tried in runs 1 and 3: run 2 left it out until its next try.
			if n := copies.Load(); n != 2 {
				t.Errorf("%d copies of the file, want 2", n)
			}
			if got := counter(t, reg, "s3connector_files_skipped_total"); got != 3 {
				t.Errorf("s3connector_files_skipped_total = %v, want 3 (once a run)", got)
			}
			if got := counter(t, reg, "s3connector_files_skipped"); got != 1 {
				t.Errorf("s3connector_files_skipped = %v, want 1", got)
			}
			if got := keys(t, srv, bucket, "in/error/"); !onlyState(got) {
				t.Errorf("error/ holds %v, want nothing but state records (the report of a refused copy is removed)", got)
			}

			// Restored: the next try moves it, without importing it again.
			refuse.Store(false)
			at.Store(int64(2*DefaultStuckRetry + 2*time.Minute))
			s := r.Run(t.Context())
			if s.Skipped != 0 || s.Archived+s.Errored != 1 || s.Imported != 0 || !s.OK() {
				t.Fatalf("after the restore: %+v, want the file moved and nothing imported", s)
			}
			if got := keys(t, srv, bucket, tt.to+"frozen"); len(got) == 0 {
				t.Errorf("nothing under %s after the restore", tt.to)
			}
			if tt.edit == nil && imp.imports("in/frozen.csv") != 1 {
				t.Errorf("imported %d times, want once", imp.imports("in/frozen.csv"))
			}
			for _, k := range keys(t, srv, bucket, "in/") {
				if k == "in/frozen.csv" || strings.HasPrefix(k, "in/"+AttemptsFolder) {
					t.Errorf("%s left after the move", k)
				}
			}
		})
	}
}

// onlyState reports whether every key is a state record.
func onlyState(keys []string) bool {
	for _, k := range keys {
		if !strings.HasPrefix(k, "in/"+AttemptsFolder) {
			return false
		}
	}
	return true
}

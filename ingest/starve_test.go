package ingest

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3connector/s3connector/config"
)

// With max_files, more stuck files than max_files (objects in an archive
// storage class: GetObject 403 InvalidObjectState on AWS, answered by the
// proxy as MinIO has no such class) at the start of the listing must not
// starve the files after them, even when every run comes after their
// retry time (stuck_retry), so that all of them are due again each time:
// due stuck files take at most half of max_files while the listing goes
// on, and every run takes new files in the rest. Once the new files are
// done, the stuck files still get their tries (the room left after the
// listing, longest overdue first), every one of them in turn.
func TestRunStuckFilesDueForRetryDoNotStarveNewOnes(t *testing.T) {
	tests := []struct {
		maxFiles, stuck, good int
	}{
		{maxFiles: 2, stuck: 5, good: 3},
		{maxFiles: 1, stuck: 3, good: 2},
		{maxFiles: 4, stuck: 9, good: 5},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("max_files %d, %d stuck, %d new", tt.maxFiles, tt.stuck, tt.good), func(t *testing.T) {
			srv := needMinIO(t)
			bucket := minioBucket(t, srv)
			for i := range tt.stuck {
				put(t, srv, bucket, fmt.Sprintf("in/a-glacier-%02d.csv", i), []byte("frozen"))
			}
			for i := range tt.good {
				put(t, srv, bucket, fmt.Sprintf("in/b-%02d.csv", i), []byte("good"))
			}
			p := srv.NewProxy(t)
			var (
				mu   sync.Mutex
				gets = map[string]int{}
			)
			p.Answer(func(r *http.Request) (int, string, bool) {
				if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/in/a-glacier-") {
					return 0, "", false
				}
				mu.Lock()
				gets[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]++
				mu.Unlock()
				return http.StatusForbidden, archivedGetError, true
			})
			imp := &countingImporter{}
			conn := testConnection(t, srv, bucket, "in/", p.URL, func(c *config.Connection) { c.MaxFiles = tt.maxFiles; c.Workers = 2 })
			start := time.Now()
			run := 0
			// Every run comes a stuck_retry and a minute after the one
			// before: every stuck file tried so far is due again.
			clock := func() time.Time {
				return start.Add(time.Duration(run) * (DefaultStuckRetry + time.Minute)).Add(time.Since(start))
			}
			r, err := NewRunner(conn, Options{Importer: imp, Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			// Each run takes at least ceil(max_files/2) files never seen
			// before (the first run max_files), until none is left.
			perRun := tt.maxFiles - tt.maxFiles/2
			runs := 1 + (tt.stuck+tt.good-tt.maxFiles+perRun-1)/perRun
			for ; run < runs; run++ {
				if s := r.Run(t.Context()); !s.OK() || s.Skipped < 1 {
					t.Fatalf("run %d: %+v", run+1, s)
				}
			}
			for i := range tt.good {
				if n := imp.imports(fmt.Sprintf("in/b-%02d.csv", i)); n != 1 {
					t.Errorf("after %d runs b-%02d.csv was imported %d times, want once: the stuck files starve it", runs, i, n)
				}
			}
			// No new file left: the stuck files take the room, each in
			// turn, whether or not it got the half of max_files before.
			for range tt.stuck {
				if s := r.Run(t.Context()); !s.OK() || s.Skipped != tt.stuck || s.Listed != min(tt.maxFiles, tt.stuck) {
					t.Fatalf("run %d: %+v, want %d stuck files tried and all %d reported as skipped", run+1, s, min(tt.maxFiles, tt.stuck), tt.stuck)
				}
				run++
			}
			mu.Lock()
			defer mu.Unlock()
			for i := range tt.stuck {
				if n := gets[fmt.Sprintf("a-glacier-%02d.csv", i)]; n < 2 {
					t.Errorf("a-glacier-%02d.csv was read %d times in %d runs, want its first try and at least one retry", i, n, run)
				}
			}
		})
	}
}

package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector/miniotest"
	"github.com/s3connector/s3connector/metrics"
)

// The tests below make the connector's own code panic on one key through
// Runner.testHook: nothing a real server or an importer does can (what a
// server's malformed answer can, the multipart test shows without it).

// panicRig is a runner over one bucket with a panic hook, a log observer,
// metrics and an importer that counts imports per key.
type panicRig struct {
	srv     *miniotest.Server
	bucket  string
	r       *Runner
	logs    *observer.ObservedLogs
	reg     *prometheus.Registry
	mu      sync.Mutex
	imports map[string]int
	// panics maps "point key" to how many more times it panics there
	// (-1: always); reached counts the hook's calls the same way.
	panics  map[string]int
	reached map[string]int
}

func newPanicRig(t *testing.T, endpoint string, edit func(*config.Connection), o Options) *panicRig {
	t.Helper()
	srv := needMinIO(t)
	rig := &panicRig{srv: srv, bucket: minioBucket(t, srv), imports: map[string]int{}, panics: map[string]int{}, reached: map[string]int{}}
	core, logs := observer.New(zap.DebugLevel)
	rig.logs = logs
	rig.reg = prometheus.NewRegistry()
	m, err := metrics.New(rig.reg)
	if err != nil {
		t.Fatal(err)
	}
	o.Logger, o.Metrics = zap.New(core), m
	o.Importer = importerFunc(func(_ context.Context, f File, body io.Reader) error {
		if _, err := io.Copy(io.Discard, body); err != nil {
			return err
		}
		rig.mu.Lock()
		rig.imports[f.Key]++
		rig.mu.Unlock()
		return nil
	})
	rig.r, err = NewRunner(testConnection(t, srv, rig.bucket, "in/", endpoint, edit), o)
	if err != nil {
		t.Fatal(err)
	}
	rig.r.testHook = func(point string, f File) {
		at := point + " " + f.Key
		rig.mu.Lock()
		rig.reached[at]++
		n := rig.panics[at]
		if n > 0 {
			rig.panics[at] = n - 1
		}
		rig.mu.Unlock()
		if n != 0 {
			panic("injected panic at " + at)
		}
	}
	return rig
}

func (rig *panicRig) panicAt(point, key string, times int) {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	rig.panics[point+" "+key] = times
}

func (rig *panicRig) count(m map[string]int, key string) int {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	return m[key]
}

// stack is the stack field of the first log line with message msg.
func (rig *panicRig) stack(t *testing.T, msg string) string {
	t.Helper()
	lines := rig.logs.FilterMessage(msg).All()
	if len(lines) == 0 {
		t.Fatalf("no log line %q", msg)
	}
	for _, f := range lines[0].Context {
		if f.Key == "stack" {
			return string(f.Interface.([]byte))
		}
	}
	t.Fatalf("log line %q has no stack", msg)
	return ""
}

// A panic in the connector's own processing of one file, before any
// move, is that file's failure: recovered, logged with its stack, counted
// apart from importer panics, and the file goes to error/ with a
// processing_crashed report; the other files and the daemon go on, and
// the next run does not meet the file again.
func TestRunProcessingPanicIsThatFilesFailure(t *testing.T) {
	rig := newPanicRig(t, "", nil, Options{})
	for _, k := range []string{"in/boom.csv", "in/fine1.csv", "in/fine2.csv"} {
		put(t, rig.srv, rig.bucket, k, []byte(k))
	}
	rig.panicAt("read", "in/boom.csv", -1)
	s := rig.r.Run(t.Context())
	if s.Archived != 2 || s.Errored != 1 || !s.OK() {
		t.Fatalf("summary %+v, want the fine files archived and boom.csv in error/", s)
	}
	if rig.count(rig.imports, "in/boom.csv") != 0 {
		t.Error("boom.csv was imported")
	}
	text := bucketText(t, rig.srv, rig.bucket, "in/error/")
	if !strings.Contains(text, `"reason_code": "processing_crashed"`) || !strings.Contains(text, reasonProcessingCrashed) {
		t.Errorf("no processing_crashed report in error/:\n%s", text)
	}
	if strings.Contains(text, "injected panic") || strings.Contains(text, "panic_test.go") {
		t.Errorf("the report carries the panic's detail:\n%s", text)
	}
	if stack := rig.stack(t, "processing the file panicked"); !strings.Contains(stack, "panic_test.go") {
		t.Errorf("the log's stack does not show where it panicked:\n%s", stack)
	}
	if got := counter(t, rig.reg, "s3connector_processing_panics_total"); got != 1 {
		t.Errorf("s3connector_processing_panics_total = %v, want 1", got)
	}
	if got := counter(t, rig.reg, "s3connector_importer_panics_total"); got != 0 {
		t.Errorf("s3connector_importer_panics_total = %v, want 0 (the importer did not panic)", got)
	}
	if s := rig.r.Run(t.Context()); s.Listed != 0 || !s.OK() {
		t.Errorf("second run %+v, want an empty inbox", s)
	}
	if n := rig.count(rig.reached, "read in/boom.csv"); n != 1 {
		t.Errorf("boom.csv was read %d times, want once", n)
	}
}

// When the move to error/ of a crashed file crashes too, the decision is
// already recorded: the next runs only retry the move, never read or
// import the file again, and once the move stops crashing the file is in
// error/ with its processing_crashed report.
func TestRunPanicMovingACrashedFileIsNotReadAgain(t *testing.T) {
	rig := newPanicRig(t, "", nil, Options{})
	put(t, rig.srv, rig.bucket, "in/boom.csv", []byte("boom"))
	put(t, rig.srv, rig.bucket, "in/fine.csv", []byte("fine"))
	rig.panicAt("read", "in/boom.csv", -1)
	rig.panicAt("move", "in/boom.csv", 2)
	for run := 1; run <= 2; run++ {
		s := rig.r.Run(t.Context())
		if s.Retry != 1 || s.Errored != 0 {
			t.Fatalf("run %d: summary %+v, want boom.csv left for retry", run, s)
		}
	}
	s := rig.r.Run(t.Context())
	if s.Errored != 1 || !s.OK() {
		t.Fatalf("third run: summary %+v, want boom.csv in error/", s)
	}
	if n := rig.count(rig.reached, "read in/boom.csv"); n != 1 {
		t.Errorf("boom.csv was read %d times, want once: the crash's verdict is kept", n)
	}
	if rig.count(rig.imports, "in/boom.csv") != 0 || rig.count(rig.imports, "in/fine.csv") != 1 {
		t.Errorf("imports %v", rig.imports)
	}
	if !strings.Contains(bucketText(t, rig.srv, rig.bucket, "in/error/"), `"reason_code": "processing_crashed"`) {
		t.Error("no processing_crashed report in error/")
	}
	if got := keys(t, rig.srv, rig.bucket, "in/error/.s3connector/attempts/"); len(got) != 0 {
		t.Errorf("state records left: %q", got)
	}
	// read, the move of run 1 (in the recovery), the move of run 2.
	if got := counter(t, rig.reg, "s3connector_processing_panics_total"); got != 3 {
		t.Errorf("s3connector_processing_panics_total = %v, want 3", got)
	}
}

// A panic finishing an imported file's pending move (its copy exists) is
// recorded as a failed delete: the next run only deletes the original,
// never imports the file again. The proxy refuses the first run's delete,
// so that the original is still in the inbox for the next run.
func TestRunPanicFinishingAMoveIsRecorded(t *testing.T) {
	srv := needMinIO(t)
	p := srv.NewProxy(t)
	rig := newPanicRig(t, p.URL, nil, Options{})
	put(t, srv, rig.bucket, "in/done.csv", []byte("done"))
	var refuseDeletes atomic.Bool
	refuseDeletes.Store(true)
	p.Answer(func(r *http.Request) (int, string, bool) {
		del := r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/in/done.csv") ||
			r.Method == http.MethodPost && r.URL.Query().Has("delete")
		return http.StatusForbidden, "<Error><Code>AccessDenied</Code><Message>injected</Message></Error>", del && refuseDeletes.Load()
	})
	rig.panicAt("finish", "in/done.csv", 1)
	s := rig.r.Run(t.Context())
	if s.Retry != 1 || s.Imported != 1 {
		t.Fatalf("summary %+v, want done.csv imported and its move left for retry", s)
	}
	rec := strings.Join(strings.Fields(string(body(t, srv, rig.bucket, "in/error/.s3connector/attempts/done.csv.json"))), "")
	for _, want := range []string{`"attempts":1`, `"verdict":"archive"`, `"copied":"in/archive/done.`, `"last_error":"theconnectorcrashedwhilemovingthefile"`} {
		if !strings.Contains(rec, want) {
			t.Errorf("state record lacks %s:\n%s", want, rec)
		}
	}
	if got := counter(t, rig.reg, "s3connector_processing_panics_total"); got != 1 {
		t.Errorf("s3connector_processing_panics_total = %v, want 1", got)
	}
	refuseDeletes.Store(false)
	if s := rig.r.Run(t.Context()); s.Archived != 1 || !s.OK() {
		t.Fatalf("second run %+v, want done.csv archived", s)
	}
	if n := rig.count(rig.imports, "in/done.csv"); n != 1 {
		t.Errorf("done.csv imported %d times, want once", n)
	}
	if got := keys(t, srv, rig.bucket, "in/done.csv"); len(got) != 0 {
		t.Errorf("done.csv still in the inbox: %q", got)
	}
	if got := keys(t, srv, rig.bucket, "in/archive/done."); len(got) != 1 {
		t.Errorf("archive holds %q, want one copy of done.csv", got)
	}
	if got := keys(t, srv, rig.bucket, "in/error/.s3connector/attempts/"); len(got) != 0 {
		t.Errorf("state records left: %q", got)
	}
}

// A panic in a ranged download's fetch goroutine would end the process;
// it is that file's failure instead (processing_crashed), while a large
// file next to it is downloaded in ranges and archived.
func TestRunRangedDownloadPanicIsThatFilesFailure(t *testing.T) {
	const threshold = 64 << 10
	rig := newPanicRig(t, "", func(c *config.Connection) { c.Workers = 2 },
		Options{ParallelDownloadThreshold: threshold, DownloadPartSize: threshold / 4, DownloadConcurrency: 3})
	big := randomBody(3 * threshold)
	put(t, rig.srv, rig.bucket, "in/boom.bin", big)
	put(t, rig.srv, rig.bucket, "in/fine.bin", big)
	rig.panicAt("range", "in/boom.bin", -1)
	s := rig.r.Run(t.Context())
	if s.Archived != 1 || s.Errored != 1 || !s.OK() {
		t.Fatalf("summary %+v, want fine.bin archived and boom.bin in error/", s)
	}
	if !strings.Contains(bucketText(t, rig.srv, rig.bucket, "in/error/"), `"reason_code": "processing_crashed"`) {
		t.Error("no processing_crashed report in error/")
	}
	if stack := rig.stack(t, "processing the file panicked"); !strings.Contains(stack, "panic_test.go") || !strings.Contains(stack, "safeFetch") {
		t.Errorf("the log's stack is not the fetch goroutine's:\n%s", stack)
	}
	if got := counter(t, rig.reg, "s3connector_processing_panics_total"); got != 1 {
		t.Errorf("s3connector_processing_panics_total = %v, want 1", got)
	}
	archived := keys(t, rig.srv, rig.bucket, "in/archive/")
	if len(archived) != 1 || !bytes.Equal(body(t, rig.srv, rig.bucket, archived[0]), big) {
		t.Errorf("archive holds %q, want fine.bin", archived)
	}
}

// A panic of a range fetch is a read error at that range's place, after
// every byte before it, carrying the fetch's stack; Close still waits for
// every fetch.
func TestRangedReaderPanickingFetchIsAReadError(t *testing.T) {
	data := randomBody(100)
	fetch := func(ctx context.Context, buf []byte, start, end int64) ([]byte, error) {
		if start == 60 {
			var parts map[int64][]byte
			//lint:ignore SA5000 the runtime panic is the point of the test
			parts[start] = buf
		}
		return data[start : end+1], nil
	}
	d := newRangedReader(context.Background(), io.NopCloser(bytes.NewReader(data[:20])), fetch, 20, 100, 2, nil)
	got, err := io.ReadAll(d)
	var pe *panicError
	if !errors.As(err, &pe) || !errors.Is(err, errProcessingPanic) || !bytes.Equal(got, data[:60]) {
		t.Fatalf("read %d bytes, err %v; want 60 bytes then the fetch's panic", len(got), err)
	}
	if !strings.Contains(string(pe.stack), "panic_test.go") {
		t.Errorf("the error's stack does not show the fetch:\n%s", pe.stack)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// A panic while listing (here in the lister's per-file hook) ends the run
// as a failed listing, not the process.
func TestRunListingPanicStopsTheRun(t *testing.T) {
	rig := newPanicRig(t, "", nil, Options{})
	put(t, rig.srv, rig.bucket, "in/boom.csv", []byte("boom"))
	rig.panicAt("list", "in/boom.csv", 1)
	s := rig.r.Run(t.Context())
	if s.Err == nil || !errors.Is(s.Err, errProcessingPanic) {
		t.Fatalf("summary %+v, want the run stopped by the listing's panic", s)
	}
	if got := counter(t, rig.reg, "s3connector_processing_panics_total"); got != 1 {
		t.Errorf("s3connector_processing_panics_total = %v, want 1", got)
	}
	if s := rig.r.Run(t.Context()); s.Archived != 1 || !s.OK() {
		t.Errorf("next run %+v, want boom.csv archived", s)
	}
}

// A part copy of a multipart move that panics (here on a malformed
// answer: a 200 without a CopyPartResult, which the SDK returns as a nil
// field) is that move's failure: the panic is logged with its stack and
// counted, the attempt is recorded, and the next run only moves the file,
// without importing it again.
func TestRunMultipartCopyPanicIsTheMovesFailure(t *testing.T) {
	srv := needMinIO(t)
	p := srv.NewProxy(t)
	rig := newPanicRig(t, p.URL, nil, Options{MultipartThreshold: 5 << 20, PartSize: archive.MinPartSize, ParallelDownloadThreshold: -1})
	data := randomBody(11 << 20)
	put(t, srv, rig.bucket, "in/big.bin", data)
	var malformed sync.Once
	p.Answer(func(r *http.Request) (int, string, bool) {
		ok := false
		if r.Method == http.MethodPut && r.URL.Query().Get("partNumber") == "2" && r.Header.Get("X-Amz-Copy-Source") != "" {
			malformed.Do(func() { ok = true })
		}
		return http.StatusOK, "", ok
	})
	s := rig.r.Run(t.Context())
	if s.Retry != 1 || s.Imported != 1 {
		t.Fatalf("summary %+v, want big.bin imported and its move left for retry", s)
	}
	if stack := rig.stack(t, "moving the file panicked"); !strings.Contains(stack, "multipart.go") {
		t.Errorf("the log's stack does not show the part copy:\n%s", stack)
	}
	if got := counter(t, rig.reg, "s3connector_processing_panics_total"); got != 1 {
		t.Errorf("s3connector_processing_panics_total = %v, want 1", got)
	}
	if s := rig.r.Run(t.Context()); s.Archived != 1 || !s.OK() {
		t.Fatalf("second run %+v, want big.bin archived", s)
	}
	if n := rig.count(rig.imports, "in/big.bin"); n != 1 {
		t.Errorf("big.bin imported %d times, want once", n)
	}
	archived := keys(t, srv, rig.bucket, "in/archive/")
	if len(archived) != 1 || !bytes.Equal(body(t, srv, rig.bucket, archived[0]), data) {
		t.Errorf("archive holds %q, want big.bin", archived)
	}
}

// A panic in the goroutine that renews the run's lease would end the
// whole process; it is that renewal's failure instead: logged with its
// stack and counted, and retried as any failed renewal while the lease is
// ours. Once it panics in every renewal until the lease expires, the lease
// is lost and the run stops taking new files (files in progress finish,
// the others stay in the inbox), as when renewals cannot reach S3.
func TestRunLeaseRenewalPanicIsThatRenewalsFailure(t *testing.T) {
	tests := []struct {
		name   string
		panics int // -1: every renewal
	}{
		{name: "once", panics: 1},
		{name: "every renewal", panics: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rig := newPanicRig(t, "", func(c *config.Connection) { c.Workers = 1 }, Options{Lease: LeaseOptions{TTL: 300 * time.Millisecond}})
			const n = 6
			for i := range n {
				put(t, rig.srv, rig.bucket, fmt.Sprintf("in/f%d.csv", i), []byte("x"))
			}
			// Each file takes longer than a renewal interval (TTL/3).
			inject := rig.r.testHook
			rig.r.testHook = func(point string, f File) {
				if point == "read" {
					time.Sleep(150 * time.Millisecond)
				}
				inject(point, f)
			}
			rig.panicAt("renew", "", tt.panics)
			s := rig.r.Run(t.Context())
			if tt.panics > 0 {
				if s.Archived != n || !s.OK() {
					t.Fatalf("summary %+v, want every file archived and the run OK", s)
				}
			} else {
				if !errors.Is(s.Err, ErrLeaseLost) || s.Archived == n {
					t.Fatalf("summary %+v, want the run stopped before the last files: lease lost", s)
				}
				inbox := len(keys(t, rig.srv, rig.bucket, "in/f"))
				if archived := len(keys(t, rig.srv, rig.bucket, "in/archive/")); archived != s.Archived || inbox+archived != n {
					t.Errorf("%d in the inbox and %d archived (summary %d), want %d in all", inbox, archived, s.Archived, n)
				}
			}
			if stack := rig.stack(t, "renewing the lease panicked"); !strings.Contains(stack, "renewSafely") {
				t.Errorf("the log's stack does not show the renewal:\n%s", stack)
			}
			got := counter(t, rig.reg, "s3connector_processing_panics_total")
			if (tt.panics > 0 && got != 1) || got < 1 {
				t.Errorf("s3connector_processing_panics_total = %v, want %d", got, max(tt.panics, 1))
			}
		})
	}
}

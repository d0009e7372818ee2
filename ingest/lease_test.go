package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector/miniotest"
)

// countingImporter counts imports per key, each taking delay.
type countingImporter struct {
	delay time.Duration
	mu    sync.Mutex
	n     map[string]int
	total atomic.Int64
}

func (c *countingImporter) Import(ctx context.Context, f File, body io.Reader) error {
	if _, err := io.Copy(io.Discard, body); err != nil {
		return err
	}
	select {
	case <-time.After(c.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[f.Key]++
	c.mu.Unlock()
	c.total.Add(1)
	return nil
}

// putLease writes a lease record as another process would (root client).
func putLease(t *testing.T, srv *miniotest.Server, bucket, base, holder string, expires time.Time) {
	t.Helper()
	b, err := json.Marshal(leaseRecord{Holder: holder, Connection: "acme", Acquired: expires.Add(-time.Hour), Renewed: expires.Add(-time.Minute), Expires: expires})
	if err != nil {
		t.Fatal(err)
	}
	put(t, srv, bucket, base+LeaseKey, b)
}

func leaseHolder(t *testing.T, srv *miniotest.Server, bucket, base string) (string, bool) {
	t.Helper()
	out, err := srv.Root().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(base + LeaseKey)})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) {
			return "", false
		}
		t.Fatal(err)
	}
	defer out.Body.Close()
	var rec leaseRecord
	if err := json.NewDecoder(out.Body).Decode(&rec); err != nil {
		t.Fatal(err)
	}
	return rec.Holder, true
}

// The lease object is in the customer's bucket: the holder id in it is
// random, never the host name or the process id; only the local log ties
// that id to the host and pid, so that ops can still tell who holds a
// lease.
func TestLeaseHolderNamesNoHost(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	put(t, srv, bucket, "f.csv", []byte("x"))
	var object []byte // the lease object as the run holds it
	imp := importerFunc(func(ctx context.Context, f File, body io.Reader) error {
		io.Copy(io.Discard, body)
		out, err := srv.Root().GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String(LeaseKey)})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		object, err = io.ReadAll(out.Body)
		return err
	})
	core, logs := observer.New(zap.InfoLevel)
	r, err := NewRunner(testConnection(t, srv, bucket, "", "", nil), Options{Importer: imp, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); !s.OK() || s.Archived != 1 {
		t.Fatalf("summary %+v", s)
	}

	var rec map[string]any
	if err := json.Unmarshal(object, &rec); err != nil {
		t.Fatalf("lease object %q: %v", object, err)
	}
	if got, want := slices.Sorted(maps.Keys(rec)), []string{"acquired", "connection", "expires", "holder", "renewed"}; !slices.Equal(got, want) {
		t.Errorf("lease object has fields %q, want %q", got, want)
	}
	holder, _ := rec["holder"].(string)
	if !regexp.MustCompile(`^s3connector-[0-9a-f]{16}/[0-9a-f]{12}$`).MatchString(holder) {
		t.Errorf("holder %q is not a random id", holder)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	// A host name of hex digits alone could turn up in the random id by
	// chance; the format check above covers it.
	if strings.Trim(host, "0123456789abcdef") != "" && strings.Contains(string(object), host) {
		t.Errorf("the lease object names the host %q: %s", host, object)
	}
	if strings.Contains(string(object), "pid") {
		t.Errorf("the lease object names the process: %s", object)
	}

	took := logs.FilterMessage("took the connection's lease").All()
	if len(took) != 1 {
		t.Fatalf("%d log lines say the lease was taken, want 1", len(took))
	}
	fields := took[0].ContextMap()
	if fields["lease_holder"] != holder || fields["host"] != host || fields["pid"] != int64(os.Getpid()) || fields["connection"] != "acme" {
		t.Errorf("log fields %v, want lease_holder %s, host %s, pid %d", fields, holder, host, os.Getpid())
	}
	if other := HolderID(); other == holder || !strings.HasPrefix(other, holder[:strings.Index(holder, "/")+1]) {
		t.Errorf("another holder id of this process %q: want a different id with the same process prefix as %q", other, holder)
	}
}

// Two runners on one connection started together (two replicas, or `run
// --once` next to the daemon): one runs, the other is skipped with
// ErrLeaseHeld; every file is imported exactly once, round after round.
func TestLeaseTwoRunnersImportEachFileOnce(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	imp := &countingImporter{delay: 20 * time.Millisecond}
	var runners [2]*Runner
	for i := range runners {
		r, err := NewRunner(testConnection(t, srv, bucket, "in/", "", nil), Options{Importer: imp})
		if err != nil {
			t.Fatal(err)
		}
		runners[i] = r
	}
	const rounds, perRound = 3, 40
	for round := range rounds {
		for i := range perRound {
			put(t, srv, bucket, fmt.Sprintf("in/r%d/f%02d.csv", round, i), []byte(fmt.Sprint(round, i)))
		}
		var (
			sums  [2]Summary
			start = make(chan struct{})
			wg    sync.WaitGroup
		)
		for i, r := range runners {
			wg.Go(func() {
				<-start
				sums[i] = r.Run(t.Context())
			})
		}
		close(start)
		wg.Wait()
		ran, skipped := 0, 0
		for _, s := range sums {
			switch {
			case s.LeaseHeld():
				skipped++
				var held *LeaseHeldError
				if !errors.As(s.Err, &held) || held.Holder == "" || held.Connection != "acme" || held.Expires.IsZero() {
					t.Errorf("round %d: skipped run's error %v does not say who holds the lease", round, s.Err)
				}
				if s.Listed != 0 || s.Imported != 0 {
					t.Errorf("round %d: a skipped run touched files: %+v", round, s)
				}
			case s.OK():
				ran++
			default:
				t.Errorf("round %d: run %+v", round, s)
			}
		}
		// Both may run one after the other when the first is done before
		// the second starts; here the imports take far longer than that.
		if ran != 1 || skipped != 1 {
			t.Errorf("round %d: %d ran and %d were skipped, want 1 and 1", round, ran, skipped)
		}
		if _, held := leaseHolder(t, srv, bucket, "in/"); held {
			t.Errorf("round %d: the lease was not released", round)
		}
	}
	if got := imp.total.Load(); got != rounds*perRound {
		t.Errorf("%d imports, want %d", got, rounds*perRound)
	}
	for k, n := range imp.n {
		if n != 1 {
			t.Errorf("%s imported %d times", k, n)
		}
	}
	if left := inboxKeys(t, srv, bucket, "in/"); len(left) != 0 {
		t.Errorf("inbox still holds %v", left)
	}
}

func inboxKeys(t *testing.T, srv *miniotest.Server, bucket, base string) []string {
	t.Helper()
	var out []string
	for _, k := range keys(t, srv, bucket, base) {
		if !strings.HasPrefix(k, base+"archive/") && !strings.HasPrefix(k, base+"error/") {
			out = append(out, k)
		}
	}
	return out
}

// A lease whose holder died is taken over once its expiry is past by more
// than the clock-skew allowance; within the allowance, or live, it is not.
func TestLeaseExpiredIsTakenOver(t *testing.T) {
	srv := needMinIO(t)
	tests := []struct {
		name    string
		expires time.Duration // from now
		ran     bool
	}{
		{"live", time.Minute, false},
		{"expired within the clock-skew allowance", -10 * time.Second, false},
		{"expired", -DefaultLeaseClockSkew - time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bucket := minioBucket(t, srv)
			put(t, srv, bucket, "f.csv", []byte("x"))
			putLease(t, srv, bucket, "", "dead-host/pid-1/000000000000", time.Now().Add(tt.expires))
			r, err := NewRunner(testConnection(t, srv, bucket, "", "", nil), Options{Importer: Discard{}})
			if err != nil {
				t.Fatal(err)
			}
			s := r.Run(t.Context())
			if !tt.ran {
				if !s.LeaseHeld() || !strings.Contains(s.Err.Error(), "connection acme is being processed by dead-host/pid-1/000000000000 (lease until ") {
					t.Fatalf("summary %+v, want skipped: lease held", s)
				}
				if holder, _ := leaseHolder(t, srv, bucket, ""); holder != "dead-host/pid-1/000000000000" {
					t.Errorf("the other holder's lease was replaced by %q", holder)
				}
				if len(inboxKeys(t, srv, bucket, "")) != 1 {
					t.Error("a skipped run moved the file")
				}
				return
			}
			if !s.OK() || s.Archived != 1 {
				t.Fatalf("summary %+v, want the expired lease taken over and the file archived", s)
			}
			if _, held := leaseHolder(t, srv, bucket, ""); held {
				t.Error("the lease taken over was not released")
			}
		})
	}
}

// A run whose renewal finds another holder's lease (someone took it over:
// a long pause made ours expire, say) starts no new file; the files in
// progress finish, nothing is half-moved, and the other holder's lease is
// left alone.
func TestLeaseLostStopsNewFiles(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	const n = 30
	for i := range n {
		put(t, srv, bucket, fmt.Sprintf("f%02d.csv", i), []byte(fmt.Sprint(i)))
	}
	var once sync.Once
	imp := importerFunc(func(ctx context.Context, f File, body io.Reader) error {
		io.Copy(io.Discard, body)
		once.Do(func() { putLease(t, srv, bucket, "", "thief/pid-2/000000000000", time.Now().Add(time.Hour)) })
		time.Sleep(50 * time.Millisecond)
		return nil
	})
	r, err := NewRunner(testConnection(t, srv, bucket, "", "", func(c *config.Connection) { c.Workers = 2 }),
		Options{Importer: imp, Lease: LeaseOptions{TTL: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Run(t.Context())
	if !errors.Is(s.Err, ErrLeaseLost) || !strings.Contains(s.Err.Error(), "taken over by thief/pid-2/000000000000") {
		t.Fatalf("summary %+v, want stopped: lease lost", s)
	}
	if s.Archived == 0 || s.Archived >= n {
		t.Errorf("%d archived, want some but not all %d", s.Archived, n)
	}
	inbox := map[string]bool{}
	for _, k := range inboxKeys(t, srv, bucket, "") {
		inbox[k] = true
	}
	archived := keys(t, srv, bucket, "archive/")
	for _, k := range archived {
		if rel := archivedRel(t, "", archive.Archive, k); inbox[rel] {
			t.Errorf("%s is both archived and in the inbox", rel)
		}
	}
	if len(inbox)+len(archived) != n || len(archived) != s.Archived {
		t.Errorf("%d in the inbox + %d archived (summary %d), want %d in all", len(inbox), len(archived), s.Archived, n)
	}
	if holder, _ := leaseHolder(t, srv, bucket, ""); holder != "thief/pid-2/000000000000" {
		t.Errorf("lease now held by %q: the losing run must not release someone else's lease", holder)
	}
}

// Renewals that cannot reach S3 until the lease expires lose it too: from
// then on another process may take it over. A proxy fails the renewals.
func TestLeaseUnrenewableIsLost(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	for i := range 20 {
		put(t, srv, bucket, fmt.Sprintf("f%02d.csv", i), []byte("x"))
	}
	rec := srv.NewProxy(t)
	var puts atomic.Int64
	rec.Answer(func(r *http.Request) (int, string, bool) {
		// The first PUT takes the lease; every renewal fails.
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, LeaseKey) && puts.Add(1) > 1 {
			return http.StatusInternalServerError, `<Error><Code>InternalError</Code><Message>injected</Message></Error>`, true
		}
		return 0, "", false
	})
	imp := importerFunc(func(ctx context.Context, f File, body io.Reader) error {
		io.Copy(io.Discard, body)
		time.Sleep(50 * time.Millisecond)
		return nil
	})
	r, err := NewRunner(testConnection(t, srv, bucket, "", rec.URL, func(c *config.Connection) { c.Workers = 1 }),
		Options{Importer: imp, Lease: LeaseOptions{TTL: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Run(t.Context())
	if !errors.Is(s.Err, ErrLeaseLost) || !strings.Contains(s.Err.Error(), "not renewed before it expired") {
		t.Fatalf("summary %+v, want stopped: lease not renewed", s)
	}
	if s.Archived == 0 || s.Archived >= 20 {
		t.Errorf("%d archived, want some but not all", s.Archived)
	}
}

// Release frees the lease at once: the next run, here or in another
// process, need not wait for it to expire; also on a versioned bucket,
// where the release leaves a delete marker and the next If-None-Match
// create must still succeed.
func TestLeaseReleaseFreesIt(t *testing.T) {
	srv := needMinIO(t)
	for _, versioned := range []bool{false, true} {
		t.Run(fmt.Sprintf("versioned=%v", versioned), func(t *testing.T) {
			bucket := minioBucket(t, srv)
			if versioned {
				if _, err := srv.Root().PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{
					Bucket:                  aws.String(bucket),
					VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
				}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 2 {
				put(t, srv, bucket, fmt.Sprintf("b/f%d.csv", i), []byte("x"))
				r, err := NewRunner(testConnection(t, srv, bucket, "b/", "", nil), Options{Importer: Discard{}})
				if err != nil {
					t.Fatal(err)
				}
				if s := r.Run(t.Context()); !s.OK() || s.Archived != 1 {
					t.Fatalf("run %d: %+v", i, s)
				}
				if _, held := leaseHolder(t, srv, bucket, "b/"); held {
					t.Fatalf("run %d did not release the lease", i)
				}
			}
		})
	}
}

// The lease object is renewed in place while a run goes on, and the
// release never deletes a lease that another holder took over (MinIO
// ignores If-Match on DeleteObject: the lease is read first).
func TestLeaseRenewAndReleaseOnMinIO(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	conn := testConnection(t, srv, bucket, "", "", nil)
	l := newLease(conn.S3(), bucket, "", miniotest.Region, "acme", LeaseOptions{TTL: time.Minute, Holder: "me"}, time.Now, zap.NewNop())
	if err := l.acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := l.etag
	if err := l.renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	if l.etag == first || l.etag == "" {
		t.Fatalf("renewal kept ETag %s", l.etag)
	}
	other := newLease(conn.S3(), bucket, "", miniotest.Region, "acme", LeaseOptions{TTL: time.Minute, Holder: "other"}, time.Now, zap.NewNop())
	if err := other.acquire(t.Context()); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("second acquire: %v, want ErrLeaseHeld", err)
	}
	// Someone else's lease replaces ours; our renewal finds out.
	putLease(t, srv, bucket, "", "thief", time.Now().Add(time.Hour))
	if err := l.renew(t.Context()); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("renewal after takeover: %v, want ErrLeaseLost", err)
	}
	if err := l.release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if holder, _ := leaseHolder(t, srv, bucket, ""); holder != "thief" {
		t.Fatalf("release deleted the new holder's lease (now %q)", holder)
	}
}

const conflict409 = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>ConditionalRequestConflict</Code><Message>A conflicting conditional operation is currently in progress against this resource. Please try again.</Message></Error>`

// The requests on the wire: create with If-None-Match: *, take over and
// renew with If-Match on the ETag read or last written, release with
// DeleteObject If-Match on our ETag (only AWS honours that one; MinIO
// ignores it). A 409 ConditionalRequestConflict, which AWS answers to a
// concurrent conditional request, is retried (injected by the proxy).
func TestLeaseRequestsOnTheWire(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	p := srv.NewProxy(t)
	var putConflicts, deleteConflicts atomic.Int64
	p.Answer(func(r *http.Request) (int, string, bool) {
		if !strings.HasSuffix(r.URL.Path, LeaseKey) {
			return 0, "", false
		}
		switch {
		case r.Method == http.MethodPut && r.Header.Get("If-Match") != "" && putConflicts.Add(1) == 1,
			r.Method == http.MethodDelete && deleteConflicts.Add(1) == 1:
			return http.StatusConflict, conflict409, true
		}
		return 0, "", false
	})
	conn := testConnection(t, srv, bucket, "base/", p.URL, nil)
	// An expired lease of a dead holder: taken over with If-Match.
	putLease(t, srv, bucket, "base/", "dead", time.Now().Add(-time.Hour))
	head, err := srv.Root().HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("base/" + LeaseKey)})
	if err != nil {
		t.Fatal(err)
	}
	deadETag := aws.ToString(head.ETag)

	l := newLease(conn.S3(), bucket, "base/", miniotest.Region, "acme", LeaseOptions{Holder: "me"}, time.Now, zap.NewNop())
	if err := l.acquire(t.Context()); err != nil {
		t.Fatal(err)
	}
	taken := l.etag
	if err := l.renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	renewed := l.etag
	if err := l.release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, held := leaseHolder(t, srv, bucket, "base/"); held {
		t.Fatal("lease not released")
	}

	var got []string
	for _, r := range p.Requests() {
		if !strings.HasSuffix(r.Path, LeaseKey) {
			continue
		}
		line := r.Method
		if v := r.Header.Get("If-None-Match"); v != "" {
			line += " If-None-Match=" + v
		}
		if v := r.Header.Get("If-Match"); v != "" {
			line += " If-Match=" + v
		}
		got = append(got, line)
	}
	want := []string{
		"PUT If-None-Match=*",        // create: it exists
		"GET",                        // read it: expired
		"PUT If-Match=" + deadETag,   // take over: 409 (injected)
		"PUT If-None-Match=*",        // start again: it exists
		"GET",                        // still expired
		"PUT If-Match=" + deadETag,   // taken over
		"PUT If-Match=" + taken,      // renewal
		"HEAD",                       // release: still ours?
		"DELETE If-Match=" + renewed, // 409 (injected)
		"DELETE If-Match=" + renewed, // released
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lease requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if taken == renewed {
		t.Errorf("the renewal kept ETag %s", taken)
	}
}

package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
	"github.com/s3connector/s3connector/ingest"
	"github.com/s3connector/s3connector/metrics"
)

func TestMain(m *testing.M) {
	code := m.Run()
	miniotest.CloseShared()
	os.Exit(code)
}

// recorder is an importer (an io.Closer) that records what happens to it.
// Its options: connection and generation name it; block makes Import wait
// for its context.
type recorder struct {
	t          *testing.T
	connection string
	generation int
	block      bool

	mu      sync.Mutex
	imports []string
	closes  int
	started int // Import calls, finished or not
}

func (r *recorder) Import(ctx context.Context, f ingest.File, body io.Reader) error {
	r.mu.Lock()
	r.started++
	if r.closes > 0 {
		r.t.Errorf("Import(%q) on the closed importer of %s (generation %d)", f.Key, r.connection, r.generation)
	}
	r.mu.Unlock()
	if r.block {
		<-ctx.Done()
		return ctx.Err()
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return err
	}
	r.mu.Lock()
	r.imports = append(r.imports, f.Key)
	r.mu.Unlock()
	return nil
}

func (r *recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closes++
	return nil
}

// began counts the Import calls, finished or not.
func (r *recorder) began() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.started
}

func (r *recorder) counts() (imports, closes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.imports), r.closes
}

// fixture is a MinIO bucket, a platform user whose policy is the generated
// permissions policy of the whole bucket (so connections may use any base
// path in it), and an importer environment holding the recorder type.
type fixture struct {
	t        *testing.T
	srv      *miniotest.Server
	bucket   string
	platform aws.Config
	env      *ingest.Environment
	reg      *prometheus.Registry
	metrics  *metrics.Metrics

	mu    sync.Mutex
	built []*recorder
	// failBuilds makes the next builds of a connection's importer fail.
	failBuilds map[string]int
	buildTimes map[string][]time.Time
}

const recorderType = "recorder"

func newFixture(t *testing.T, files ...string) *fixture {
	t.Helper()
	srv := miniotest.Shared(t)
	ctx := t.Context()
	f := &fixture{t: t, srv: srv, bucket: fmt.Sprintf("sup-%d", time.Now().UnixNano()%1_000_000_000),
		failBuilds: map[string]int{}, buildTimes: map[string][]time.Time{}}
	if err := srv.CreateBucket(ctx, f.bucket); err != nil {
		t.Fatal(err)
	}
	for _, k := range files {
		if err := srv.Put(ctx, f.bucket, k, []byte("content of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	policy, err := json.Marshal(connector.PermissionsPolicy(f.bucket, ""))
	if err != nil {
		t.Fatal(err)
	}
	user := "sup-" + f.bucket
	if err := srv.AddUser(ctx, user, user+"-secret", policy); err != nil {
		t.Fatal(err)
	}
	f.platform = aws.Config{
		Region:      miniotest.Region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(user, user+"-secret", "")),
		HTTPClient:  awshttp.NewBuildableClient(),
	}
	f.env = ingest.NewEnvironment()
	f.env.Register(recorderType, func(cfg config.Importer, _ ingest.Deps) (ingest.Importer, error) {
		conn, _ := cfg.Options["connection"].(string)
		gen, _ := cfg.Options["generation"].(int)
		block, _ := cfg.Options["block"].(bool)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.buildTimes[conn] = append(f.buildTimes[conn], time.Now())
		if f.failBuilds[conn] > 0 {
			f.failBuilds[conn]--
			return nil, errors.New("importer.options: the sink is not there yet")
		}
		r := &recorder{t: t, connection: conn, generation: gen, block: block}
		f.built = append(f.built, r)
		return r, nil
	})
	f.reg = prometheus.NewRegistry()
	if f.metrics, err = metrics.New(f.reg); err != nil {
		t.Fatal(err)
	}
	return f
}

// conn is an active connection of the fixture's bucket under basePath with
// a recorder importer of the given generation.
func (f *fixture) conn(name, basePath string, generation int) config.Connection {
	f.t.Helper()
	externalID, err := connector.NewExternalID()
	if err != nil {
		f.t.Fatal(err)
	}
	cfg := config.Config{Connections: []config.Connection{{
		Name: name, Status: config.StatusActive, AccountID: "123456789012",
		Bucket: f.bucket, Region: miniotest.Region, BasePath: basePath,
		ExternalID: externalID, Endpoint: f.srv.Endpoint, STSEndpoint: f.srv.Endpoint,
		Schedule: "@every 1h", Workers: 2,
		Importer: config.Importer{Type: recorderType, Options: map[string]any{"connection": name, "generation": generation}},
	}}}
	cfg.ApplyDefaults()
	return cfg.Connections[0]
}

func (f *fixture) options() Options {
	return Options{Platform: f.platform, Metrics: f.metrics, Environment: f.env}
}

// importers returns the recorders built for connection conn (and
// generation gen, unless 0).
func (f *fixture) importers(conn string, gen int) []*recorder {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*recorder
	for _, r := range f.built {
		if r.connection == conn && (gen == 0 || r.generation == gen) {
			out = append(out, r)
		}
	}
	return out
}

func (f *fixture) keys(prefix string) []string {
	f.t.Helper()
	k, err := f.srv.Keys(f.t.Context(), f.bucket, prefix)
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

// up is the connection's s3connector_connection_up, if it has the series.
func (f *fixture) up(conn string) (float64, bool) {
	f.t.Helper()
	families, err := f.reg.Gather()
	if err != nil {
		f.t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() != "s3connector_connection_up" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "connection" && l.GetValue() == conn {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// start runs s until the test ends, then requires Stop to have ended Run.
func start(t *testing.T, s *Supervisor) {
	t.Helper()
	ran := make(chan error, 1)
	go func() { ran <- s.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.Stop(ctx) //nolint:errcheck // the test checked what it needed
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("Run after Stop: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after Stop")
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func stateOf(t *testing.T, s *Supervisor, name string) State {
	t.Helper()
	st, ok := s.State(name)
	if !ok {
		t.Fatalf("connection %s is not supervised; states: %+v", name, s.States())
	}
	return st
}

func names(states []State) []string {
	var out []string
	for _, st := range states {
		out = append(out, st.Name())
	}
	return out
}

// Apply diffs the wanted set against the running one: an unchanged
// connection is not touched (same runner, same importer, no new run), a
// changed one gets a new runner (the old importer closed), a removed one
// is stopped (importer closed, metric series forgotten), an added one is
// validated and scheduled, and one that is not active is not supervised.
func TestApplyAddsChangesAndRemoves(t *testing.T) {
	f := newFixture(t, "a/in/1.csv", "b/in/1.csv", "c/in/1.csv", "d/in/1.csv", "e/in/1.csv")
	s := New(f.options())
	a, b, c, d := f.conn("a", "a/in/", 1), f.conn("b", "b/in/", 1), f.conn("c", "c/in/", 1), f.conn("d", "d/in/", 1)
	d.Status = config.StatusDraft
	const principal = "arn:aws:iam::049579744830:root"
	// Apply before Run: validated at once, scheduled only once Run starts.
	if err := s.Apply(principal, []config.Connection{a, b, c, d}); err != nil {
		t.Fatal(err)
	}
	if got := names(s.States()); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("supervised %v, want a b c (d is a draft)", got)
	}
	time.Sleep(time.Second)
	for _, st := range s.States() {
		if st.Phase == PhaseScheduled || st.LastRun != nil {
			t.Errorf("%s is %s before Run", st.Name(), st.Phase)
		}
	}
	start(t, s)
	for _, name := range []string{"a", "b", "c"} {
		waitFor(t, name+" scheduled and its file archived", func() bool {
			st, _ := s.State(name)
			return st.Ready() && st.LastRun != nil && st.LastRun.Archived == 1
		})
	}
	st := stateOf(t, s, "a")
	if st.NextRun.IsZero() || st.Reason != "" || st.LastRun.Waiting != 0 || !st.LastRun.OK || st.LastRun.Listed != 1 {
		t.Errorf("state of a after its first run: %+v, last run %+v", st, *st.LastRun)
	}
	if v, ok := f.up("c"); !ok || v != 1 {
		t.Errorf("connection_up of c = %v (%v), want 1", v, ok)
	}
	aSince, aRun := st.Since, st.LastRun.RunID

	// a unchanged, b changed, c removed, d still a draft, e added.
	b2, e := b, f.conn("e", "e/in/", 1)
	b2.Importer.Options = map[string]any{"connection": "b", "generation": 2}
	if err := s.Apply(principal, []config.Connection{a, b2, d, e}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "e scheduled and its file archived", func() bool {
		st, ok := s.State("e")
		return ok && st.Ready() && st.LastRun != nil && st.LastRun.Archived == 1
	})
	waitFor(t, "b's new importer scheduled", func() bool {
		st, _ := s.State("b")
		return st.Ready() && len(f.importers("b", 2)) == 1
	})
	waitFor(t, "b's first importer closed", func() bool { _, closes := f.importers("b", 1)[0].counts(); return closes == 1 })
	waitFor(t, "c's importer closed", func() bool { _, closes := f.importers("c", 1)[0].counts(); return closes == 1 })
	waitFor(t, "c's series forgotten", func() bool { _, ok := f.up("c"); return !ok })
	if got := names(s.States()); !slices.Equal(got, []string{"a", "b", "e"}) {
		t.Errorf("supervised %v after the second Apply, want a b e", got)
	}
	st = stateOf(t, s, "a")
	if st.Since != aSince || st.LastRun == nil || st.LastRun.RunID != aRun {
		t.Errorf("a was touched by an Apply that did not change it: since %v → %v, run %s → %+v", aSince, st.Since, aRun, st.LastRun)
	}
	if rs := f.importers("a", 0); len(rs) != 1 {
		t.Errorf("%d importers built for the unchanged a, want 1", len(rs))
	} else if imports, closes := rs[0].counts(); imports != 1 || closes != 0 {
		t.Errorf("a's importer: %d imports, %d closes, want 1 and 0", imports, closes)
	}
	if v, ok := f.up("a"); !ok || v != 1 {
		t.Errorf("connection_up of a = %v (%v), want 1", v, ok)
	}

	// A new principal restarts every connection (their trust policies name it).
	if err := s.Apply("arn:aws:iam::049579744830:role/platform", []config.Connection{a, b2, e}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a restarted under the new principal", func() bool {
		st, _ := s.State("a")
		return len(f.importers("a", 0)) == 2 && st.Ready()
	})

	// Stop retires every importer exactly once; Apply is refused afterwards.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	f.mu.Lock()
	built := slices.Clone(f.built)
	f.mu.Unlock()
	for _, r := range built {
		if _, closes := r.counts(); closes != 1 {
			t.Errorf("importer of %s (generation %d) closed %d times, want once", r.connection, r.generation, closes)
		}
	}
	if err := s.Apply(principal, []config.Connection{a}); !errors.Is(err, ErrStopped) {
		t.Errorf("Apply after Stop: %v, want ErrStopped", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// Apply refuses a set in which two connections share a name, and keeps
// the running set.
func TestApplyRefusesDuplicateNames(t *testing.T) {
	s := New(Options{})
	defer s.Stop(context.Background()) //nolint:errcheck
	c := config.Connection{Name: "a", Status: config.StatusDisabled}
	if err := s.Apply("p", []config.Connection{c}); err != nil {
		t.Fatal(err)
	}
	err := s.Apply("p", []config.Connection{c, c})
	if err == nil || !strings.Contains(err.Error(), `connection "a" is given twice`) {
		t.Errorf("Apply with a duplicate: %v", err)
	}
	if len(s.States()) != 0 {
		t.Errorf("states %+v, want none (a is disabled)", s.States())
	}
}

// A connection that cannot start (its importer cannot be built yet) is
// retried with doubling, jittered backoff bounded by BackoffMax, reported
// failing with the reason meanwhile, and scheduled once it can start.
func TestValidationBackoff(t *testing.T) {
	f := newFixture(t, "in/1.csv")
	o := f.options()
	o.BackoffMin, o.BackoffMax = 400*time.Millisecond, 1600*time.Millisecond
	s := New(o)
	start(t, s)
	const failures = 5
	f.mu.Lock()
	f.failBuilds["late"] = failures
	f.mu.Unlock()
	if err := s.Apply("arn:aws:iam::049579744830:root", []config.Connection{f.conn("late", "in/", 1)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first failed attempt", func() bool { return stateOf(t, s, "late").Phase == PhaseFailing })
	st := stateOf(t, s, "late")
	if want := "cannot start: connection \"late\": importer.options: the sink is not there yet"; st.Reason != want || st.Ready() {
		t.Errorf("failing state: reason %q ready %v, want %q", st.Reason, st.Ready(), want)
	}
	if v, ok := f.up("late"); !ok || v != 0 {
		t.Errorf("connection_up while failing = %v (%v), want 0", v, ok)
	}
	if n := len(f.keys("in/archive/")); n != 0 {
		t.Errorf("a failing connection archived %d files", n)
	}
	waitFor(t, "scheduled after the failures", func() bool {
		st := stateOf(t, s, "late")
		return st.Ready() && st.LastRun != nil && st.LastRun.Archived == 1
	})
	f.mu.Lock()
	times := slices.Clone(f.buildTimes["late"])
	f.mu.Unlock()
	if len(times) != failures+1 {
		t.Fatalf("%d attempts, want %d", len(times), failures+1)
	}
	// Attempt k waits min(BackoffMin·2^k, BackoffMax) with jitter: between
	// half of it and all of it (plus the time an attempt takes).
	backoff := o.BackoffMin
	for i := 1; i < len(times); i++ {
		gap := times[i].Sub(times[i-1])
		if gap < backoff/2 || gap > backoff+2*time.Second {
			t.Errorf("wait before attempt %d: %v, want within [%v, %v + an attempt]", i+1, gap, backoff/2, backoff)
		}
		backoff = min(backoff*2, o.BackoffMax)
	}
	if v, ok := f.up("late"); !ok || v != 1 {
		t.Errorf("connection_up once scheduled = %v (%v), want 1", v, ok)
	}
}

// A connection failing validation (the platform may not read the bucket)
// touches none of its files, says why with the advice's headline, builds
// and retires one importer per attempt, and is scheduled once an Apply
// fixes it.
func TestValidationFailureThenFixed(t *testing.T) {
	f := newFixture(t, "in/1.csv")
	o := f.options()
	o.BackoffMin, o.BackoffMax = 200*time.Millisecond, 400*time.Millisecond
	s := New(o)
	start(t, s)
	good := f.conn("acme", "in/", 1)
	broken := good
	broken.Bucket = f.bucket + "-not-ours"
	const principal = "arn:aws:iam::049579744830:root"
	if err := s.Apply(principal, []config.Connection{broken}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three failed attempts", func() bool { return len(f.importers("acme", 0)) >= 3 })
	st := stateOf(t, s, "acme")
	if st.Phase != PhaseFailing || st.Ready() || st.LastRun != nil || !st.NextRun.IsZero() {
		t.Errorf("state while failing: %+v", st)
	}
	// The bucket is reached through the role, and S3 denies it.
	if want := "Role assumption succeeds but S3 operations fail: "; !strings.HasPrefix(st.Reason, want) || !strings.Contains(st.Reason, broken.Bucket) {
		t.Errorf("reason %q, want the advice headline %q and the bucket", st.Reason, want)
	}
	if strings.Contains(st.Reason, broken.ExternalID) {
		t.Errorf("reason shows the External ID: %s", st.Reason)
	}
	if n := len(f.keys("in/archive/")); n != 0 {
		t.Errorf("a failing connection archived %d files", n)
	}
	if err := s.Apply(principal, []config.Connection{good}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fixed connection scheduled and its file archived", func() bool {
		st := stateOf(t, s, "acme")
		return st.Ready() && st.LastRun != nil && st.LastRun.Archived == 1
	})
	rs := f.importers("acme", 0)
	for _, r := range rs[:len(rs)-1] {
		if _, closes := r.counts(); closes != 1 {
			t.Errorf("importer of a failed attempt closed %d times, want once", closes)
		}
	}
	if _, closes := rs[len(rs)-1].counts(); closes != 0 {
		t.Errorf("the scheduled importer is closed")
	}
}

// Stop lets files in progress finish until its context is done, then
// cancels their runs (the file stays in the inbox) and says so.
func TestStopGrace(t *testing.T) {
	f := newFixture(t, "in/slow.csv")
	s := New(f.options())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(context.Background()) }()
	c := f.conn("slow", "in/", 1)
	c.Importer.Options["block"] = true
	if err := s.Apply("arn:aws:iam::049579744830:root", []config.Connection{c}); err != nil {
		t.Fatal(err)
	}
	// Running is set before the run has listed and handed out its file:
	// wait for the import itself, or Stop finds nothing started.
	waitFor(t, "the import to start", func() bool {
		rs := f.importers("slow", 0)
		return len(rs) == 1 && rs[0].began() > 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	began := time.Now()
	if err := s.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop past its grace: %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(began); took > 20*time.Second {
		t.Errorf("Stop took %v", took)
	}
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Stop")
	}
	if got := f.keys("in/"); !slices.Equal(got, []string{"in/slow.csv"}) {
		t.Errorf("bucket holds %v, want the file left in the inbox", got)
	}
	if rs := f.importers("slow", 0); len(rs) != 1 {
		t.Errorf("%d importers, want 1", len(rs))
	} else if _, closes := rs[0].counts(); closes != 1 {
		t.Errorf("importer closed %d times, want once", closes)
	}
}

// Cancelling Run's context stops at once and Run returns its error.
func TestRunContextStops(t *testing.T) {
	f := newFixture(t, "in/1.csv")
	s := New(f.options())
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	if err := s.Apply("arn:aws:iam::049579744830:root", []config.Connection{f.conn("acme", "in/", 1)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "scheduled", func() bool { return stateOf(t, s, "acme").Ready() })
	cancel()
	select {
	case err := <-ran:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	if err := s.Apply("arn:aws:iam::049579744830:root", nil); !errors.Is(err, ErrStopped) {
		t.Errorf("Apply after Run ended: %v, want ErrStopped", err)
	}
}

// Run after Stop returns at once and schedules nothing.
func TestRunAfterStop(t *testing.T) {
	s := New(Options{})
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after Stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run after Stop did not return")
	}
}

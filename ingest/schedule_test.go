package ingest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3connector/s3connector/metrics"
)

// A connection never runs twice at once: ticks that find its run going are
// skipped and counted; other connections keep their own schedule.
func TestSchedulerSkipsOverlappingTicks(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	s := NewScheduler(nil, m)
	var running, maxRunning, slowRuns, fastRuns atomic.Int64
	release := make(chan struct{})
	slow := func(ctx context.Context, _ <-chan struct{}) Summary {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			old := maxRunning.Load()
			if n <= old || maxRunning.CompareAndSwap(old, n) {
				break
			}
		}
		slowRuns.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return Summary{Connection: "slow"}
	}
	fast := func(context.Context, <-chan struct{}) Summary { fastRuns.Add(1); return Summary{Connection: "fast"} }
	if err := s.Add("slow", "@every 1s", slow); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("fast", "@every 1s", fast); err != nil {
		t.Fatal(err)
	}
	if err := s.Add("fast", "@every 1s", fast); err == nil {
		t.Error("a connection was scheduled twice")
	}
	if err := s.Add("bad", "every five minutes", fast); err == nil {
		t.Error("a bad schedule was accepted")
	}
	s.Start()
	// Wait (bounded) for two skipped ticks of the slow connection.
	skipped := func() float64 {
		return metricValue(t, reg, "s3connector_runs_skipped_total", "slow", "reason", metrics.RunSkipOverlap)
	}
	deadline := time.Now().Add(20 * time.Second)
	for skipped() < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := skipped(); got < 2 {
		t.Fatalf("skipped ticks = %v, want at least 2", got)
	}
	if slowRuns.Load() != 1 || maxRunning.Load() != 1 {
		t.Errorf("slow connection started %d runs, at most %d at once; want 1 and 1", slowRuns.Load(), maxRunning.Load())
	}
	if fastRuns.Load() < 2 {
		t.Errorf("fast connection ran %d times while slow was busy, want >= 2", fastRuns.Load())
	}
	states := s.States()
	if len(states) != 2 {
		t.Fatalf("states %+v", states)
	}
	for _, st := range states {
		if st.Next.IsZero() {
			t.Errorf("%s: no next run time", st.Name)
		}
		if st.Name == "slow" && !st.Running {
			t.Error("slow connection not reported running")
		}
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// Stop asks runs to stop taking files, lets them finish within the grace,
// then cancels them and waits.
func TestSchedulerStopGraceThenCancel(t *testing.T) {
	for _, tc := range []struct {
		name         string
		honoursStop  bool
		wantCanceled bool
	}{
		{"run stops within the grace", true, false},
		{"run ignores stop and is cancelled", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewScheduler(nil, nil)
			started := make(chan struct{})
			var canceled, finished atomic.Bool
			if err := s.Add("c", "@every 1h", func(ctx context.Context, stop <-chan struct{}) Summary {
				close(started)
				if tc.honoursStop {
					<-stop
				} else {
					<-ctx.Done()
					canceled.Store(true)
				}
				finished.Store(true)
				return Summary{}
			}); err != nil {
				t.Fatal(err)
			}
			s.Start()
			s.RunNow("c")
			<-started
			// Generous: the first case returns as soon as the run sees stop, and
			// a loaded -race run can take its time to get there.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := s.Stop(ctx)
			if tc.wantCanceled != (err != nil) {
				t.Errorf("Stop = %v", err)
			}
			if !finished.Load() {
				t.Error("Stop returned before the run finished")
			}
			if canceled.Load() != tc.wantCanceled {
				t.Errorf("run cancelled = %v, want %v", canceled.Load(), tc.wantCanceled)
			}
			s.RunNow("c") // after Stop: must not start
		})
	}
}

// Remove makes the connection's run in progress stop taking files (a
// connection disabled by a reload must not go on importing its backlog);
// the other connections' runs go on.
func TestSchedulerRemoveStopsItsRun(t *testing.T) {
	s := NewScheduler(nil, nil)
	started := map[string]chan struct{}{"gone": make(chan struct{}), "kept": make(chan struct{})}
	returned := map[string]chan struct{}{"gone": make(chan struct{}), "kept": make(chan struct{})}
	for name := range started {
		if err := s.Add(name, "@every 1h", func(ctx context.Context, stop <-chan struct{}) Summary {
			close(started[name])
			defer close(returned[name])
			select {
			case <-stop:
			case <-ctx.Done():
			}
			return Summary{Connection: name}
		}); err != nil {
			t.Fatal(err)
		}
	}
	s.Start()
	s.RunNow("gone")
	s.RunNow("kept")
	<-started["gone"]
	<-started["kept"]
	s.Remove("gone")
	select {
	case <-returned["gone"]:
	case <-time.After(10 * time.Second):
		t.Fatal("the removed connection's run did not stop")
	}
	select {
	case <-returned["kept"]:
		t.Fatal("removing one connection stopped another's run")
	case <-time.After(100 * time.Millisecond):
	}
	if _, ok := s.State("gone"); ok {
		t.Error("removed connection still listed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	<-returned["kept"]
}

// A connection changed by a reload is removed and added again: the new
// entry's RunNow waits for the old run instead of running beside it or
// being skipped.
func TestSchedulerRunNowWaitsForThePreviousRun(t *testing.T) {
	s := NewScheduler(nil, nil)
	release := make(chan struct{})
	var running, overlap atomic.Int64
	oldStarted, newStarted := make(chan struct{}), make(chan struct{})
	job := func(started chan struct{}, hold bool) Job {
		return func(context.Context, <-chan struct{}) Summary {
			if running.Add(1) > 1 {
				overlap.Add(1)
			}
			defer running.Add(-1)
			close(started)
			if hold {
				<-release // a file in progress that takes its time
			}
			return Summary{}
		}
	}
	if err := s.Add("c", "@every 1h", job(oldStarted, true)); err != nil {
		t.Fatal(err)
	}
	s.Start()
	s.RunNow("c")
	<-oldStarted
	s.Remove("c")
	if err := s.Add("c", "@every 1h", job(newStarted, false)); err != nil {
		t.Fatal(err)
	}
	s.RunNow("c")
	select {
	case <-newStarted:
		t.Fatal("the new run started while the old one was going")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	select {
	case <-newStarted:
	case <-time.After(10 * time.Second):
		t.Fatal("the new run did not start after the old one ended")
	}
	if overlap.Load() != 0 {
		t.Error("two runs of one connection overlapped")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// metricValue reads one series of a counter or gauge from reg: the one of
// connection whose other labels match the name, value pairs in more.
func metricValue(t *testing.T, reg *prometheus.Registry, name, connection string, more ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"connection": connection}
	for i := 0; i+1 < len(more); i += 2 {
		want[more[i]] = more[i+1]
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			matched := 0
			for _, l := range m.GetLabel() {
				v, ok := want[l.GetName()]
				if !ok {
					continue
				}
				if v != l.GetValue() {
					continue series
				}
				matched++
			}
			if matched != len(want) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// The scheduler exports each connection's next scheduled run whenever it
// (re)schedules it, and at every tick the run that came due, the next one
// and the run's start: the alerts compare the last success with them.
func TestSchedulerExportsRunTimes(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	s := NewScheduler(nil, m)
	const weekdays = "0 9 * * 1-5"
	if err := s.Add("weekdays", weekdays, func(context.Context, <-chan struct{}) Summary { return Summary{} }); err != nil {
		t.Fatal(err)
	}
	ran := make(chan struct{}, 1)
	often := func(context.Context, <-chan struct{}) Summary {
		select {
		case ran <- struct{}{}:
		default:
		}
		return Summary{}
	}
	if err := s.Add("often", "@every 1s", often); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	s.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
	}()
	sched, err := Parser.Parse(weekdays)
	if err != nil {
		t.Fatal(err)
	}
	// Scheduled before Start: exported by Start, in UTC like the cron.
	want := sched.Next(before.UTC())
	if got := metricValue(t, reg, "s3connector_next_run_timestamp_seconds", "weekdays"); got != float64(want.Unix()) {
		t.Errorf("weekdays next run = %v, want %v (%s)", got, want.Unix(), want)
	}
	if got := metricValue(t, reg, "s3connector_last_scheduled_run_timestamp_seconds", "weekdays"); got != 0 {
		t.Errorf("weekdays last scheduled run = %v before any tick, want none", got)
	}

	// Added while running: exported at once.
	if err := s.Add("late", weekdays, func(context.Context, <-chan struct{}) Summary { return Summary{} }); err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, reg, "s3connector_next_run_timestamp_seconds", "late"); got != float64(want.Unix()) {
		t.Errorf("late next run = %v, want %v", got, want.Unix())
	}

	// A tick: the run that came due, the next one a second later, and the
	// run's start. Ticks go on meanwhile, so read until one tick's values
	// are seen together.
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("the @every 1s connection did not run")
	}
	var due, next, started float64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		due = metricValue(t, reg, "s3connector_last_scheduled_run_timestamp_seconds", "often")
		next = metricValue(t, reg, "s3connector_next_run_timestamp_seconds", "often")
		started = metricValue(t, reg, "s3connector_last_run_start_timestamp_seconds", "often")
		if next-due == 1 && started >= due {
			break
		}
	}
	if due < float64(before.Unix()) || due > float64(time.Now().Unix()) {
		t.Errorf("often last scheduled run = %v, want between %v and now", due, before.Unix())
	}
	if next-due != 1 {
		t.Errorf("often next run %v - last scheduled run %v, want 1s", next, due)
	}
	if started < due {
		t.Errorf("often run started at %v, before it came due at %v", started, due)
	}
}

package ingest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/s3connector/s3connector/metrics"
)

// Job is one connection's scheduled work, normally Runner.RunUntil: it
// should start nothing new once stop is closed, and give up what is in
// progress when ctx is cancelled.
type Job func(ctx context.Context, stop <-chan struct{}) Summary

// Scheduler runs each connection on its own cron schedule (robfig/cron/v3
// syntax: five fields, descriptors such as @every 5m or @hourly, and an
// optional CRON_TZ= prefix). A connection never runs twice at once: a tick
// that finds the previous run still going is skipped and counted
// (s3connector_runs_skipped_total). Connections are independent of each
// other. Every tick, and every (re)scheduling, exports the connection's
// last and next scheduled run times for the alerts.
type Scheduler struct {
	cron    *cron.Cron
	log     *zap.Logger
	metrics *metrics.Metrics
	ctx     context.Context
	cancel  context.CancelFunc
	stop    chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	entries map[string]*entry
	// running holds one lock (a one-slot semaphore) per connection name,
	// kept across Remove and Add, so a connection changed by a reload never
	// runs twice at once.
	running map[string]chan struct{}
}

type entry struct {
	id cron.EntryID
	// removed is closed by Remove: a run in progress starts no new file.
	removed chan struct{}
	spec    string
	job     Job
	running chan struct{}
	busy    atomic.Bool // for States; running is the real guard
	last    Summary
	ran     bool
}

// Parser is the schedule syntax (the same as config validation's).
var Parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// NewScheduler returns a stopped scheduler; log and m may be nil.
func NewScheduler(log *zap.Logger, m *metrics.Metrics) *Scheduler {
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Scheduler{
		cron:    cron.New(cron.WithParser(Parser), cron.WithLocation(time.UTC)),
		log:     log,
		metrics: m,
		ctx:     ctx,
		cancel:  cancel,
		stop:    make(chan struct{}),
		entries: map[string]*entry{},
		running: map[string]chan struct{}{},
	}
}

// Add schedules job for the named connection.
func (s *Scheduler) Add(name, spec string, job Job) error {
	sched, err := Parser.Parse(spec)
	if err != nil {
		return fmt.Errorf("connection %q: schedule %q: %w", name, spec, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.entries[name]; dup {
		return fmt.Errorf("connection %q is already scheduled", name)
	}
	lock, ok := s.running[name]
	if !ok {
		lock = make(chan struct{}, 1)
		s.running[name] = lock
	}
	e := &entry{spec: spec, job: job, running: lock, removed: make(chan struct{})}
	e.id = s.cron.Schedule(sched, cron.FuncJob(func() { s.tick(name, e, false) }))
	s.entries[name] = e
	// Before Start the cron has not computed the next run yet; Start exports it.
	if next := s.cron.Entry(e.id).Next; !next.IsZero() {
		s.metrics.SetNextRun(name, next)
	}
	return nil
}

// Remove unschedules a connection. A run in progress starts no new file
// and returns once its files in progress are done, as on Stop but without
// a deadline; a connection added again under the same name waits for it.
func (s *Scheduler) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[name]; ok {
		s.cron.Remove(e.id)
		close(e.removed)
		delete(s.entries, name)
	}
}

// Idle returns a channel that is closed once no run of the named
// connection is going (at once if none is). After Remove, it tells when the
// removed connection's last run has ended.
func (s *Scheduler) Idle(name string) <-chan struct{} {
	ch := make(chan struct{})
	s.mu.Lock()
	sem := s.running[name]
	s.mu.Unlock()
	if sem == nil {
		close(ch)
		return ch
	}
	go func() {
		defer close(ch)
		sem <- struct{}{}
		<-sem
	}()
	return ch
}

// RunNow starts a run of the named connection outside its schedule (at
// start-up, say). It does not wait; the run does: if the connection's
// previous run (under an earlier configuration, say) is still going, it
// starts when that one ends, unless the scheduler stops or the connection
// is removed first.
func (s *Scheduler) RunNow(name string) {
	s.mu.Lock()
	e, ok := s.entries[name]
	s.mu.Unlock()
	if ok {
		go s.tick(name, e, true)
	}
}

// tick runs the connection once. A scheduled tick (wait false) that finds
// the previous run going is skipped and counted.
func (s *Scheduler) tick(name string, e *entry, wait bool) {
	if !wait {
		// The cron has moved the entry on before it serves this snapshot:
		// Prev is this tick's time, Next the one after.
		ce := s.cron.Entry(e.id)
		if !ce.Prev.IsZero() {
			s.metrics.SetLastScheduledRun(name, ce.Prev)
		}
		if !ce.Next.IsZero() {
			s.metrics.SetNextRun(name, ce.Next)
		}
	}
	if wait {
		select {
		case e.running <- struct{}{}:
		case <-s.stop:
			return
		case <-e.removed:
			return
		}
	} else {
		select {
		case e.running <- struct{}{}:
		default:
			s.log.Warn("previous run still going; tick skipped", zap.String("connection", name))
			s.metrics.RunSkipped(name, metrics.RunSkipOverlap)
			return
		}
	}
	defer func() { <-e.running }()
	s.mu.Lock()
	select {
	case <-s.stop:
		s.mu.Unlock()
		return
	case <-e.removed:
		s.mu.Unlock()
		return
	default:
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	e.busy.Store(true)
	defer e.busy.Store(false)
	s.metrics.RunStarted(name, time.Now())
	// The run stops taking files when the scheduler stops or the
	// connection is removed, whichever comes first.
	stop := make(chan struct{})
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		select {
		case <-s.stop:
		case <-e.removed:
		case <-ended:
			return
		}
		close(stop)
	}()
	sum := e.job(s.ctx, stop)
	s.mu.Lock()
	e.last, e.ran = sum, true
	s.mu.Unlock()
}

// Start begins scheduling.
func (s *Scheduler) Start() {
	s.cron.Start()
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, e := range s.entries {
		if next := s.cron.Entry(e.id).Next; !next.IsZero() {
			s.metrics.SetNextRun(name, next)
		}
	}
}

// Stop stops scheduling and asks the runs in progress to start no new
// file; files in progress may finish until ctx is done (the shutdown grace),
// then the runs are cancelled (moves already started still complete, see
// archive.Mover.Move) and Stop waits for them to return. It returns
// ctx.Err() if the grace ran out.
func (s *Scheduler) Stop(ctx context.Context) error {
	cronDone := s.cron.Stop()
	s.mu.Lock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); <-cronDone.Done(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
	<-done
	return err
}

// Interval is the time between the next two ticks of a schedule (for
// @every, exactly its interval).
func Interval(spec string, now time.Time) (time.Duration, error) {
	sched, err := Parser.Parse(spec)
	if err != nil {
		return 0, err
	}
	next := sched.Next(now)
	return sched.Next(next).Sub(next), nil
}

// State is a connection's schedule as seen now.
type State struct {
	Name    string
	Spec    string
	Running bool
	Next    time.Time
	// Last is the last finished run; zero when none has finished.
	Last    Summary
	HasLast bool
}

// States lists the scheduled connections.
func (s *Scheduler) States() []State {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]State, 0, len(s.entries))
	for name, e := range s.entries {
		out = append(out, State{Name: name, Spec: e.spec, Running: e.busy.Load(), Next: s.cron.Entry(e.id).Next, Last: e.last, HasLast: e.ran})
	}
	return out
}

// State returns one connection's state.
func (s *Scheduler) State(name string) (State, bool) {
	for _, st := range s.States() {
		if st.Name == name {
			return st, true
		}
	}
	return State{}, false
}

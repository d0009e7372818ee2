package ingest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/s3connector/s3connector/metrics"
)

// Job is one connection's scheduled work, normally Runner.Run.
type Job func(ctx context.Context) Summary

// Scheduler runs each connection on its own cron schedule (robfig/cron/v3
// syntax: five fields, descriptors such as @every 5m or @hourly, and an
// optional CRON_TZ= prefix). A connection never runs twice at once: a tick
// that finds the previous run still going is skipped and counted
// (s3connector_runs_skipped_total). Connections are independent of each
// other.
type Scheduler struct {
	cron    *cron.Cron
	log     *zap.Logger
	metrics *metrics.Metrics
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	id      cron.EntryID
	spec    string
	job     Job
	running sync.Mutex
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
		entries: map[string]*entry{},
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
	e := &entry{spec: spec, job: job}
	e.id = s.cron.Schedule(sched, cron.FuncJob(func() { s.tick(name, e) }))
	s.entries[name] = e
	return nil
}

// Remove unschedules a connection; a run in progress finishes.
func (s *Scheduler) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[name]; ok {
		s.cron.Remove(e.id)
		delete(s.entries, name)
	}
}

// RunNow starts a run of the named connection outside its schedule (at
// start-up, say), unless one is going. It does not wait.
func (s *Scheduler) RunNow(name string) {
	s.mu.Lock()
	e, ok := s.entries[name]
	s.mu.Unlock()
	if ok {
		go s.tick(name, e)
	}
}

func (s *Scheduler) tick(name string, e *entry) {
	if !e.running.TryLock() {
		s.log.Warn("previous run still going; tick skipped", zap.String("connection", name))
		if s.metrics != nil {
			s.metrics.RunSkipped(name)
		}
		return
	}
	defer e.running.Unlock()
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	sum := e.job(s.ctx)
	s.mu.Lock()
	e.last, e.ran = sum, true
	s.mu.Unlock()
}

// Start begins scheduling.
func (s *Scheduler) Start() { s.cron.Start() }

// Stop stops scheduling, cancels the runs in progress (their started moves
// still finish) and waits for them, or until ctx is done.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.cancel()
	s.mu.Unlock()
	cronDone := s.cron.Stop()
	done := make(chan struct{})
	go func() { s.wg.Wait(); <-cronDone.Done(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
		running := !e.running.TryLock()
		if !running {
			e.running.Unlock()
		}
		out = append(out, State{Name: name, Spec: e.spec, Running: running, Next: s.cron.Entry(e.id).Next, Last: e.last, HasLast: e.ran})
	}
	return out
}

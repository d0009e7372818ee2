// Package supervisor keeps a set of connections running: each active
// connection is validated (retried with backoff while it fails, none of
// its files touched meanwhile), then scheduled with ingest.Scheduler and
// run once at once. Apply changes the set live — connections added,
// changed or removed are started, restarted or stopped, the others are not
// touched — whether the set comes from the configuration file or from
// stored connections. States is what /status and /readyz show.
//
// Like Prometheus's scrape and rules managers it is wired by cmd: New,
// then Run in a goroutine of its own, Apply whenever the wanted set
// changes, Stop to end; every goroutine it starts has ended when Stop
// returns.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/zap"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/ingest"
	"github.com/s3connector/s3connector/metrics"
)

// Default validation retry backoff of a connection that fails validation.
const (
	DefaultBackoffMin = 5 * time.Second
	DefaultBackoffMax = 5 * time.Minute
)

// ErrStopped is returned by Apply after Stop.
var ErrStopped = errors.New("supervisor stopped")

// Options are a supervisor's dependencies.
type Options struct {
	// Platform is the platform's own AWS configuration (default credential
	// chain), from which each connection assumes its role.
	Platform aws.Config
	// Metrics may be nil (no metrics); Logger may be nil (no logs).
	Metrics *metrics.Metrics
	Logger  *zap.Logger
	// Environment builds the importers; nil is ingest.DefaultEnvironment().
	Environment *ingest.Environment
	// BackoffMin and BackoffMax bound the wait between two validation
	// attempts of a failing connection (doubling, with jitter); zero are
	// DefaultBackoffMin and DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Environment == nil {
		o.Environment = ingest.DefaultEnvironment()
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = DefaultBackoffMin
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = DefaultBackoffMax
	}
	o.BackoffMax = max(o.BackoffMax, o.BackoffMin)
	return o
}

// Supervisor supervises the connections last applied. Its methods may be
// called concurrently.
type Supervisor struct {
	o     Options
	log   *zap.Logger
	sched *ingest.Scheduler

	// ctx is the parent of every connection's context; Stop cancels it.
	ctx    context.Context
	cancel context.CancelFunc
	// started is closed by Run: validated connections wait for it before
	// they are scheduled.
	started   chan struct{}
	startOnce sync.Once
	stopOnce  sync.Once
	stopErr   error
	// stopped is closed once Stop has finished.
	stopped chan struct{}
	// wg counts every goroutine the supervisor starts (connection
	// supervisors, retirements, metric clean-ups).
	wg sync.WaitGroup

	mu        sync.Mutex
	halted    bool // Stop was called: Apply refuses
	principal string
	conns     map[string]*supervised
}

// supervised is one connection under the supervisor's care.
type supervised struct {
	cfg       config.Connection
	principal string
	cancel    context.CancelFunc
	// done is closed when the connection's supervising goroutine returns.
	done chan struct{}
	// runner is the scheduled runner, set under Supervisor.mu before done
	// is closed; retired once the connection stops.
	runner *Runner

	mu     sync.Mutex
	phase  string
	reason string
	since  time.Time
}

func (s *supervised) set(phase, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phase, s.reason, s.since = phase, reason, time.Now()
}

// New returns a supervisor with no connections; it schedules nothing
// before Run.
func New(o Options) *Supervisor {
	o = o.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Supervisor{
		o:       o,
		log:     o.Logger,
		sched:   ingest.NewScheduler(o.Logger, o.Metrics),
		ctx:     ctx,
		cancel:  cancel,
		started: make(chan struct{}),
		stopped: make(chan struct{}),
		conns:   map[string]*supervised{},
	}
}

// Run starts scheduling and blocks until Stop has finished, or until ctx
// is done, which stops at once (no grace: runs in progress are cancelled,
// their files stay in the inbox). When Run returns, every goroutine of the
// supervisor has ended. It returns ctx.Err() if ctx ended it, else nil.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if !s.halted { // after Stop, Run returns at once
		s.startOnce.Do(func() {
			s.sched.Start()
			close(s.started)
		})
	}
	s.mu.Unlock()
	select {
	case <-s.stopped:
		return nil
	case <-ctx.Done():
		now, cancel := context.WithCancel(context.Background())
		cancel()
		s.Stop(now) //nolint:errcheck // ctx.Err() says why
		return ctx.Err()
	}
}

// Stop stops every connection gracefully: no new validation, no new run
// and no new file; files in progress may finish until ctx is done (the
// shutdown grace), then their runs are cancelled (moves already started
// still complete). It waits for every goroutine and retires every runner,
// and returns ctx.Err() if the grace ran out. Later calls wait for the
// first one and return its result.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.halted = true
		s.cancel() // every connection's supervising goroutine
		conns := make([]*supervised, 0, len(s.conns))
		for _, c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		s.stopErr = s.sched.Stop(ctx)
		// No run is going now: retire the current connections' runners
		// once their supervising goroutines have returned; the stopped
		// connections' are retired by their own goroutines.
		for _, c := range conns {
			<-c.done
			c.runner.Retire()
		}
		s.wg.Wait()
		close(s.stopped)
	})
	<-s.stopped
	return s.stopErr
}

// Apply makes the supervised set exactly the active connections of conns
// (the others are ignored), whose trust policies name principal. A
// connection that is new is validated, then scheduled; one whose
// configuration changed (or every one, when principal changed) is stopped
// and started again; one no longer active is stopped, and its metric
// series are forgotten once its last run has ended. The others are not
// touched: their schedule and runs go on. A stopped connection's run in
// progress starts no new file and ends once its files in progress are
// done; its successor waits for it (never two runs of one connection at
// once).
//
// It refuses (and changes nothing) when two connections share a name, and
// after Stop (ErrStopped). The file's connections and stored ones go
// through the same Apply: pass them together.
func (s *Supervisor) Apply(principal string, conns []config.Connection) error {
	want := map[string]config.Connection{}
	for _, c := range conns {
		if _, dup := want[c.Name]; dup {
			return fmt.Errorf("connection %q is given twice", c.Name)
		}
		want[c.Name] = c
	}
	for name, c := range want {
		if c.Status != config.StatusActive {
			delete(want, name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.halted {
		return ErrStopped
	}
	principalChanged := s.principal != principal
	s.principal = principal
	for name, sv := range s.conns {
		c, keep := want[name]
		if keep && !principalChanged && reflect.DeepEqual(c, sv.cfg) {
			delete(want, name)
			continue
		}
		s.log.Info("connection stopped", zap.String("connection", name), zap.Bool("changed", keep))
		sv.cancel()
		s.sched.Remove(name)
		delete(s.conns, name)
		s.retireWhenIdle(name, sv)
		if !keep {
			s.forgetWhenIdle(name, sv)
		}
	}
	for name, c := range want {
		ctx, cancel := context.WithCancel(s.ctx)
		sv := &supervised{cfg: c, principal: principal, cancel: cancel, done: make(chan struct{})}
		sv.set(PhaseValidating, "")
		s.conns[name] = sv
		s.wg.Go(func() { s.supervise(ctx, sv) })
	}
	return nil
}

// retireWhenIdle retires sv's runner, if it got one, once its supervising
// goroutine has returned and the connection's last run has ended. Call it
// under s.mu after removing the connection from the scheduler: no run of
// it starts then.
func (s *Supervisor) retireWhenIdle(name string, sv *supervised) {
	idle := s.sched.Idle(name)
	s.wg.Go(func() {
		<-idle
		<-sv.done
		// sv.runner was set, if ever, before sv.done was closed.
		sv.runner.Retire()
	})
}

// forgetWhenIdle forgets a removed connection's metric series once its
// last run and its supervising goroutine have ended (they update metrics
// until then), unless a later Apply brought the connection back. Call it
// under s.mu.
func (s *Supervisor) forgetWhenIdle(name string, sv *supervised) {
	idle := s.sched.Idle(name)
	s.wg.Go(func() {
		<-idle
		<-sv.done
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, back := s.conns[name]; !back {
			s.o.Metrics.Forget(name)
		}
	})
}

// States lists the supervised connections by name.
func (s *Supervisor) States() []State {
	s.mu.Lock()
	conns := make([]*supervised, 0, len(s.conns))
	for _, sv := range s.conns {
		conns = append(conns, sv)
	}
	s.mu.Unlock()
	sort.Slice(conns, func(i, j int) bool { return conns[i].cfg.Name < conns[j].cfg.Name })
	sched := map[string]ingest.State{}
	for _, st := range s.sched.States() {
		sched[st.Name] = st
	}
	out := make([]State, 0, len(conns))
	for _, sv := range conns {
		sv.mu.Lock()
		st := State{Connection: sv.cfg, Phase: sv.phase, Since: sv.since, Reason: sv.reason}
		sv.mu.Unlock()
		if ss, ok := sched[sv.cfg.Name]; ok {
			st.Running, st.NextRun = ss.Running, ss.Next
			if ss.HasLast {
				st.LastRun = newRun(ss.Last)
			}
		}
		out = append(out, st)
	}
	return out
}

// State returns the named connection's state, if it is supervised.
func (s *Supervisor) State(name string) (State, bool) {
	for _, st := range s.States() {
		if st.Connection.Name == name {
			return st, true
		}
	}
	return State{}, false
}

package supervisor

import (
	"context"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"

	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/ingest"
)

// supervise validates a connection until it passes (with backoff), then
// schedules it and runs it once at once. It returns when ctx is cancelled
// (the connection was stopped) or once the connection is scheduled.
func (s *Supervisor) supervise(ctx context.Context, sv *supervised) {
	defer close(sv.done)
	runner := s.validate(ctx, sv)
	if runner == nil {
		return
	}
	c := sv.cfg
	log := s.log.With(zap.String("connection", c.Name))
	// Before Run nothing is scheduled.
	select {
	case <-s.started:
	case <-ctx.Done():
		runner.Retire()
		return
	}
	if iv, err := ingest.Interval(c.Schedule, time.Now()); err == nil {
		s.o.Metrics.SetScheduleInterval(c.Name, iv)
	}
	// Schedule only while this goroutine is current: an Apply that removed
	// or changed the connection in the meantime cancelled ctx under s.mu.
	s.mu.Lock()
	if ctx.Err() != nil {
		s.mu.Unlock()
		runner.Retire()
		return
	}
	err := s.sched.Add(c.Name, c.Schedule, runner.RunUntil)
	if err == nil {
		sv.runner = runner
	}
	s.mu.Unlock()
	if err != nil {
		runner.Retire()
		sv.set(PhaseFailing, err.Error())
		log.Error("cannot schedule", zap.Error(err))
		return
	}
	s.o.Metrics.SetUp(c.Name, true)
	sv.set(PhaseScheduled, "")
	log.Info("connection validated and scheduled", zap.String("schedule", c.Schedule))
	s.sched.RunNow(c.Name)
}

// validate builds the connection's runner and validates the connection
// until both succeed, waiting with doubling, jittered backoff between
// attempts; it returns the runner, or nil once ctx is cancelled.
func (s *Supervisor) validate(ctx context.Context, sv *supervised) *Runner {
	c := sv.cfg
	log := s.log.With(zap.String("connection", c.Name))
	backoff := s.o.BackoffMin
	for {
		// The runner is built inside the loop: what fails here (an import
		// directory not mounted yet, say) may pass on a later try.
		r, err := NewRunner(s.o, sv.principal, c)
		var reason string
		if err != nil {
			reason = "cannot start: " + err.Error()
		} else {
			conn := r.Connection()
			// A page's worth of counting (one or two LISTs, not ten): the
			// first run needs the check, not the number, and on an inbox of
			// millions ten pages delay it by seconds. A customer's Validate
			// (CLI, API) counts up to CountCap.
			report, verr := conn.Validate(ctx, connector.WithPlatform(s.o.Platform), connector.WithCountLimit(1000))
			if ctx.Err() != nil {
				r.Retire()
				return nil
			}
			if verr == nil && report.OK() {
				return r
			}
			r.Retire()
			reason = "validation failed"
			if verr != nil {
				reason = verr.Error()
			}
			if adv := conn.AdviceFor(verr); adv.Headline != "" {
				reason = adv.Headline + ": " + reason
			}
		}
		sv.set(PhaseFailing, reason)
		s.o.Metrics.SetUp(c.Name, false)
		wait := backoff/2 + rand.N(backoff/2+1)
		log.Error("connection failed validation; none of its files is touched until it passes", zap.String("reason", reason), zap.Duration("retry_in", wait))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(backoff*2, s.o.BackoffMax)
	}
}

package admin

import (
	"fmt"
	"net/http"
	"sync"
	"time"
)

// limiter bounds validations, each of which spends the platform's STS
// quota and the customer's S3 requests: one at a time per connection, at
// least interval apart per connection, and a token bucket (perMin, burst)
// for the whole API.
type limiter struct {
	now      func() time.Time
	interval time.Duration
	rate     float64 // tokens per second
	burst    float64

	mu       sync.Mutex
	tokens   float64
	last     time.Time
	inFlight map[string]bool
	started  map[string]time.Time
}

func newLimiter(now func() time.Time, interval time.Duration, perMin, burst int) *limiter {
	return &limiter{
		now: now, interval: interval, rate: float64(perMin) / 60, burst: float64(burst),
		tokens: float64(burst), last: now(),
		inFlight: map[string]bool{}, started: map[string]time.Time{},
	}
}

// acquire admits a validation of the named connection, or answers 429
// with how long to wait. release must be called when the validation ends.
func (l *limiter) acquire(name string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.inFlight[name] {
		return nil, &apiError{status: http.StatusTooManyRequests, code: CodeRateLimited, retryAfter: time.Second,
			msg: fmt.Sprintf("connection %q is being validated already; wait for that result", name)}
	}
	if t, ok := l.started[name]; ok {
		if wait := t.Add(l.interval).Sub(now); wait > 0 {
			return nil, &apiError{status: http.StatusTooManyRequests, code: CodeRateLimited, retryAfter: wait,
				msg: fmt.Sprintf("connection %q was validated moments ago; validate it again in %s", name, wait.Round(time.Second).String())}
		}
	}
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	if l.tokens < 1 {
		wait := time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
		return nil, &apiError{status: http.StatusTooManyRequests, code: CodeRateLimited, retryAfter: wait,
			msg: fmt.Sprintf("too many validations on this daemon; try again in %s", wait.Round(time.Second).String())}
	}
	l.tokens--
	l.inFlight[name] = true
	l.started[name] = now
	// Forget connections validated long ago, so the map stays small.
	for n, t := range l.started {
		if now.Sub(t) > l.interval && !l.inFlight[n] {
			delete(l.started, n)
		}
	}
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.inFlight, name)
	}, nil
}

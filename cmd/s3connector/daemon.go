package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/ingest"
	"github.com/s3connector/s3connector/metrics"
)

// Validation retry backoff for a connection that fails validation.
const (
	validateBackoffMin = 5 * time.Second
	validateBackoffMax = 5 * time.Minute
)

// daemon is `s3connector run` without --once: every active connection is
// validated, then scheduled; one that fails validation is retried with
// backoff and none of its files is touched meanwhile. SIGHUP reloads the
// configuration; SIGTERM/SIGINT stop it gracefully.
type daemon struct {
	configFile string
	platform   aws.Config
	reg        *prometheus.Registry
	metrics    *metrics.Metrics
	log        *zap.Logger

	sched *ingest.Scheduler
	// hup, when set, replaces the SIGHUP channel (tests).
	hup <-chan os.Signal

	mu        sync.Mutex
	principal string
	conns     map[string]*supervised
	// statusToken (status_token_file) unlocks /status; empty: /status
	// answers anyone, redacted.
	statusToken string
	// retiring counts the stopped connections whose runners are not
	// retired yet (retireWhenIdle).
	retiring sync.WaitGroup
}

// supervised is one connection under the daemon's care.
type supervised struct {
	cfg    config.Connection
	cancel context.CancelFunc
	done   chan struct{}
	// runner is the scheduled runner, set under daemon.mu before done is
	// closed; retired once the connection stops (retireWhenIdle, retireAll).
	runner *connRunner

	mu        sync.Mutex
	state     string // validating, failing, scheduled
	lastError string
	since     time.Time
}

func (s *supervised) set(state, lastError string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state, s.lastError, s.since = state, lastError, time.Now()
}

func (d *daemon) serve(ctx context.Context, cfg *config.Config) error {
	d.sched = ingest.NewScheduler(d.log, d.metrics)
	d.conns = map[string]*supervised{}
	d.principal = cfg.PrincipalARN

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{Registry: d.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", d.readyz)
	mux.HandleFunc("/status", d.status)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w (set listen: in the config file to another address)", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	d.log.Info("s3connector started", zap.String("version", version), zap.String("listen", ln.Addr().String()))

	d.sched.Start()
	d.apply(ctx, cfg)

	hup := d.hup
	if hup == nil {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGHUP)
		defer signal.Stop(ch)
		hup = ch
	}
	grace := cfg.ShutdownGrace
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-srvErr:
			d.log.Error("HTTP server failed", zap.Error(err))
			break loop
		case <-hup:
			if g, ok := d.reload(ctx); ok {
				grace = g
			}
		}
	}

	d.log.Info("stopping: no new files; files in progress may finish", zap.Duration("shutdown_grace", grace))
	d.mu.Lock()
	for _, s := range d.conns {
		s.cancel()
	}
	d.mu.Unlock()
	stopCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	stopErr := d.sched.Stop(stopCtx)
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	_ = srv.Shutdown(shutdownCtx)
	d.retireAll()
	if stopErr != nil {
		d.log.Warn("shutdown grace over: files in progress were cancelled and stay in the inbox; moves already started were completed", zap.Error(stopErr))
	}
	d.log.Info("stopped")
	return nil
}

// reload reads the configuration file again; it is applied only if valid.
func (d *daemon) reload(ctx context.Context) (time.Duration, bool) {
	cfg, err := config.Load(d.configFile)
	d.metrics.ConfigReload(err == nil, time.Now())
	if err != nil {
		d.log.Error("configuration reload failed; keeping the running configuration", zap.Error(err))
		return 0, false
	}
	d.log.Info("configuration reloaded")
	d.apply(ctx, cfg)
	return cfg.ShutdownGrace, true
}

// apply starts, restarts or stops connections so that exactly the active
// connections of cfg run; unchanged connections are not touched.
func (d *daemon) apply(ctx context.Context, cfg *config.Config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	principalChanged := d.principal != cfg.PrincipalARN
	d.principal = cfg.PrincipalARN
	d.statusToken = cfg.StatusToken
	want := map[string]config.Connection{}
	for _, c := range cfg.Connections {
		if c.Status == config.StatusActive {
			want[c.Name] = c
		}
	}
	for name, s := range d.conns {
		c, keep := want[name]
		if keep && !principalChanged && reflect.DeepEqual(c, s.cfg) {
			delete(want, name)
			continue
		}
		d.log.Info("connection stopped", zap.String("connection", name), zap.Bool("changed", keep))
		s.cancel()
		d.sched.Remove(name)
		delete(d.conns, name)
		d.retireWhenIdle(name, s)
		if !keep {
			// Forget its metric series once its last run and its supervisor
			// have ended (they update metrics until then), unless a later
			// reload brought the connection back.
			idle, supervised := d.sched.Idle(name), s.done
			go func() {
				<-idle
				<-supervised
				d.mu.Lock()
				defer d.mu.Unlock()
				if _, back := d.conns[name]; !back {
					d.metrics.Forget(name)
				}
			}()
		}
	}
	for name, c := range want {
		sctx, cancel := context.WithCancel(ctx)
		s := &supervised{cfg: c, cancel: cancel, done: make(chan struct{})}
		s.set("validating", "")
		d.conns[name] = s
		go d.supervise(sctx, s)
	}
}

// supervise validates a connection until it passes (with backoff), then
// schedules it and runs it once at once.
func (d *daemon) supervise(ctx context.Context, s *supervised) {
	defer close(s.done)
	c := s.cfg
	log := d.log.With(zap.String("connection", c.Name))
	d.mu.Lock()
	principal := d.principal
	d.mu.Unlock()
	var runner *connRunner
	backoff := validateBackoffMin
	for {
		// The runner is built inside the loop: what fails here (an import
		// directory not mounted yet, say) may pass on a later try.
		r, conn, err := newRunner(d.platform, principal, c, d.metrics, d.log)
		var reason string
		if err != nil {
			reason = "cannot start: " + err.Error()
		} else {
			report, verr := conn.Validate(ctx, connector.WithPlatform(d.platform))
			if ctx.Err() != nil {
				r.retire()
				return
			}
			if verr == nil && report.OK() {
				runner = r
				break
			}
			r.retire()
			reason = "validation failed"
			if verr != nil {
				reason = verr.Error()
			}
			if adv := conn.AdviceFor(verr); adv.Headline != "" {
				reason = adv.Headline + ": " + reason
			}
		}
		s.set("failing", reason)
		d.metrics.SetUp(c.Name, false)
		wait := backoff/2 + rand.N(backoff/2+1)
		log.Error("connection failed validation; none of its files is touched until it passes", zap.String("reason", reason), zap.Duration("retry_in", wait))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, validateBackoffMax)
	}
	if iv, err := ingest.Interval(c.Schedule, time.Now()); err == nil {
		d.metrics.SetScheduleInterval(c.Name, iv)
	}
	// Schedule only while this supervisor is current: a reload that removed
	// or changed the connection in the meantime cancelled ctx under d.mu.
	d.mu.Lock()
	if ctx.Err() != nil {
		d.mu.Unlock()
		runner.retire()
		return
	}
	err := d.sched.Add(c.Name, c.Schedule, runner.RunUntil)
	if err == nil {
		s.runner = runner
	}
	d.mu.Unlock()
	if err != nil {
		runner.retire()
		s.set("failing", err.Error())
		log.Error("cannot schedule", zap.Error(err))
		return
	}
	d.metrics.SetUp(c.Name, true)
	s.set("scheduled", "")
	log.Info("connection validated and scheduled", zap.String("schedule", c.Schedule))
	d.sched.RunNow(c.Name)
}

func (d *daemon) snapshot() []*supervised {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*supervised, 0, len(d.conns))
	for _, s := range d.conns {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].cfg.Name < out[j].cfg.Name })
	return out
}

// readyz: 200 when every active connection passed validation; otherwise
// 503 naming each connection that has not, with its reason. Probes carry no
// token, so the reasons are always redacted (role ARNs, account ids).
func (d *daemon) readyz(w http.ResponseWriter, _ *http.Request) {
	conns := d.snapshot()
	filter := outputFilter{secrets: externalIDs(conns)}
	var notReady []string
	for _, s := range conns {
		s.mu.Lock()
		if s.state != "scheduled" {
			line := s.cfg.Name + ": " + s.state
			if s.lastError != "" {
				line += ": " + filter.text(s.lastError)
			}
			notReady = append(notReady, line)
		}
		s.mu.Unlock()
	}
	if len(notReady) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, l := range notReady {
			fmt.Fprintln(w, l)
		}
		return
	}
	io.WriteString(w, "ready\n")
}

// connectionStatus is one entry of /status.
type connectionStatus struct {
	Name      string     `json:"name"`
	State     string     `json:"state"` // validating, failing, scheduled, running
	Since     time.Time  `json:"since"`
	Schedule  string     `json:"schedule"`
	NextRun   *time.Time `json:"next_run,omitempty"`
	LastRun   *runStatus `json:"last_run,omitempty"`
	Waiting   *int       `json:"files_waiting,omitempty"`
	LastError string     `json:"last_error,omitempty"`
	// Problems are connection-level troubles the last run found that do
	// not fail it: files that cannot be read, moves that are denied.
	Problems []string `json:"problems,omitempty"`
}

type runStatus struct {
	RunID    string    `json:"run_id"`
	Started  time.Time `json:"started"`
	Duration string    `json:"duration"`
	OK       bool      `json:"ok"`
	Listed   int       `json:"listed"`
	Archived int       `json:"archived"`
	Errored  int       `json:"errored"`
	Retry    int       `json:"left_for_retry"`
	// FilesSkipped cannot be read at all (SSE-C, archive storage class);
	// FilesBlocked were imported but their move is denied.
	FilesSkipped int    `json:"files_skipped"`
	FilesBlocked int    `json:"files_blocked"`
	Bytes        int64  `json:"bytes"`
	Error        string `json:"error,omitempty"`
	// Skipped says why the run did nothing: another process holds the
	// connection's lease (not a failure).
	Skipped string `json:"skipped,omitempty"`
}

// problems describes what a run found that needs the customer's attention
// without failing the run.
func problems(s ingest.Summary) []string {
	var out []string
	if s.Blocked > 0 {
		out = append(out, fmt.Sprintf("%d files were imported but moving them is denied: check for a bucket policy that denies s3:DeleteObject or s3:PutObject, "+
			"the role's permissions policy (regenerate it with `s3connector policy`: it needs the tagging and version actions too) and Object Lock settings; "+
			"they are not imported again, their move is retried; the daemon log names each file", s.Blocked))
	}
	if s.Skipped > 0 {
		out = append(out, fmt.Sprintf("%d files cannot be read: encrypted with a customer-provided key (SSE-C) or in an archive storage class "+
			"(S3 Glacier Flexible Retrieval, Deep Archive); they stay in the inbox: restore them or re-upload them with SSE-S3 or SSE-KMS; the daemon log names each file", s.Skipped))
	}
	return out
}

// status serves every connection's state as JSON; see statusAccess for who
// sees what.
func (d *daemon) status(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	full, refused := d.statusAccess(r)
	if refused != "" {
		d.log.Debug("/status refused", zap.String("reason", refused), zap.String("remote", r.RemoteAddr))
		w.Header().Set("WWW-Authenticate", `Bearer realm="s3connector status"`)
		writeJSONError(w, http.StatusUnauthorized, refused+": /status needs the header Authorization: Bearer <the token in status_token_file>")
		return
	}
	out := struct {
		Version     string             `json:"version"`
		Connections []connectionStatus `json:"connections"`
	}{Version: version, Connections: []connectionStatus{}}
	conns := d.snapshot()
	filter := outputFilter{full: full, secrets: externalIDs(conns)}
	for _, s := range conns {
		s.mu.Lock()
		cs := connectionStatus{Name: s.cfg.Name, State: s.state, Since: s.since.UTC(), Schedule: s.cfg.Schedule, LastError: s.lastError}
		s.mu.Unlock()
		if st, ok := d.sched.State(s.cfg.Name); ok {
			if !st.Next.IsZero() {
				next := st.Next.UTC()
				cs.NextRun = &next
			}
			if st.Running {
				cs.State = "running"
			}
			if st.HasLast {
				l := st.Last
				rs := &runStatus{RunID: l.RunID, Started: l.Started.UTC(), Duration: l.Duration.Round(time.Millisecond).String(), OK: l.OK(),
					Listed: l.Listed, Archived: l.Archived, Errored: l.Errored, Retry: l.Retry,
					FilesSkipped: l.Skipped, FilesBlocked: l.Blocked, Bytes: l.Bytes}
				cs.Problems = problems(l)
				switch {
				case l.LeaseHeld():
					// Another process is doing the work: neither an error
					// nor a count of waiting files (nothing was listed).
					rs.Skipped = l.Err.Error()
				case l.Err != nil:
					rs.Error = l.Err.Error()
					if cs.LastError == "" {
						cs.LastError = rs.Error
					}
				}
				cs.LastRun = rs
				if !l.LeaseHeld() {
					waiting := max(l.Listed-l.Archived-l.Errored-l.Vanished, 0)
					cs.Waiting = &waiting
				}
				rs.Error, rs.Skipped = filter.text(rs.Error), filter.text(rs.Skipped)
			}
		}
		cs.LastError, cs.Problems = filter.text(cs.LastError), filter.texts(cs.Problems)
		out.Connections = append(out.Connections, cs)
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil && !errors.Is(err, context.Canceled) {
		d.log.Debug("write /status", zap.Error(err))
	}
}

// statusAccess decides what r may see of /status. Without status_token_file
// everyone gets the redacted view (no role ARNs, no account ids). With it,
// only a request carrying the token is answered, in full; any other is
// refused with 401 (refused says why) rather than given the redacted view:
// whoever sets a token wants /status closed (its connection names, states
// and file counts are the tenant's business too), and a client with a wrong
// or stale token should fail loudly, not quietly get less.
func (d *daemon) statusAccess(r *http.Request) (full bool, refused string) {
	d.mu.Lock()
	token := d.statusToken
	d.mu.Unlock()
	if token == "" {
		return false, ""
	}
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(got) == "" {
		return false, "no bearer token"
	}
	// Hashing first makes the comparison constant-time in the length too.
	want, have := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(strings.TrimSpace(got)))
	if subtle.ConstantTimeCompare(want[:], have[:]) != 1 {
		return false, "invalid token"
	}
	return true, ""
}

// externalIDs are the values /status and /readyz never show.
func externalIDs(conns []*supervised) []string {
	ids := make([]string, 0, len(conns))
	for _, s := range conns {
		ids = append(ids, s.cfg.ExternalID)
	}
	return ids
}

// writeJSONError answers with the status code and {"error": msg}.
func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}

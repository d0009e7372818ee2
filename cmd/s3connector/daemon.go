package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/s3connector/s3connector/admin"
	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/metrics"
	"github.com/s3connector/s3connector/store"
	"github.com/s3connector/s3connector/supervisor"
)

// daemon is `s3connector run` without --once: the supervisor validates
// and schedules every active connection; the daemon wires it to the
// configuration file (SIGHUP reloads it; it is applied only if valid), to
// the store of API-created connections in data_dir (admin.go), to
// SIGTERM/SIGINT (graceful stop within shutdown_grace), to the HTTP
// listener (/healthz, /readyz, /status, /metrics) and to the admin
// listener (the admin API and the wizard page).
type daemon struct {
	configFile string
	platform   aws.Config
	reg        *prometheus.Registry
	metrics    *metrics.Metrics
	log        *zap.Logger

	// hup, when set, replaces the SIGHUP channel (tests).
	hup <-chan os.Signal
	// sup is set by serve before the HTTP server starts.
	sup *supervisor.Supervisor
	// wanted composes the file's and the store's connections for sup.
	wanted *wanted
	// admin is the admin listener; nil when the API is off.
	admin *adminServer
	// started is the configuration the daemon started with: data_dir and
	// the admin section other than the token files take a restart.
	started *config.Config

	mu sync.Mutex
	// statusToken (status_token_file) unlocks /status; empty: /status
	// answers anyone, redacted.
	statusToken string
}

func (d *daemon) serve(ctx context.Context, cfg *config.Config) error {
	d.started = cfg
	var st *store.Bolt
	if cfg.DataDir != "" {
		var err error
		if st, err = openStore(cfg, d.log); err != nil {
			return err
		}
		defer func() {
			if err := st.Close(); err != nil {
				d.log.Error("close the store", zap.Error(err))
			}
		}()
	}
	d.sup = supervisor.New(supervisor.Options{Platform: d.platform, Metrics: d.metrics, Logger: d.log})
	d.wanted = &wanted{sup: d.sup, log: d.log, template: cfg.Admin.Template.Connection()}
	if st != nil {
		d.wanted.store = st
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{Registry: d.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", d.readyz)
	mux.HandleFunc("/status", d.status)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w (set listen: in the config file to another address)", err)
	}
	adminCtx, stopAdmin := context.WithCancel(context.Background())
	defer stopAdmin()
	if d.admin, err = d.startAdmin(adminCtx, cfg, d.wanted.store, d.wanted); err != nil {
		ln.Close()
		return err
	}
	var adminErr <-chan error
	if d.admin != nil {
		adminErr = d.admin.done
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	d.log.Info("s3connector started", zap.String("version", version), zap.String("listen", ln.Addr().String()), zap.Bool("store", st != nil))

	supDone := make(chan struct{})
	go func() {
		defer close(supDone)
		d.sup.Run(context.Background()) //nolint:errcheck // ended by Stop below
	}()
	d.apply(cfg)

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
		case err := <-adminErr:
			d.log.Error("admin API server failed", zap.Error(err))
			break loop
		case <-hup:
			if g, ok := d.reload(); ok {
				grace = g
			}
		}
	}

	// No API change after this point: the admin listener goes first, the
	// store is closed last (deferred above).
	stopAdmin()
	if d.admin != nil && adminErr != nil {
		select {
		case err := <-adminErr:
			if err != nil {
				d.log.Warn("admin API shutdown", zap.Error(err))
			}
		case <-time.After(10 * time.Second):
		}
	}
	d.log.Info("stopping: no new files; files in progress may finish", zap.Duration("shutdown_grace", grace))
	stopCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	stopErr := d.sup.Stop(stopCtx)
	<-supDone
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	_ = srv.Shutdown(shutdownCtx)
	if stopErr != nil {
		d.log.Warn("shutdown grace over: files in progress were cancelled and stay in the inbox; moves already started were completed", zap.Error(stopErr))
	}
	d.log.Info("stopped")
	return nil
}

// reload reads the configuration file again; it is applied only if valid.
func (d *daemon) reload() (time.Duration, bool) {
	cfg, err := config.Load(d.configFile)
	var tokens *admin.Tokens
	if err == nil && d.admin != nil {
		// Token files are read again: a rotated Secret takes effect now.
		if tokens, err = admin.LoadTokens(cfg.Admin.TokenFiles); err != nil {
			err = fmt.Errorf("admin.token_files: %w", err)
		}
	}
	if err == nil && d.admin != nil {
		if err = d.admin.api.SetTemplate(cfg.Admin.Template.Connection()); err != nil {
			err = fmt.Errorf("admin.template: %w", err)
		}
	}
	d.metrics.ConfigReload(err == nil, time.Now())
	if err != nil {
		d.log.Error("configuration reload failed; keeping the running configuration", zap.Error(err))
		return 0, false
	}
	d.log.Info("configuration reloaded")
	d.warnRestart(cfg)
	if tokens != nil {
		d.admin.api.SetTokens(tokens)
	}
	d.apply(cfg)
	return cfg.ShutdownGrace, true
}

// warnRestart logs the settings a reload does not apply.
func (d *daemon) warnRestart(cfg *config.Config) {
	old := d.started
	if old == nil {
		return
	}
	oldAdmin, newAdmin := old.Admin, cfg.Admin
	oldAdmin.TokenFiles, newAdmin.TokenFiles = nil, nil
	oldAdmin.Template, newAdmin.Template = config.Template{}, config.Template{}
	switch {
	case cfg.DataDir != old.DataDir:
		d.log.Warn("data_dir changed: it takes effect at the next start; the daemon keeps its open store", zap.String("data_dir", old.DataDir))
	case old.Admin.Enabled() != cfg.Admin.Enabled():
		d.log.Warn("admin API turned on or off by admin.token_files: it takes effect at the next start")
	case !reflect.DeepEqual(oldAdmin, newAdmin):
		d.log.Warn("admin section changed (listen, allowed hosts or TLS): it takes effect at the next start; the token files and the template are applied on reload")
	case cfg.PrincipalARN != old.PrincipalARN && d.admin != nil:
		d.log.Warn("principal_arn changed: connections use it now; the admin API shows the new one in trust policies after the next start")
	}
}

// apply hands cfg's connections to the supervisor and takes its status
// token.
func (d *daemon) apply(cfg *config.Config) {
	d.mu.Lock()
	d.statusToken = cfg.StatusToken
	d.mu.Unlock()
	// config.Validate has rejected duplicate names among the file's, and
	// the stored ones that clash are left out; Apply refuses only those,
	// and after Stop, which has not been called yet. A store that cannot
	// be listed leaves the running set as it is.
	if err := d.wanted.setFile(context.Background(), cfg.PrincipalARN, cfg.Connections, cfg.Admin.Template.Connection()); err != nil {
		d.log.Error("cannot apply the configuration", zap.Error(err))
	}
}

// states is the supervisor's view (none before serve started it).
func (d *daemon) states() []supervisor.State {
	if d.sup == nil {
		return nil
	}
	return d.sup.States()
}

// readyz: 200 when every active connection passed validation; otherwise
// 503 naming each connection that has not, with its reason. Probes carry no
// token, so the reasons are always redacted (role ARNs, account ids).
func (d *daemon) readyz(w http.ResponseWriter, _ *http.Request) {
	states := d.states()
	filter := outputFilter{secrets: externalIDs(states)}
	var notReady []string
	for _, st := range states {
		if !st.Ready() {
			line := st.Name() + ": " + st.Phase
			if st.Reason != "" {
				line += ": " + filter.text(st.Reason)
			}
			notReady = append(notReady, line)
		}
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
	states := d.states()
	filter := outputFilter{full: full, secrets: externalIDs(states)}
	for _, st := range states {
		out.Connections = append(out.Connections, newConnectionStatus(st, filter))
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

// newConnectionStatus is st as /status shows it to a caller who may see
// what filter lets through.
func newConnectionStatus(st supervisor.State, filter outputFilter) connectionStatus {
	cs := connectionStatus{Name: st.Name(), State: st.Phase, Since: st.Since.UTC(), Schedule: st.Connection.Schedule, LastError: st.Reason}
	if !st.NextRun.IsZero() {
		next := st.NextRun.UTC()
		cs.NextRun = &next
	}
	if st.Running {
		cs.State = "running"
	}
	if l := st.LastRun; l != nil {
		rs := &runStatus{RunID: l.RunID, Started: l.Started.UTC(), Duration: l.Duration.Round(time.Millisecond).String(), OK: l.OK,
			Listed: l.Listed, Archived: l.Archived, Errored: l.Errored, Retry: l.Retry,
			FilesSkipped: l.Skipped, FilesBlocked: l.Blocked, Bytes: l.Bytes,
			Error: filter.text(l.Error), Skipped: filter.text(l.LeaseHeld)}
		cs.Problems = l.Problems
		if l.Error != "" && cs.LastError == "" {
			cs.LastError = l.Error
		}
		// Another process holding the lease does the work: neither an
		// error nor a count of waiting files (nothing was listed).
		if l.LeaseHeld == "" {
			waiting := l.Waiting
			cs.Waiting = &waiting
		}
		cs.LastRun = rs
	}
	cs.LastError, cs.Problems = filter.text(cs.LastError), filter.texts(cs.Problems)
	return cs
}

// externalIDs are the values /status and /readyz never show.
func externalIDs(states []supervisor.State) []string {
	ids := make([]string, 0, len(states))
	for _, st := range states {
		ids = append(ids, st.Connection.ExternalID)
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

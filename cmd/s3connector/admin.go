package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"go.uber.org/zap"

	"github.com/s3connector/s3connector/admin"
	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/store"
	"github.com/s3connector/s3connector/supervisor"
	"github.com/s3connector/s3connector/web"
)

// openStore opens the store of API-created connections in data_dir
// (created 0700 when missing; the file itself is 0600). A store that
// cannot be read is a start-up error: it is never emptied to make the
// daemon start.
func openStore(cfg *config.Config, log *zap.Logger) (*store.Bolt, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	st, err := store.Open(cfg.StorePath())
	if err != nil {
		return nil, fmt.Errorf("open the store of data_dir (%s): %w; the daemon does not start without its stored connections: restore the file from a backup, or move it away to start with none", cfg.DataDir, err)
	}
	for _, w := range st.Warnings() {
		log.Warn("store", zap.String("path", st.Path()), zap.String("warning", w))
	}
	return st, nil
}

// wanted is the supervisor's wanted set: the configuration file's
// connections (as last loaded) and the store's (active ones run with the
// operator's template). Every change of either composes the whole set
// again under one mutex and hands it to supervisor.Apply, so a reload and
// an API change can never apply each other's stale halves.
//
// It is the admin API's Supervisor: Apply and Remove ignore what they are
// told beyond "something changed", since the change is stored already and
// the store is the truth.
type wanted struct {
	sup   *supervisor.Supervisor
	store store.Store // nil: no data_dir
	log   *zap.Logger

	mu        sync.Mutex
	principal string
	file      []config.Connection
	template  config.Connection
	// leftOut holds the active stored connections not run, by name, with
	// the problems that keep them out (checkStored).
	leftOut map[string][]string
}

// setFile takes a (re)loaded configuration's principal, connections and
// admin template, and applies: the stored connections run with the new
// template from now on.
func (w *wanted) setFile(ctx context.Context, principal string, conns []config.Connection, template config.Connection) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.principal, w.file, w.template = principal, conns, template
	return w.applyLocked(ctx)
}

// fileConnections are the configuration file's connections, for the API's
// read-only list.
func (w *wanted) fileConnections() []config.Connection {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.file
}

// Apply implements admin.Supervisor.
func (w *wanted) Apply(ctx context.Context, _ config.Connection) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.applyLocked(ctx)
}

// Remove implements admin.Supervisor.
func (w *wanted) Remove(ctx context.Context, _ string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.applyLocked(ctx)
}

func (w *wanted) applyLocked(ctx context.Context) error {
	all := slices.Clone(w.file)
	if w.store != nil {
		stored, err := w.store.List(ctx)
		if err != nil {
			return fmt.Errorf("list the stored connections: %w", err)
		}
		all = append(all, w.checkStored(w.file, stored)...)
	}
	return w.sup.Apply(w.principal, all)
}

// problemIndex is the N of a "connections[N]..." problem.
var problemIndex = regexp.MustCompile(`^connections\[(\d+)\]`)

// checkStored is storedToRun with the wanted set's principal and template;
// it keeps the active connections left out for State.
func (w *wanted) checkStored(file []config.Connection, stored []store.Connection) []config.Connection {
	run, leftOut := storedToRun(w.principal, w.template, file, stored, w.log)
	w.leftOut = leftOut
	return run
}

// storedToRun returns the stored connections as the daemon runs them,
// leaving out (and logging) any that the file's connections make invalid:
// a name the file took after it was created, or a base path a file
// connection now overlaps. The file's connections are never left out: they
// are the operator's. leftOut holds the active ones left out, by name,
// with their problems.
func storedToRun(principal string, template config.Connection, file []config.Connection, stored []store.Connection, log *zap.Logger) (run []config.Connection, leftOut map[string][]string) {
	run = make([]config.Connection, 0, len(stored))
	for _, sc := range stored {
		run = append(run, runConnection(sc, template))
	}
	cfg := config.Config{PrincipalARN: principal, Connections: slices.Concat(file, run)}
	cfg.ApplyDefaults()
	err := cfg.Validate()
	var ve *config.ValidationError
	if !errors.As(err, &ve) {
		return run, nil
	}
	bad := map[int][]string{}
	for _, p := range ve.Problems {
		if m := problemIndex.FindStringSubmatch(p); m != nil {
			if i, _ := strconv.Atoi(m[1]); i >= len(file) {
				bad[i-len(file)] = append(bad[i-len(file)], p)
			}
		}
	}
	out := run[:0]
	leftOut = map[string][]string{}
	for i, c := range run {
		if len(bad[i]) > 0 {
			if c.Status == config.StatusActive {
				leftOut[c.Name] = bad[i]
			}
			log.Error("stored connection not run: it conflicts with the configuration file; rename or move one of them",
				zap.String("connection", c.Name), zap.Strings("problems", bad[i]))
			continue
		}
		out = append(out, c)
	}
	return out, leftOut
}

// runConnection is a stored connection as the daemon runs it: the
// template with the connection's settings; a dir importer gets its own
// subdirectory of the template's path.
func runConnection(sc store.Connection, template config.Connection) config.Connection {
	c := sc.ConfigConnection(template)
	if c.Importer.Type == config.ImporterDir && c.Importer.Path != "" {
		c.Importer.Path = filepath.Join(c.Importer.Path, c.Name)
	}
	return c
}

// State implements admin.Supervisor.
func (w *wanted) State(name string, stored bool) (admin.RunState, bool) {
	if stored {
		w.mu.Lock()
		problems, out := w.leftOut[name]
		clash := slices.ContainsFunc(w.file, func(c config.Connection) bool { return c.Name == name })
		w.mu.Unlock()
		if out {
			return admin.RunState{State: admin.StateNotRunning,
				Problem: "it conflicts with the configuration file, which the operator must change (or rename or move this connection): " + strings.Join(problems, "; ")}, true
		}
		if clash {
			return admin.RunState{}, false // not active, and the name is the file's
		}
	}
	st, ok := w.sup.State(name)
	if !ok {
		return admin.RunState{}, false
	}
	// The tenant's own API: role ARNs may show, the External ID never.
	filter := outputFilter{full: true, secrets: []string{st.Connection.ExternalID}}
	rs := admin.RunState{State: st.Phase, NextRun: st.NextRun, LastError: filter.text(st.Reason)}
	if st.Running {
		rs.State = "running"
	}
	if l := st.LastRun; l != nil {
		rs.LastRun, rs.LastRunOK = l.Started, l.OK
		if rs.LastError == "" {
			rs.LastError = filter.text(l.Error)
		}
		if l.LeaseHeld == "" {
			n := l.Waiting
			rs.FilesWaiting = &n
		}
	}
	return rs, true
}

// errorFiles is admin.ErrorFiles on archive.Mover, with a connection
// (connector.New) per connection's settings, kept between requests so that
// paging through error/ and requeueing reuse its cached credentials
// instead of an AssumeRole each (the platform's STS quota). A change of any
// setting makes a new one.
type errorFiles struct {
	platform  aws.Config
	principal string

	mu    sync.Mutex
	conns map[string]*connector.Connection // by the settings' JSON
}

// maxErrorFileConns bounds errorFiles' cache; past it, it starts afresh.
const maxErrorFileConns = 64

func (e *errorFiles) mover(c config.Connection) (*archive.Mover, *connector.Connection, error) {
	key, err := json.Marshal(c)
	if err != nil {
		return nil, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	conn, ok := e.conns[string(key)]
	if !ok {
		if conn, err = connector.New(e.platform, e.principal, c); err != nil {
			return nil, nil, err
		}
		if e.conns == nil || len(e.conns) >= maxErrorFileConns {
			e.conns = map[string]*connector.Connection{}
		}
		e.conns[string(key)] = conn
	}
	return &archive.Mover{S3: conn.S3(), Bucket: c.Bucket, BasePath: c.BasePath}, conn, nil
}

func (e *errorFiles) List(ctx context.Context, c config.Connection, limit int) ([]admin.ErrorFile, error) {
	m, conn, err := e.mover(c)
	if err != nil {
		return nil, err
	}
	files, err := m.ListErrors(ctx, conn.S3(), limit)
	if err != nil {
		return nil, err
	}
	out := make([]admin.ErrorFile, 0, len(files))
	for _, f := range files {
		ef := admin.ErrorFile{Key: f.Key, Size: f.Size, Modified: f.Modified}
		if r := f.Report; r != nil {
			ef.Report = &admin.ErrorReport{OriginalKey: r.Key, ReasonCode: r.ReasonCode, Reason: r.Reason, Attempts: r.Attempts, RunID: r.RunID, FailedAt: r.FailedAt}
		}
		out = append(out, ef)
	}
	return out, nil
}

func (e *errorFiles) Requeue(ctx context.Context, c config.Connection, key string) (string, error) {
	m, conn, err := e.mover(c)
	if err != nil {
		return "", err
	}
	target, err := m.Requeue(ctx, conn.S3(), key)
	for _, k := range []struct{ archive, admin error }{
		{archive.ErrNotAnErrorFile, admin.ErrNotAnErrorFile},
		{archive.ErrNoReport, admin.ErrNoReport},
		{archive.ErrInboxTaken, admin.ErrInboxTaken},
	} {
		if errors.Is(err, k.archive) {
			return target, classed{err, k.admin}
		}
	}
	return target, err
}

// classed is err, also matching class with errors.Is.
type classed struct{ err, class error }

func (c classed) Error() string        { return c.err.Error() }
func (c classed) Unwrap() []error      { return []error{c.err, c.class} }
func (c classed) Is(target error) bool { return target == c.class }

// adminServer is the admin listener: the API under admin.Prefix, the
// wizard page at "/".
type adminServer struct {
	api  *admin.API
	addr string
	done chan error
}

// startAdmin builds the API on the store and serves it with the page on
// cfg.Admin.Listen until ctx is done. With no token file it is off (nil).
func (d *daemon) startAdmin(ctx context.Context, cfg *config.Config, st store.Store, w *wanted) (*adminServer, error) {
	if !cfg.Admin.Enabled() {
		if cfg.DataDir != "" {
			d.log.Info("admin API and page are off: no admin.token_files; stored connections still run")
		}
		return nil, nil
	}
	tokens, err := admin.LoadTokens(cfg.Admin.TokenFiles)
	if err != nil {
		return nil, fmt.Errorf("admin.token_files: %w", err)
	}
	api, err := admin.New(admin.Options{
		Store:             st,
		Validator:         admin.ConnectorValidator{Platform: d.platform, PrincipalARN: cfg.PrincipalARN},
		Supervisor:        w,
		ErrorFiles:        &errorFiles{platform: d.platform, principal: cfg.PrincipalARN},
		ConfigConnections: w.fileConnections,
		PrincipalARN:      cfg.PrincipalARN,
		Template:          cfg.Admin.Template.Connection(),
		Tokens:            tokens,
		AllowedHosts:      cfg.Admin.AllowedHosts,
		Logger:            d.log,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return nil, fmt.Errorf("admin listen: %w (set admin.listen in the config file to another address)", err)
	}
	mux := http.NewServeMux()
	mux.Handle(admin.Prefix+"/", api.Handler())
	mux.Handle("/", web.Handler())
	s := &adminServer{api: api, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() {
		s.done <- api.Serve(ctx, ln, admin.ServeOptions{CertFile: cfg.Admin.TLSCertFile, KeyFile: cfg.Admin.TLSKeyFile, Handler: mux})
	}()
	scheme := "http"
	if cfg.Admin.TLSCertFile != "" {
		scheme = "https"
	}
	d.log.Info("admin API and wizard page", zap.String("listen", s.addr), zap.String("url", scheme+"://"+s.addr+"/"), zap.Int("tokens", tokens.Len()))
	return s, nil
}

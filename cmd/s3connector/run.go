package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/ingest"
	"github.com/s3connector/s3connector/metrics"
)

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	configFile := fs.String("config", "", "configuration file (required)")
	once := fs.Bool("once", false, "make one pass over the active connections, print a summary line each, and exit")
	name := fs.String("connection", "", "with --once: only this connection")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *configFile == "" {
		return fmt.Errorf("%w: --config is required", errUsage)
	}
	if *name != "" && !*once {
		return fmt.Errorf("%w: --connection needs --once (the daemon runs every active connection)", errUsage)
	}
	cfg, err := config.Load(*configFile)
	if err != nil {
		return err
	}
	conns, err := activeConnections(cfg, *name, *configFile)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, cfg.Log)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // stderr

	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		return err
	}
	m.SetBuildInfo(version, commit)
	m.ConfigReload(true, time.Now())
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	platform, err := connector.LoadPlatformConfig(ctx)
	if err != nil {
		return err
	}
	if *once {
		runners := make([]*connRunner, 0, len(conns))
		defer func() {
			for _, r := range runners {
				r.retire()
			}
		}()
		for _, c := range conns {
			r, _, err := newRunner(platform, cfg.PrincipalARN, c, m, log)
			if err != nil {
				return err
			}
			runners = append(runners, r)
		}
		return runOnce(ctx, runners, stdout)
	}
	d := &daemon{configFile: *configFile, platform: platform, reg: reg, metrics: m, log: log}
	return d.serve(ctx, cfg)
}

// activeConnections picks what `run` ingests: every active connection, or
// the named one (which must be active).
func activeConnections(cfg *config.Config, name, file string) ([]config.Connection, error) {
	if name != "" {
		c, err := lookupConnection(cfg, name, file)
		if err != nil {
			return nil, err
		}
		if c.Status != config.StatusActive {
			return nil, fmt.Errorf("%s: connection %q is %s, not active: validate it (s3connector validate --config %s --connection %s), then set status: active",
				file, name, c.Status, file, name)
		}
		return []config.Connection{*c}, nil
	}
	var out []config.Connection
	for _, c := range cfg.Connections {
		if c.Status == config.StatusActive {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no connection has status: active; validate a connection, then set its status to active", file)
	}
	return out, nil
}

// connRunner is a connection's runner with the importer it built: whoever
// holds it retires it once done with it, which closes the importer if it
// is an io.Closer (see ingest.Importer).
type connRunner struct {
	*ingest.Runner
	imp  ingest.Importer
	log  *zap.Logger
	once sync.Once
}

// retire closes the importer (once, if it is an io.Closer). Call it after
// the runner's last run has ended; r may be nil.
func (r *connRunner) retire() {
	if r == nil {
		return
	}
	r.once.Do(func() {
		if c, ok := r.imp.(io.Closer); ok {
			if err := c.Close(); err != nil {
				r.log.Warn("closing the retired importer failed", zap.Error(err))
			}
		}
	})
}

// retireWhenIdle retires s's runner, if it got one, once its supervisor
// has returned and the connection's last run has ended. Call it after
// removing the connection from the scheduler: no run of it starts then.
func (d *daemon) retireWhenIdle(name string, s *supervised) {
	idle := d.sched.Idle(name)
	d.retiring.Add(1)
	go func() {
		defer d.retiring.Done()
		<-idle
		<-s.done
		// s.runner was set, if ever, before s.done was closed.
		s.runner.retire()
	}()
}

// retireAll retires every runner once the scheduler has stopped (no run
// is going): the current connections' after their supervisors return
// (they were cancelled), and those being retired already.
func (d *daemon) retireAll() {
	d.mu.Lock()
	conns := make([]*supervised, 0, len(d.conns))
	for _, s := range d.conns {
		conns = append(conns, s)
	}
	d.mu.Unlock()
	for _, s := range conns {
		<-s.done
		s.runner.retire()
	}
	d.retiring.Wait()
}

// newRunner builds a connection's runner and its importer; the caller
// retires it (closing the importer).
func newRunner(platform aws.Config, principal string, c config.Connection, m *metrics.Metrics, log *zap.Logger) (*connRunner, *connector.Connection, error) {
	conn, err := connector.New(platform, principal, c, connector.WithHooks(connector.Hooks{
		S3Request: func(op string, err error) { m.S3Request(c.Name, op, connector.ResultLabel(err, c.Region)) },
		AssumeRole: func(expires time.Time, err error) {
			m.AssumeRole(c.Name, err, expires)
			if err != nil {
				log.Error("assume role failed", zap.String("connection", c.Name), zap.String("role_arn", c.RoleARN()), zap.Error(err))
			}
		},
	}))
	if err != nil {
		return nil, nil, err
	}
	imp, err := ingest.New(c.Importer, ingest.Deps{Logger: log.With(zap.String("connection", c.Name)), Workers: c.Workers})
	if err != nil {
		return nil, nil, fmt.Errorf("connection %q: %w", c.Name, err)
	}
	cr := &connRunner{imp: imp, log: log.With(zap.String("connection", c.Name))}
	cr.Runner, err = ingest.NewRunner(conn, ingest.Options{Importer: imp, Metrics: m, Logger: log, Lease: ingest.LeaseOptions{TTL: c.LeaseTTL}})
	if err != nil {
		cr.retire()
		return nil, nil, err
	}
	return cr, conn, nil
}

// runOnce runs every connection once, concurrently, and prints their
// summaries in configuration order. Exit 0 when every listed file was
// moved, 1 when any was left in the inbox or a listing failed. A
// connection whose lease another process holds (the daemon, a replica) is
// skipped with a line saying so, and does not make the exit code 1: its
// files are being processed there.
func runOnce(ctx context.Context, runners []*connRunner, stdout io.Writer) error {
	sums := make([]ingest.Summary, len(runners))
	var wg sync.WaitGroup
	for i, r := range runners {
		wg.Go(func() { sums[i] = r.Run(ctx) })
	}
	wg.Wait()
	ok := true
	for _, s := range sums {
		if s.LeaseHeld() {
			fmt.Fprintf(stdout, "%s: skipped: %v; its files are processed there, nothing was done here (run %s)\n", s.Connection, s.Err, s.RunID)
			continue
		}
		fmt.Fprintln(stdout, s)
		ok = ok && s.OK()
	}
	if !ok {
		return &exitError{code: 1}
	}
	return nil
}

// newLogger builds the zap logger of log.format (json or console) and
// log.level on w.
func newLogger(w io.Writer, c config.Log) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	encoder := zapcore.NewJSONEncoder(enc)
	if c.Format == "console" {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	return zap.New(zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(w)), level)), nil
}

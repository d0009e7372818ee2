package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/ingest"
	"github.com/s3connector/s3connector/metrics"
)

// shutdownGrace bounds how long a stopping daemon waits for runs in
// progress (their started moves always finish, see archive.Mover.Move).
const shutdownGrace = 30 * time.Second

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
	log, err := newLogger(stderr)
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
	runners := make([]*ingest.Runner, 0, len(conns))
	for _, c := range conns {
		r, err := newRunner(platform, cfg.PrincipalARN, c, m, log)
		if err != nil {
			return err
		}
		runners = append(runners, r)
	}
	if *once {
		return runOnce(ctx, runners, stdout)
	}
	return serve(ctx, cfg.Listen, runners, conns, reg, m, log)
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

func newRunner(platform aws.Config, principal string, c config.Connection, m *metrics.Metrics, log *zap.Logger) (*ingest.Runner, error) {
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
		return nil, err
	}
	imp, err := ingest.New(c.Importer, ingest.Deps{Logger: log.With(zap.String("connection", c.Name))})
	if err != nil {
		return nil, fmt.Errorf("connection %q: %w", c.Name, err)
	}
	return ingest.NewRunner(conn, ingest.Options{Importer: imp, Metrics: m, Logger: log})
}

// runOnce runs every connection once, concurrently, and prints their
// summaries in configuration order. Exit 0 when every listed file was
// moved, 1 when any was left in the inbox or a listing failed.
func runOnce(ctx context.Context, runners []*ingest.Runner, stdout io.Writer) error {
	sums := make([]ingest.Summary, len(runners))
	var wg sync.WaitGroup
	for i, r := range runners {
		wg.Go(func() { sums[i] = r.Run(ctx) })
	}
	wg.Wait()
	ok := true
	for _, s := range sums {
		fmt.Fprintln(stdout, s)
		ok = ok && s.OK()
	}
	if !ok {
		return &exitError{code: 1}
	}
	return nil
}

// serve is the daemon: every connection on its schedule (and once at
// start), /metrics, /healthz and /readyz on listen, until ctx is done.
func serve(ctx context.Context, listen string, runners []*ingest.Runner, conns []config.Connection, reg *prometheus.Registry, m *metrics.Metrics, log *zap.Logger) error {
	sched := ingest.NewScheduler(log, m)
	for i, r := range runners {
		if err := sched.Add(r.Name(), conns[i].Schedule, r.Run); err != nil {
			return err
		}
	}
	var ready atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w (set listen: in the config file to another address)", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	log.Info("s3connector started", zap.String("version", version), zap.String("listen", ln.Addr().String()), zap.Int("connections", len(runners)))

	sched.Start()
	for _, r := range runners {
		sched.RunNow(r.Name())
	}
	ready.Store(true)

	select {
	case <-ctx.Done():
	case err := <-srvErr:
		log.Error("HTTP server failed", zap.Error(err))
	}
	log.Info("stopping: no new runs; waiting for runs in progress", zap.Duration("grace", shutdownGrace))
	ready.Store(false)
	stopCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	stopErr := sched.Stop(stopCtx)
	_ = srv.Shutdown(stopCtx)
	if stopErr != nil {
		return fmt.Errorf("runs still going after %s: %w", shutdownGrace, stopErr)
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("stopped")
	return nil
}

// newLogger is a JSON logger on stderr at info level.
func newLogger(w io.Writer) (*zap.Logger, error) {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), zap.InfoLevel)
	return zap.New(core), nil
}

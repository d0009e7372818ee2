package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/ingest"
	"github.com/s3connector/s3connector/metrics"
	"github.com/s3connector/s3connector/supervisor"
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
	log, err := newLogger(stderr, cfg.Log)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // stderr
	// The daemon with a data_dir may start with no active connection of
	// the file: the store's and the admin API's come with it.
	var conns []config.Connection
	switch {
	case *once:
		if conns, err = onceConnections(ctx, cfg, *name, *configFile, stdout, log); err != nil {
			return err
		}
	case cfg.DataDir == "":
		if conns, err = activeConnections(cfg, "", *configFile); err != nil {
			return err
		}
	}

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
		runners := make([]*supervisor.Runner, 0, len(conns))
		defer func() {
			for _, r := range runners {
				r.Retire()
			}
		}()
		o := supervisor.Options{Platform: platform, Metrics: m, Logger: log}
		for _, c := range conns {
			r, err := supervisor.NewRunner(o, cfg.PrincipalARN, c)
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

// runOnce runs every connection once, concurrently, and prints their
// summaries in configuration order. Exit 0 when every listed file was
// moved, 1 when any was left in the inbox or a listing failed. A
// connection whose lease another process holds (the daemon, a replica) is
// skipped with a line saying so, and does not make the exit code 1: its
// files are being processed there.
func runOnce(ctx context.Context, runners []*supervisor.Runner, stdout io.Writer) error {
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

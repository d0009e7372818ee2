package supervisor

import (
	"fmt"
	"io"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/ingest"
)

// Runner is a connection's ingest runner with the connection and the
// importer it was built with. Whoever holds one retires it once done with
// it, which closes the importer if it is an io.Closer (see ingest.Importer).
type Runner struct {
	*ingest.Runner
	conn *connector.Connection
	imp  ingest.Importer
	log  *zap.Logger
	once sync.Once
}

// NewRunner builds connection c the way the supervisor does: its
// credentials and S3 client (reporting to o.Metrics), its importer from
// o.Environment and its runner. principal is the platform principal its
// trust policy names. The caller retires the runner. `run --once` uses it
// with the same Options as the daemon.
func NewRunner(o Options, principal string, c config.Connection) (*Runner, error) {
	o = o.withDefaults()
	m, log := o.Metrics, o.Logger
	conn, err := connector.New(o.Platform, principal, c, connector.WithHooks(connector.Hooks{
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
	imp, err := o.Environment.New(c.Importer, ingest.Deps{Logger: log.With(zap.String("connection", c.Name)), Workers: c.Workers})
	if err != nil {
		return nil, fmt.Errorf("connection %q: %w", c.Name, err)
	}
	r := &Runner{conn: conn, imp: imp, log: log.With(zap.String("connection", c.Name))}
	r.Runner, err = ingest.NewRunner(conn, ingest.Options{Importer: imp, Metrics: m, Logger: log, Lease: ingest.LeaseOptions{TTL: c.LeaseTTL},
		ParallelDownloadThreshold: downloadThreshold(c.Download.ParallelThreshold), DownloadPartSize: int64(c.Download.PartSize), DownloadConcurrency: c.Download.Concurrency})
	if err != nil {
		r.Retire()
		return nil, err
	}
	return r, nil
}

// downloadThreshold is download.parallel_threshold as ingest.Options has
// it: negative for off (0 there would be the default).
func downloadThreshold(t config.Threshold) int64 {
	if t.Off {
		return -1
	}
	return int64(t.Size)
}

// Connection is the connection the runner works on (for Validate).
func (r *Runner) Connection() *connector.Connection { return r.conn }

// Retire closes the importer (once, if it is an io.Closer). Call it after
// the runner's last run has ended; r may be nil.
func (r *Runner) Retire() {
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

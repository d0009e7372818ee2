package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Server is the API's http.Server with the limits of Options: read-header,
// read, write and idle timeouts, a header size limit, and no HTTP/2 push or
// other extras. Serve adds the cap on concurrent connections.
func (a *API) Server() *http.Server {
	return &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: a.opts.ReadHeaderTimeout,
		ReadTimeout:       a.opts.ReadTimeout,
		WriteTimeout:      a.opts.WriteTimeout,
		IdleTimeout:       a.opts.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(zapWriter{a.log}, "", 0),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
	}
}

// ServeOptions choose TLS for Serve; both files or neither.
type ServeOptions struct {
	CertFile, KeyFile string
	// ShutdownTimeout bounds how long Serve waits for requests in progress
	// once ctx is done; default 5s.
	ShutdownTimeout time.Duration
	// Handler, when set, is served instead of Handler(): a mux holding
	// the API under Prefix beside other pages of the listener (the wizard
	// page), all under the same server limits.
	Handler http.Handler
}

// Serve serves the API on ln (at most MaxConnections connections at once;
// more wait in the listen backlog) until ctx is done, then shuts down
// gracefully. With CertFile and KeyFile it serves TLS.
func (a *API) Serve(ctx context.Context, ln net.Listener, so ServeOptions) error {
	if (so.CertFile == "") != (so.KeyFile == "") {
		return errors.New("admin: TLS needs both a certificate and a key file")
	}
	if so.ShutdownTimeout == 0 {
		so.ShutdownTimeout = 5 * time.Second
	}
	srv := a.Server()
	if so.Handler != nil {
		srv.Handler = so.Handler
	}
	ln = limitListener(ln, a.opts.MaxConnections)
	errc := make(chan error, 1)
	go func() {
		if so.CertFile != "" {
			errc <- srv.ServeTLS(ln, so.CertFile, so.KeyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("admin API: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), so.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// limitListener accepts at most n connections at a time: Accept waits for
// one to close. (golang.org/x/net/netutil.LimitListener does the same; this
// avoids the dependency for thirty lines.)
func limitListener(ln net.Listener, n int) net.Listener {
	return &limitedListener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{})}
}

type limitedListener struct {
	net.Listener
	sem       chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

func (l *limitedListener) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

func (l *limitedListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// zapWriter sends net/http's own error log (TLS handshake errors, ...) to
// zap at debug level: clients cause them, not the daemon.
type zapWriter struct{ log *zap.Logger }

func (z zapWriter) Write(p []byte) (int, error) {
	z.log.Debug("admin API server", zap.ByteString("message", p))
	return len(p), nil
}

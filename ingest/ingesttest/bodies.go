package ingesttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrBrokenBody is what a broken body's Read returns once its first bytes
// are read: the connection to S3 failing mid-file, as the daemon's bodies
// can.
var ErrBrokenBody = errors.New("ingesttest: connection reset while reading the body")

// errReadAfterReturn is what a body read after Import returned answers.
var errReadAfterReturn = errors.New("ingesttest: body read after Import returned")

// guardedBody is every body Run hands an importer: it records reads begun
// after Import returned, or still going when it returned. The daemon drains
// and closes the body (an S3 response) as soon as Import returns, so such a
// read races with the close and, on a pooled connection, could read the
// next response's bytes.
type guardedBody struct {
	r io.Reader

	mu       sync.Mutex
	inflight int
	returned bool
	late     []string
}

func (g *guardedBody) Read(p []byte) (int, error) {
	g.mu.Lock()
	if g.returned {
		g.late = append(g.late, fmt.Sprintf("Read(%d bytes) called after Import returned", len(p)))
		g.mu.Unlock()
		return 0, errReadAfterReturn
	}
	g.inflight++
	g.mu.Unlock()
	n, err := g.r.Read(p)
	g.mu.Lock()
	g.inflight--
	g.mu.Unlock()
	return n, err
}

// importReturned marks the moment Import returned.
func (g *guardedBody) importReturned() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.returned = true
	if g.inflight > 0 {
		g.late = append(g.late, fmt.Sprintf("%d Read calls still going when Import returned", g.inflight))
	}
}

// violations lists the late reads seen so far.
func (g *guardedBody) violations() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.late...)
}

// brokenBody yields head, then fails with ErrBrokenBody.
type brokenBody struct{ head []byte }

func (b *brokenBody) Read(p []byte) (int, error) {
	if len(b.head) == 0 {
		return 0, ErrBrokenBody
	}
	n := copy(p, b.head)
	b.head = b.head[n:]
	return n, nil
}

// stallingBody yields head, closes headRead, then blocks until ctx is done
// and fails with ctx's error: an S3 response body, whose reads fail once
// the context of its request (the one Import gets) is cancelled, from a
// store that has stopped sending.
type stallingBody struct {
	ctx      context.Context
	head     []byte
	headRead chan struct{}
	once     sync.Once
}

func (s *stallingBody) Read(p []byte) (int, error) {
	if len(s.head) > 0 {
		n := copy(p, s.head)
		s.head = s.head[n:]
		return n, nil
	}
	s.once.Do(func() { close(s.headRead) })
	<-s.ctx.Done()
	return 0, s.ctx.Err()
}

//go:build torture

package torture

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Modes of httpSink.
const (
	sinkOK    int32 = iota // 204 after reading the body
	sinkError              // 500 InternalError, body half read
	sinkHang               // read nothing, never answer (the importer's timeout ends it)
)

// httpSink is the http importer's endpoint: it writes every body it
// accepts to Dir under its key relative to Base (so the shared checker
// reads it as a dir importer's), and can fail.
type httpSink struct {
	URL   string
	mode  atomic.Int32
	delay atomic.Int64 // per accepted file, nanoseconds
	// failed counts requests answered 500 or left hanging.
	failed atomic.Int64

	// Dir holds the accepted bodies.
	Dir      string
	accepted atomic.Int64
	closed   chan struct{}
}

func newHTTPSink(t *testing.T) *httpSink {
	t.Helper()
	s := &httpSink{Dir: t.TempDir(), closed: make(chan struct{})}
	hs := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		close(s.closed)
		hs.Close()
	})
	s.URL = hs.URL
	return s
}

func (s *httpSink) serve(w http.ResponseWriter, r *http.Request) {
	switch s.mode.Load() {
	case sinkError:
		s.failed.Add(1)
		io.CopyN(io.Discard, r.Body, 4096)
		http.Error(w, "InternalError", http.StatusInternalServerError)
		return
	case sinkHang:
		s.failed.Add(1)
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		return
	}
	rel := strings.TrimPrefix(r.Header.Get("X-S3connector-Key"), Base)
	if rel == "" || strings.Contains(rel, "/") {
		http.Error(w, "flat keys only", http.StatusBadRequest)
		return
	}
	tmp, err := os.CreateTemp(s.Dir, ".s3connector-*.tmp")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, r.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return // the importer sees the broken request
	}
	if d := time.Duration(s.delay.Load()); d > 0 {
		time.Sleep(d)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.Dir, rel)); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.accepted.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

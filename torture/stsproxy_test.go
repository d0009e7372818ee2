//go:build torture

package torture

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
)

// STS modes of stsProxy.
const (
	stsPass  int32 = iota // forward to MinIO
	stsReset              // reset every connection (an endpoint cut off)
	stsStall              // accept, read the request, never answer (a black hole)
)

// stsProxy stands between the daemon and MinIO's STS (the connection's
// sts_endpoint): it counts AssumeRole answers and can cut STS off.
type stsProxy struct {
	URL  string
	mode atomic.Int32
	// ok counts AssumeRole calls answered by MinIO with 200; cut counts
	// requests reset or stalled.
	ok, cut atomic.Int64
	closed  chan struct{}
}

func newSTSProxy(t *testing.T, target string) *stsProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &stsProxy{closed: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.StatusCode == http.StatusOK {
			p.ok.Add(1)
		}
		return nil
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p.mode.Load() {
		case stsReset:
			p.cut.Add(1)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				tc.SetLinger(0) // RST, not FIN
			}
			conn.Close()
			return
		case stsStall:
			p.cut.Add(1)
			// Held until the client gives up or the test ends; going
			// back to stsPass does not release it (a black hole).
			select {
			case <-r.Context().Done():
			case <-p.closed:
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		close(p.closed)
		hs.Close()
	})
	p.URL = hs.URL
	return p
}

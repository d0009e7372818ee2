package miniotest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Proxy is a reverse proxy in front of a Server that records every request
// and lets a test answer some of them itself. It is for what MinIO does
// not show: headers it ignores (If-Match on deletes, If-None-Match on
// copies) are checked on the recorded requests, and answers only AWS gives
// (a version id of "null", InvalidObjectState, 409
// ConditionalRequestConflict, a lost answer) are played by the hooks. A
// test using it says which AWS behaviour it stands in for.
type Proxy struct {
	// URL is the proxy's endpoint, for a connection's endpoint setting.
	URL string

	srv  *Server
	mu   sync.Mutex
	reqs []Request

	answer, lose func(*http.Request) (status int, body string, ok bool)
	header       func(*http.Request, http.Header)
}

// Request is one recorded request. Body is kept for POST and DELETE
// requests (DeleteObjects' XML) and uploads (PUTs without
// x-amz-copy-source, buffered whole: the connector's uploads are small
// markers, records and reports); a copy's is empty.
type Request struct {
	Method, Path, Query string
	Header              http.Header
	Body                string
}

// NewProxy starts a Proxy in front of s, closed when the test ends.
func (s *Server) NewProxy(t testing.TB) *Proxy {
	t.Helper()
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{srv: s}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		p.mu.Lock()
		h := p.header
		p.mu.Unlock()
		if h != nil {
			h(resp.Request, resp.Header)
		}
		return nil
	}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		// Bodies of POSTs, DELETEs and uploads (a copy is a PUT that
		// uploads nothing: x-amz-copy-source).
		if r.Method == http.MethodPost || r.Method == http.MethodDelete ||
			r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") == "" {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		p.mu.Lock()
		p.reqs = append(p.reqs, Request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(body)})
		answer, lose := p.answer, p.lose
		p.mu.Unlock()
		if lose != nil {
			if status, msg, ok := lose(r); ok {
				rp.ServeHTTP(httptest.NewRecorder(), r)
				writeXML(w, status, msg)
				return
			}
		}
		if answer != nil {
			if status, msg, ok := answer(r); ok {
				writeXML(w, status, msg)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	p.URL = hs.URL
	return p
}

func writeXML(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// Answer makes f answer, instead of MinIO, the requests for which it
// returns ok.
func (p *Proxy) Answer(f func(r *http.Request) (status int, body string, ok bool)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answer = f
}

// LoseAnswer lets MinIO carry out the requests for which f returns ok,
// but answers the client with f's status and body instead: a lost answer.
func (p *Proxy) LoseAnswer(f func(r *http.Request) (status int, body string, ok bool)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lose = f
}

// RewriteHeader lets f change the headers of MinIO's answers.
func (p *Proxy) RewriteHeader(f func(r *http.Request, h http.Header)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.header = f
}

// Requests returns the requests recorded so far.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.reqs...)
}

// Matching returns the recorded requests with the method whose raw query
// contains query.
func (p *Proxy) Matching(method, query string) []Request {
	var out []Request
	for _, q := range p.Requests() {
		if q.Method == method && strings.Contains(q.Query, query) {
			out = append(out, q)
		}
	}
	return out
}

// Client is an S3 client with the root user's keys that goes through the
// proxy.
func (p *Proxy) Client() *s3.Client { return p.srv.S3ClientAt(p.URL, p.srv.RootUser, p.srv.RootPass) }

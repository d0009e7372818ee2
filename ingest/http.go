package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/s3connector/s3connector/config"
)

// IdempotencyHeader carries File.IdempotencyKey on every http import.
const IdempotencyHeader = "Idempotency-Key"

// ErrSinkMisconfigured is in the chain of an http import error whose answer
// blames the importer's configuration rather than the file: a redirect, 401
// and 407 (credentials refused), 403 (not allowed), 404, 405, 410 and 421
// (the URL does not accept files), 409 (the sink's own state). The same
// request fails for every file, so such an error is transient: the files
// stay in the inbox until the sink or importer.url/importer.headers is fixed.
var ErrSinkMisconfigured = errors.New("the sink or its credentials are wrong, not the file")

// HTTP POSTs each file's body to URL. 2xx: imported; a status listed in
// PermanentStatus (by default 400, 413, 415 and 422): permanent, the sink
// rejected the content; any other answer, network errors and timeouts:
// transient. Statuses that blame the sink or the credentials (see
// ErrSinkMisconfigured) are transient even though they are 4xx: sending a
// good file to error/ because an API key expired would be wrong.
//
// Redirects are not followed: a client following a 301/302/303 turns the
// POST into a GET without body, so the redirect target's 200 would count as
// imported although the sink got nothing, and Headers (an API key) would go
// to whatever host the Location names. A 3xx answer is a transient error
// naming the Location: the URL is misconfigured for every file, so the files
// stay in the inbox until importer.url is set to the final address.
//
// Error messages never show URL's query string or userinfo (a ?token=...
// would otherwise reach logs and error reports).
type HTTP struct {
	URL     string
	Headers map[string]string
	// Timeout bounds one file; 0 means no limit beyond the run's context.
	Timeout time.Duration
	// PermanentStatus lists the answers that reject the file's content;
	// nil means config.DefaultPermanentStatus(), empty means none.
	PermanentStatus []int
	// Client sends the requests; nil means a client shared by every HTTP
	// without one, pooled for config.DefaultWorkers (see NewHTTPClient).
	// The factory of type "http" gives each importer its own, sized to the
	// connection's workers. Import uses a copy that does not follow
	// redirects; Client itself is not modified.
	Client *http.Client
}

// NewHTTPClient returns a client for an importer that sends at most conns
// requests at a time (the connection's workers) to one host: it keeps that
// many idle connections, so that workers do not open a new connection per
// file (http.DefaultTransport keeps 2 per host), and opens no more than that.
// Its other settings (proxy from the environment, dial and TLS handshake
// timeouts, HTTP/2) are those of http.DefaultTransport.
func NewHTTPClient(conns int) *http.Client {
	conns = max(conns, 1)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conns
	t.MaxIdleConnsPerHost = conns
	t.MaxConnsPerHost = conns
	return &http.Client{Transport: t}
}

// defaultHTTPClient serves HTTP values built without a Client.
var defaultHTTPClient = sync.OnceValue(func() *http.Client { return NewHTTPClient(config.DefaultWorkers) })

// Import implements Importer.
func (h HTTP) Import(ctx context.Context, f File, body io.Reader) error {
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	// The transport may still be reading the body in its own goroutine
	// when Do returns (a sink that answers before reading it all), but the
	// caller closes the body once Import returns: wait until the transport
	// is done with it, which it signals by closing it (cancelling the
	// request first makes it stop writing).
	ctx, cancel := context.WithCancel(ctx)
	rb := &requestBody{r: body, closed: make(chan struct{})}
	defer func() {
		cancel()
		if rb != nil {
			<-rb.closed
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, rb)
	if err != nil {
		rb = nil
		return Permanent(fmt.Errorf("build request for %q: %w", f.Key, redactErr(err)))
	}
	req.ContentLength = f.Size
	if f.Size == 0 {
		req.Body, rb = http.NoBody, nil
	}
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	ct := f.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set(IdempotencyHeader, f.IdempotencyKey)
	req.Header.Set("X-S3connector-Key", f.Key)
	req.Header.Set("X-S3connector-Etag", f.ETag)
	client := h.Client
	if client == nil {
		client = defaultHTTPClient()
	}
	// A shallow copy shares the Transport (and its connection pool) but has
	// its own CheckRedirect: the caller's client, possibly shared with
	// others, stays as it is.
	noRedirect := *client
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Do(req)
	if err != nil {
		return fmt.Errorf("post %q: %w", f.Key, redactErr(err))
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	io.Copy(io.Discard, resp.Body) // reuse the connection
	resp.Body.Close()
	msg = bytes.TrimSpace(msg)
	s := resp.StatusCode
	answered := fmt.Sprintf("post %q to %s: sink answered %d %s", f.Key, redactURL(h.URL), s, http.StatusText(s))
	switch {
	case s >= 200 && s < 300:
		return nil
	case s >= 300 && s < 400:
		loc := "(no Location header)"
		if l, err := resp.Location(); err == nil {
			loc = redactURL(l.String())
		}
		return fmt.Errorf("%s redirecting to %s: %w: redirects are not followed (the body and headers would be lost or sent elsewhere): set importer.url to the final address",
			answered, loc, ErrSinkMisconfigured)
	case h.permanent(s):
		return Rejected(fmt.Sprintf("the import service rejected the file (HTTP %d %s)", s, http.StatusText(s)),
			fmt.Errorf("%s, a rejection of the file's content (importer.permanent_status): %s", answered, msg))
	}
	if advice, ok := sinkAdvice[s]; ok {
		return fmt.Errorf("%s: %w: %s; the file stays in the inbox and is retried on the next run: %s", answered, ErrSinkMisconfigured, advice, msg)
	}
	return fmt.Errorf("%s: %s", answered, msg)
}

// requestBody is an http import's request body: closed is closed once the
// transport has closed it (it always does, even on errors), after its last
// read.
type requestBody struct {
	r      io.Reader
	once   sync.Once
	closed chan struct{}
}

func (b *requestBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *requestBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// sinkAdvice says, per status that blames the sink or the importer's
// configuration, what to check.
var sinkAdvice = map[int]string{
	http.StatusUnauthorized:       "it refused the credentials: check importer.headers (an expired or wrong API key or token)",
	http.StatusProxyAuthRequired:  "a proxy between s3connector and the sink wants credentials: check the proxy settings (HTTPS_PROXY)",
	http.StatusForbidden:          "it does not let these credentials post files: check importer.headers and the sink's permissions",
	http.StatusNotFound:           "there is nothing at importer.url: check the URL",
	http.StatusMethodNotAllowed:   "importer.url does not accept POST: check the URL",
	http.StatusGone:               "importer.url is no longer served: set it to the sink's current address",
	http.StatusMisdirectedRequest: "the server at importer.url does not serve that host name: check the URL (and the proxy or load balancer in front of the sink)",
	http.StatusConflict:           "the sink reported a conflict with its own state (e.g. the same Idempotency-Key still in progress)",
}

// permanent reports whether status s rejects the file's content.
func (h HTTP) permanent(s int) bool {
	if h.PermanentStatus == nil {
		return slices.Contains(defaultPermanentStatus, s)
	}
	return slices.Contains(h.PermanentStatus, s)
}

// defaultPermanentStatus is config.DefaultPermanentStatus(), taken once.
var defaultPermanentStatus = config.DefaultPermanentStatus()

// redactErr replaces the URL of every *url.Error in err's chain (the http
// client and url.Parse put the full URL there) with its redacted form. The
// chain is kept, so errors.Is(err, context.DeadlineExceeded) still works.
func redactErr(err error) error {
	for e := err; e != nil; {
		var ue *url.Error
		if !errors.As(e, &ue) {
			break
		}
		ue.URL = redactURL(ue.URL)
		e = ue.Err
	}
	return err
}

// redactURL drops userinfo and replaces the query string of raw with
// REDACTED (https://host/path?REDACTED): they often hold credentials. A URL
// that does not parse is cut at the first '?' or '#' and loses anything up
// to an '@' in its authority.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		u.User = nil
		if u.RawQuery != "" || u.ForceQuery {
			u.RawQuery, u.ForceQuery = "REDACTED", false
		}
		u.Fragment, u.RawFragment = "", ""
		return u.String()
	}
	s, query := raw, false
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s, query = s[:i], s[i] == '?'
	}
	rest, scheme := s, ""
	if i := strings.Index(s, "://"); i >= 0 {
		scheme, rest = s[:i+3], s[i+3:]
	}
	host, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
	}
	s = scheme + host + path
	if query {
		s += "?REDACTED"
	}
	return s
}

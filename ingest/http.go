package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// IdempotencyHeader carries File.IdempotencyKey on every http import.
const IdempotencyHeader = "Idempotency-Key"

// HTTP POSTs each file's body to URL. 2xx: imported; 4xx other than 408 and
// 429: permanent (the sink rejected the content); 5xx, 408, 429, network
// errors and timeouts: transient.
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
	// Client defaults to http.DefaultClient. Import uses a copy of it that
	// does not follow redirects; Client itself is not modified.
	Client *http.Client
}

// Import implements Importer.
func (h HTTP) Import(ctx context.Context, f File, body io.Reader) error {
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, body)
	if err != nil {
		return Permanent(fmt.Errorf("build request for %q: %w", f.Key, redactErr(err)))
	}
	req.ContentLength = f.Size
	if f.Size == 0 {
		req.Body = http.NoBody
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
	client := http.DefaultClient
	if h.Client != nil {
		client = h.Client
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
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s >= 300 && s < 400:
		loc := "(no Location header)"
		if l, err := resp.Location(); err == nil {
			loc = redactURL(l.String())
		}
		return fmt.Errorf("post %q to %s: sink answered %d %s redirecting to %s; redirects are not followed (the body and headers would be lost or sent elsewhere): set importer.url to the final address",
			f.Key, redactURL(h.URL), s, http.StatusText(s), loc)
	case s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests:
		return Permanent(fmt.Errorf("post %q: sink answered %d %s: %s", f.Key, s, http.StatusText(s), msg))
	default:
		return fmt.Errorf("post %q: sink answered %d %s: %s", f.Key, s, http.StatusText(s), msg)
	}
}

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

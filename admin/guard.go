package admin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"
)

// hostPolicy is the set of host names (with an optional port) that Host
// and Origin may name. A browser tricked by DNS rebinding sends the
// attacker's name in both, so checking them keeps a page elsewhere from
// reaching a loopback listener even if it had a token.
type hostPolicy []hostPort

type hostPort struct{ host, port string }

func newHostPolicy(allowed []string) (hostPolicy, error) {
	if len(allowed) == 0 {
		return hostPolicy{{"localhost", ""}, {"127.0.0.1", ""}, {"::1", ""}}, nil
	}
	var p hostPolicy
	for _, a := range allowed {
		hp, ok := splitHost(a)
		if !ok || hp.host == "" {
			return nil, fmt.Errorf("admin: allowed host %q: want a host name or host:port", a)
		}
		p = append(p, hp)
	}
	return p, nil
}

// splitHost parses "host", "host:port", "[v6]:port" or "[v6]", lowercased,
// without a trailing dot.
func splitHost(s string) (hostPort, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || strings.ContainsAny(s, "/@?#\\ ") {
		return hostPort{}, false
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = s, ""
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		} else if strings.Contains(host, ":") && net.ParseIP(host) == nil {
			return hostPort{}, false
		}
	}
	return hostPort{strings.TrimSuffix(host, "."), port}, true
}

func (p hostPolicy) allows(s string) bool {
	hp, ok := splitHost(s)
	if !ok {
		return false
	}
	for _, a := range p {
		if a.host == hp.host && (a.port == "" || a.port == hp.port) {
			return true
		}
	}
	return false
}

type tokenIDKey struct{}

// tokenID is the id of the token the request was authenticated with.
func tokenID(r *http.Request) string {
	id, _ := r.Context().Value(tokenIDKey{}).(string)
	return id
}

// guard wraps the routes: response headers, panic recovery, Host and
// Origin checks, then the bearer token.
func (a *API) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// JSON only, never cached, never framed, never sniffed. No CORS
		// header is ever set: browsers keep other origins' pages out.
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log.Error("admin API handler panicked", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Any("panic", v), zap.Stack("stack"))
				a.writeError(w, r, errorf(http.StatusInternalServerError, CodeInternal, "internal error; the daemon log has the details"))
			}
		}()
		if !a.hosts.allows(r.Host) {
			a.writeError(w, r, errorf(http.StatusForbidden, CodeForbidden, fmt.Sprintf("host %q is not an allowed name of this API (admin allowed hosts)", clip(r.Host, 100))))
			return
		}
		if refused := a.checkOrigin(r); refused != "" {
			a.writeError(w, r, errorf(http.StatusForbidden, CodeForbidden, refused))
			return
		}
		id, refused := a.tokens.Load().match(r)
		if refused != "" {
			h.Set("WWW-Authenticate", `Bearer realm="s3connector admin"`)
			a.writeError(w, r, errorf(http.StatusUnauthorized, CodeUnauthorized, refused+": the API needs the header Authorization: Bearer <token> (a token from the admin token files; never in the URL or a cookie)"))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tokenIDKey{}, id)))
	})
}

// checkOrigin refuses cross-site browser requests: an Origin naming
// another host (or "null"), or Sec-Fetch-Site cross-site. Requests without
// either (curl, control planes) pass.
func (a *API) checkOrigin(r *http.Request) string {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return "cross-site requests are refused (Sec-Fetch-Site: " + site + ")"
	}
	origins := r.Header.Values("Origin")
	if len(origins) == 0 {
		return ""
	}
	if len(origins) > 1 {
		return "more than one Origin header"
	}
	u, err := url.Parse(origins[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || !a.hosts.allows(u.Host) {
		return fmt.Sprintf("origin %q is not allowed: only pages served by this API may call it", clip(origins[0], 100))
	}
	return ""
}

// clip shortens s, a value from the request, for a message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

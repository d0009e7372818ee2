// Package web serves the connection wizard page: the seeds' Manage
// Connections list and the four steps (Connection Type, S3 Bucket, IAM
// Role, Validate), then Activate. It is plain HTML, CSS and JavaScript
// embedded in the binary (no build step), and talks to the admin API
// (package admin, under APIPrefix) from the same origin.
//
// Mount Handler at "/" on the admin API's listener, beside the API:
//
//	mux := http.NewServeMux()
//	mux.Handle(admin.Prefix+"/", api.Handler())
//	mux.Handle("/", web.Handler())
//
// The page's files hold no secret, so they are served without a token; the
// page asks for the bearer token once, keeps it in memory (or, if the user
// asks, in the tab's sessionStorage) and sends it only in the Authorization
// header of its API calls, never in a URL or a cookie. Every answer carries
// a strict Content-Security-Policy (scripts and styles from the page's own
// origin only, no inline script, Trusted Types so that no string can become
// HTML, never framed) and no CORS header.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// APIPrefix is where the page expects the admin API (admin.Prefix; a test
// keeps the two equal).
const APIPrefix = "/api/v1"

// ContentSecurityPolicy is the policy of every answer. The policy
// (the first six directives) plus object-src 'none' and Trusted Types: with
// require-trusted-types-for 'script' and no policy allowed, assigning a
// string to innerHTML (or any other HTML sink) throws in the browser, so
// data from a bucket or a user can only ever become text.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; " +
	"base-uri 'none'; form-action 'self'; object-src 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

//go:embed assets
var assets embed.FS

// contentTypes are the types of the page's files, fixed here rather than
// taken from the system's MIME tables (nosniff makes them matter).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// handler serves the embedded files.
type handler struct {
	files map[string]asset // by URL path
}

// Handler returns the page's handler: GET and HEAD of "/" (the page) and
// its files; anything else is 404, or 405 for another method.
func Handler() http.Handler {
	h := &handler{files: map[string]asset{}}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			ct = "application/octet-stream"
		}
		h.files[strings.TrimPrefix(p, "assets")] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		// The files are compiled in: walking them cannot fail.
		panic("web: embedded assets: " + err.Error())
	}
	h.files["/"] = h.files["/index.html"]
	delete(h.files, "/index.html")
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	hdr.Set("Cross-Origin-Resource-Policy", "same-origin")
	hdr.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
	a, ok := h.files[r.URL.Path]
	if !ok {
		plain(w, http.StatusNotFound, "not found: the wizard page is at /, the admin API under "+APIPrefix+"/")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		plain(w, http.StatusMethodNotAllowed, "method not allowed: the page's files answer GET and HEAD")
		return
	}
	// Revalidated on every load (the ETag makes that a 304), so a new
	// daemon's page is never mixed with an old script.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", a.etag)
	hdr.Set("Content-Type", a.contentType)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}

package web_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/s3connector/s3connector/admin"
	"github.com/s3connector/s3connector/web"
)

func TestAPIPrefixIsAdmins(t *testing.T) {
	if web.APIPrefix != admin.Prefix {
		t.Fatalf("the page calls %s, the API is under %s", web.APIPrefix, admin.Prefix)
	}
	// app.js holds the prefix too.
	js, err := os.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `const API = "`+admin.Prefix+`";`) {
		t.Errorf("app.js does not call the API at %s", admin.Prefix)
	}
}

func TestHandlerHeaders(t *testing.T) {
	h := web.Handler()
	tests := []struct {
		method, path, origin string
		code                 int
		contentType          string
	}{
		{"GET", "/", "", 200, "text/html; charset=utf-8"},
		{"HEAD", "/", "", 200, "text/html; charset=utf-8"},
		{"GET", "/app.js", "", 200, "text/javascript; charset=utf-8"},
		{"GET", "/rules.js", "https://evil.example", 200, "text/javascript; charset=utf-8"},
		{"GET", "/app.css", "", 200, "text/css; charset=utf-8"},
		{"GET", "/favicon.svg", "", 200, "image/svg+xml"},
		{"GET", "/index.html", "", 404, "text/plain; charset=utf-8"},
		{"GET", "/assets/app.js", "", 404, "text/plain; charset=utf-8"},
		{"GET", "/../web.go", "", 404, "text/plain; charset=utf-8"},
		{"POST", "/", "", 405, "text/plain; charset=utf-8"},
		{"OPTIONS", "/app.js", "https://evil.example", 405, "text/plain; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://127.0.0.1:9465"+tt.path, nil)
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
				req.Header.Set("Access-Control-Request-Method", "GET")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			hdr := rec.Header()
			want := map[string]string{
				"Content-Security-Policy": web.ContentSecurityPolicy,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"X-Frame-Options":         "DENY",
				"Content-Type":            tt.contentType,
			}
			for k, v := range want {
				if got := hdr.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			for k := range hdr {
				if strings.HasPrefix(strings.ToLower(k), "access-control-") {
					t.Errorf("CORS header %s: %q", k, hdr.Get(k))
				}
			}
			if hdr.Get("Set-Cookie") != "" {
				t.Errorf("Set-Cookie: %q", hdr.Get("Set-Cookie"))
			}
			if tt.code == 405 && hdr.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow: %q", hdr.Get("Allow"))
			}
			if tt.method == "HEAD" && rec.Body.Len() != 0 {
				t.Errorf("HEAD has a body of %d bytes", rec.Body.Len())
			}
		})
	}
}

// The issue's policy is the start of the one served, word for word.
func TestContentSecurityPolicy(t *testing.T) {
	const issue = "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	if !strings.HasPrefix(web.ContentSecurityPolicy, issue+";") {
		t.Errorf("policy %q does not start with %q", web.ContentSecurityPolicy, issue)
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "data:", "http:", "https:"} {
		if strings.Contains(web.ContentSecurityPolicy, bad) {
			t.Errorf("policy allows %s", bad)
		}
	}
}

func TestETag(t *testing.T) {
	h := web.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/app.js", nil))
	etag := rec.Header().Get("ETag")
	if etag == "" || rec.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, rec.Header().Get("Cache-Control"))
	}
	req := httptest.NewRequest("GET", "/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", rec.Code)
	}
}

// TestNoHTMLFromStrings reads the page's sources: no inline script or
// style, no event handler attributes (the CSP would block them anyway, and
// the page would silently break), and in the scripts no API that turns a
// string into HTML or code. Data from a bucket or a user reaches the page
// only as text.
func TestNoHTMLFromStrings(t *testing.T) {
	sinks := regexp.MustCompile(`\b(innerHTML|outerHTML|insertAdjacentHTML|createContextualFragment|document\.write|eval|Function|setTimeout\(\s*["'` + "`" + `]|DOMParser|srcdoc)\b`)
	inline := regexp.MustCompile(`(?i)<script(\s[^>]*)?>[^<]+</script>|<script(?:(?:\s+(?:defer|type="[^"]*"))*)\s*>|\sstyle\s*=|\son[a-z]+\s*=|javascript:|<style`)
	err := filepath.WalkDir("assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		src := string(b)
		switch filepath.Ext(p) {
		case ".js":
			for i, line := range strings.Split(src, "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "//") {
					continue
				}
				if m := sinks.FindString(line); m != "" {
					t.Errorf("%s:%d uses %s: build elements with el()/textContent instead", p, i+1, m)
				}
			}
		case ".html":
			for _, m := range inline.FindAllString(src, -1) {
				t.Errorf("%s: inline script, style or handler %q", p, m)
			}
			for _, s := range regexp.MustCompile(`<script[^>]*>`).FindAllString(src, -1) {
				if !strings.Contains(s, ` src="`) {
					t.Errorf("%s: script without src: %s", p, s)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

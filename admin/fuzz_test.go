package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAPI sends arbitrary methods, paths and bodies, authenticated, to the
// real handlers on a real store: no answer is a 5xx, none panics (the
// guard would turn a panic into a 500), and every answer is the JSON
// envelope. The seed corpus is in testdata/fuzz/FuzzAPI and below.
func FuzzAPI(f *testing.F) {
	for _, s := range []struct{ method, path, body string }{
		{"POST", "/api/v1/connections", createBody},
		{"POST", "/api/v1/connections", `{"name":"acme","external_id":"x"}`},
		{"POST", "/api/v1/connections", `{"name":"a\u0000b","account_id":"1","bucket":"..","region":"x","base_path":"/../"}`},
		{"POST", "/api/v1/connections", `[1,2,{"name":null}]`},
		{"POST", "/api/v1/connections", `{"name":"acme"}{"name":"acme"}`},
		{"PATCH", "/api/v1/connections/acme", `{"bucket":"acme-imports","base_path":"a/*"}`},
		{"PATCH", "/api/v1/connections/acme", `{"region":{"nested":[1e999]}}`},
		{"POST", "/api/v1/connections/acme/validate", ``},
		{"POST", "/api/v1/connections/acme/activate", `{}`},
		{"POST", "/api/v1/connections/acme/disable", ``},
		{"DELETE", "/api/v1/connections/acme", ``},
		{"GET", "/api/v1/connections/acme/iam", ``},
		{"GET", "/api/v1/connections/..%2f..%2fetc%2fpasswd", ``},
		{"GET", "/api/v1/roles/s3connector-acme/permissions-policy?account_id=123456789012", ``},
		{"GET", "/api/v1/roles/%ff%fe/permissions-policy", ``},
		{"OPTIONS", "/api/v1/connections", ``},
		{"GET", "//api/v1/../v1/./connections", ``},
	} {
		f.Add(s.method, s.path, s.body)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, method, path, body string) {
		req, err := http.NewRequest(method, "http://"+testHost+path, strings.NewReader(body))
		if err != nil || req.URL.Host != testHost {
			t.Skip() // not a request a client could send
		}
		req.RequestURI = req.URL.RequestURI()
		req.Header.Set("Authorization", "Bearer "+testToken)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.api.Handler().ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q %q: %d\n%s", method, path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 300 && rec.Code < 400 {
			return // ServeMux cleaning a path ("/a/../b"): a redirect
		}
		var env struct{ Status string }
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("%s %q: answer %d is not JSON: %v\n%s", method, path, rec.Code, err, rec.Body)
		}
		if path != "/api/v1/openapi.json" && env.Status != "success" && env.Status != "error" {
			t.Fatalf("%s %q: no envelope: %s", method, path, rec.Body)
		}
	})
}

package admin

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	dec := json.NewDecoder(strings.NewReader(string(OpenAPI)))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q, want 3.x", doc.OpenAPI)
	}
	return doc
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// TestOpenAPIMatchesRoutes: every route is documented, every documented
// operation is a route, and every documented operation answers on the real
// handler (not 404 or 405, and never 5xx).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	e := newEnv(t, func(o *Options) { o.ErrorFiles = &fakeErrorFiles{} })
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			if slices.Contains(httpMethods, method) {
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	routes := map[string]bool{}
	for _, rt := range e.api.routeTable() {
		key := rt.method + " " + rt.path
		routes[key] = true
		if !documented[key] {
			t.Errorf("route %s is not in openapi.json", key)
		}
	}
	for key := range documented {
		if !routes[key] {
			t.Errorf("openapi.json documents %s, which is no route", key)
		}
	}

	// Every documented operation answers, on a connection that exists.
	e.do("POST", "/api/v1/connections", createBody).want(t, http.StatusCreated)
	param := regexp.MustCompile(`\{[a-z_]+\}`)
	values := map[string]string{"{name}": "acme", "{role}": "s3connector-acme"}
	// Mutating operations last, delete at the very end.
	order := func(k string) int {
		switch {
		case strings.HasPrefix(k, "DELETE"):
			return 3
		case strings.HasPrefix(k, "POST"), strings.HasPrefix(k, "PATCH"):
			return 2
		}
		return 1
	}
	keys := make([]string, 0, len(documented))
	for k := range documented {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if d := order(a) - order(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, key := range keys {
		method, path, _ := strings.Cut(key, " ")
		path = param.ReplaceAllStringFunc(path, func(p string) string { return values[p] })
		body := ""
		switch {
		case method == "POST" && strings.HasSuffix(path, "/connections"):
			body = strings.Replace(createBody, `"acme"`, `"second"`, 1)
			body = strings.Replace(body, "acme-imports", "second-imports", 1)
		case method == "PATCH":
			body = `{"base_path":"imports/"}`
		}
		a := e.do(method, path, body)
		if a.Code == http.StatusNotFound || a.Code == http.StatusMethodNotAllowed || a.Code >= 500 {
			t.Errorf("%s (documented) answers %d: %s", key, a.Code, a.Body)
		}
	}
}

// TestOpenAPIServed: the document is served as it is embedded.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	a := e.do("GET", "/api/v1/openapi.json", "").want(t, http.StatusOK)
	if a.Body != string(OpenAPI) {
		t.Error("served document differs from the embedded one")
	}
}

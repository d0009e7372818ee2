package admin

import (
	"net/http"
	"slices"
	"strings"
)

// route is one method and path of the API. The OpenAPI document lists
// exactly these (TestOpenAPIMatchesRoutes).
type route struct {
	method, path string
	handler      func(w http.ResponseWriter, r *http.Request) error
}

// Prefix is the path of every route.
const Prefix = "/api/v1"

func (a *API) routeTable() []route {
	return []route{
		{"GET", Prefix + "/connections", a.listConnections},
		{"POST", Prefix + "/connections", a.createConnection},
		{"GET", Prefix + "/connections/{name}", a.getConnection},
		{"PATCH", Prefix + "/connections/{name}", a.editConnection},
		{"DELETE", Prefix + "/connections/{name}", a.deleteConnection},
		{"GET", Prefix + "/connections/{name}/iam", a.iamSetup},
		{"POST", Prefix + "/connections/{name}/validate", a.validateConnection},
		{"POST", Prefix + "/connections/{name}/activate", a.activateConnection},
		{"POST", Prefix + "/connections/{name}/disable", a.disableConnection},
		{"GET", Prefix + "/connections/{name}/errors", a.listErrorFiles},
		{"POST", Prefix + "/connections/{name}/requeue", a.requeueErrorFiles},
		{"GET", Prefix + "/roles/{role}/permissions-policy", a.rolePermissionsPolicy},
		{"GET", Prefix + "/regions", a.listRegions},
		{"GET", Prefix + "/openapi.json", a.openAPI},
	}
}

// routes registers one handler per route, and for each path a method-less
// pattern that answers 405 in the error envelope (a pattern with a method
// is more specific, so it wins when the method matches), and "/" for 404.
func (a *API) routes() *http.ServeMux {
	mux := http.NewServeMux()
	methods := map[string][]string{}
	var paths []string
	for _, rt := range a.routeTable() {
		mux.HandleFunc(rt.method+" "+rt.path, a.handle(rt.handler))
		if _, ok := methods[rt.path]; !ok {
			paths = append(paths, rt.path)
		}
		methods[rt.path] = append(methods[rt.path], rt.method)
	}
	for _, p := range paths {
		allow := methods[p]
		if slices.Contains(allow, "GET") {
			allow = append(allow, "HEAD")
		}
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			a.writeError(w, r, errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method "+clip(r.Method, 20)+" is not allowed here; allowed: "+strings.Join(allow, ", ")))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.writeError(w, r, errorf(http.StatusNotFound, CodeNotFound, "no such API route; the routes are listed in "+Prefix+"/openapi.json"))
	})
	return mux
}

// handle adapts a handler that returns its error answer.
func (a *API) handle(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			a.writeError(w, r, err)
		}
	}
}

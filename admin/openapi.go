package admin

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3 document of the API, served at
// /api/v1/openapi.json. TestOpenAPIMatchesRoutes keeps it and the route
// table in step.
//
//go:embed openapi.json
var OpenAPI []byte

func (a *API) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(OpenAPI)
	if err != nil {
		a.log.Debug("write openapi.json")
	}
	return nil
}

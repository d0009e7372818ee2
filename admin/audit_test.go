package admin

import (
	"net/http"
	"reflect"
	"testing"
)

// TestAuditLinePerStateChange: every state-changing request, refused or
// not, writes one audit line with the token id, the action, the
// connection and the result; reads write none.
func TestAuditLinePerStateChange(t *testing.T) {
	e := newEnv(t)
	e.do("POST", "/api/v1/connections", createBody).want(t, http.StatusCreated)
	e.do("GET", "/api/v1/connections", "").want(t, http.StatusOK)
	e.do("GET", "/api/v1/connections/acme/iam", "").want(t, http.StatusOK)
	e.do("POST", "/api/v1/connections/acme/activate", "").want(t, http.StatusConflict)
	e.do("PATCH", "/api/v1/connections/acme", `{"region":"eu-west-1"}`).want(t, http.StatusOK)
	e.do("POST", "/api/v1/connections/acme/validate", "").want(t, http.StatusOK)
	e.do("POST", "/api/v1/connections/acme/activate", "").want(t, http.StatusOK)
	e.do("POST", "/api/v1/connections/acme/disable", "").want(t, http.StatusOK)
	e.do("DELETE", "/api/v1/connections/acme", "").want(t, http.StatusOK)
	want := []string{"create ok", "activate conflict", "edit ok", "validate ok", "activate ok", "disable ok", "delete ok"}
	if got := e.auditLines(); !reflect.DeepEqual(got, want) {
		t.Errorf("audit lines %q, want %q", got, want)
	}
	for _, en := range e.logs.FilterLoggerName("audit").All() {
		m := en.ContextMap()
		if m["token"] != testTokenID || m["connection"] != "acme" || en.Time.IsZero() {
			t.Errorf("audit line %v at %v", m, en.Time)
		}
	}
}

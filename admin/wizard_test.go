package admin

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/store"
)

// TestWizard walks the seeds' flow: create (draft), IAM step, a failing
// validation (Activate refused), a passing one, Activate, the list, an
// edit that makes it a draft again, Disable, Delete.
func TestWizard(t *testing.T) {
	e := newEnv(t)

	var c view
	a := e.do("POST", "/api/v1/connections", createBody).want(t, http.StatusCreated)
	a.decode(t, &c)
	if c.Status != "draft" || c.BasePath != "imports/" || c.RoleName != "s3connector-acme" || c.Source != SourceAPI {
		t.Errorf("created %+v; want a draft with base path imports/ and role s3connector-acme", c)
	}
	if got := a.Header.Get("Location"); got != "/api/v1/connections/acme" {
		t.Errorf("Location %q", got)
	}
	if strings.Contains(a.Body, "external_id") {
		t.Errorf("the connection view shows the External ID:\n%s", a.Body)
	}
	stored, err := e.store.Get(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}

	// IAM Role step.
	var iam struct {
		RoleName     string `json:"role_name"`
		RoleNameNote string `json:"role_name_note"`
		ExternalID   string `json:"external_id"`
		Instructions string `json:"instructions"`
	}
	a = e.do("GET", "/api/v1/connections/acme/iam", "").want(t, http.StatusOK)
	a.decode(t, &iam)
	var raw map[string]any
	a.decode(t, &raw)
	want := connector.PoliciesFor(testPrincipal, stored.ConfigConnection(testTemplate))
	if iam.RoleName != "s3connector-acme" || iam.RoleNameNote != "system-generated, do not modify" || iam.ExternalID != stored.ExternalID {
		t.Errorf("IAM step: role %q (%q), external id matches: %v", iam.RoleName, iam.RoleNameNote, iam.ExternalID == stored.ExternalID)
	}
	var trust, perms connector.PolicyDocument
	remarshal(t, raw["trust_policy"], &trust)
	remarshal(t, raw["permissions_policy"], &perms)
	if !reflect.DeepEqual(trust, want.Trust) || !reflect.DeepEqual(perms, want.Permissions) {
		t.Errorf("IAM step policies differ from connector.PoliciesFor:\n%s", a.Body)
	}
	if _, ok := raw["kms_key_policy_statement"]; ok {
		t.Error("a KMS statement without a KMS key")
	}
	for _, s := range []string{"Step 1: Create the IAM role", stored.ExternalID, "Connection successful. Found N files in bucket.", "/api/v1/connections/acme/validate"} {
		if !strings.Contains(iam.Instructions, s) {
			t.Errorf("instructions lack %q", s)
		}
	}

	// Validate before the customer's role exists: Validation Failed.
	e.val.set(func(f *fakeValidator) { f.fail = true })
	var res struct {
		Passed      bool   `json:"passed"`
		Message     string `json:"message"`
		Summary     string `json:"summary"`
		SuccessLine string `json:"success_line"`
		FailedCheck string `json:"failed_check"`
		CanActivate bool   `json:"can_activate"`
		Checks      []struct{ Name, State, Detail, Error string }
		Advice      *struct {
			Headline string
			Checks   []string
		}
		Connection view
	}
	e.do("POST", "/api/v1/connections/acme/validate", "").want(t, http.StatusOK).decode(t, &res)
	if res.Passed || res.Message != "Validation Failed" || res.CanActivate || res.FailedCheck != connector.CheckAssumeRole || res.Advice == nil {
		t.Fatalf("failed validation: %+v", res)
	}
	if !strings.Contains(res.Advice.Headline, "Not authorised to perform sts:AssumeRole") || res.Checks[0].State != CheckFail {
		t.Errorf("advice %q, checks %+v", res.Advice.Headline, res.Checks)
	}
	a = e.do("POST", "/api/v1/connections/acme/activate", "").want(t, http.StatusConflict)
	if !strings.Contains(a.Error.Message, "the last validation failed") {
		t.Errorf("activate refused with %q; want the reason", a.Error.Message)
	}

	// Revalidate once the role exists: Validation Successful.
	e.clock.advance(time.Minute)
	e.val.set(func(f *fakeValidator) { f.fail = false })
	res.Advice = nil
	e.do("POST", "/api/v1/connections/acme/validate", "").want(t, http.StatusOK).decode(t, &res)
	if !res.Passed || res.Message != "Validation Successful" || !res.CanActivate || res.Advice != nil ||
		res.SuccessLine != "Connection successful. Found 3 files in bucket." || res.Connection.Status != "validated" {
		t.Fatalf("passing validation: %+v", res)
	}
	if res.Summary != SummaryValidationSuccessful {
		t.Errorf("summary %q", res.Summary)
	}
	states := map[string]string{}
	for _, ch := range res.Checks {
		states[ch.Name] = ch.State
	}
	if states[connector.CheckTrustPolicy] != CheckSkip || states[connector.CheckReadWrite] != CheckPass {
		t.Errorf("check states %v", states)
	}
	if _, running := e.sup.running("acme"); running {
		t.Error("a validated connection runs before Activate")
	}

	// Activate: Draft → Active, and the supervisor runs it with the template.
	e.do("POST", "/api/v1/connections/acme/activate", "").want(t, http.StatusOK).decode(t, &c)
	if c.Status != "active" {
		t.Fatalf("after activate: %s", c.Status)
	}
	run, ok := e.sup.running("acme")
	if !ok || run.Status != config.StatusActive || run.Importer.Type != config.ImporterDiscard || run.Schedule != "@every 1m" || run.Workers != 3 ||
		run.ExternalID != stored.ExternalID || run.Bucket != "acme-imports" {
		t.Errorf("supervisor runs %+v, %v", run, ok)
	}
	waiting := 7
	e.sup.mu.Lock()
	e.sup.states["acme"] = RunState{State: "scheduled", LastRun: e.clock.now(), LastRunOK: true, FilesWaiting: &waiting}
	e.sup.mu.Unlock()
	var list struct{ Connections []view }
	e.do("GET", "/api/v1/connections", "").want(t, http.StatusOK).decode(t, &list)
	if len(list.Connections) != 1 || list.Connections[0].Status != "active" || list.Connections[0].FilesWaiting == nil ||
		*list.Connections[0].FilesWaiting != 7 || list.Connections[0].LastRun == nil || !list.Connections[0].LastValidation.Passed {
		t.Errorf("list: %+v", list)
	}

	// Editing where it points makes it a draft again; the supervisor stops it.
	e.do("PATCH", "/api/v1/connections/acme", `{"bucket":"acme-other"}`).want(t, http.StatusOK).decode(t, &c)
	if c.Status != "draft" || c.Bucket != "acme-other" || !strings.Contains(c.StatusReason, "bucket") {
		t.Errorf("after edit: %+v", c)
	}
	if _, running := e.sup.running("acme"); running {
		t.Error("an edited connection still runs")
	}
	a = e.do("POST", "/api/v1/connections/acme/activate", "").want(t, http.StatusConflict)
	if !strings.Contains(a.Error.Message, "settings changed") && !strings.Contains(a.Error.Message, "not been validated") {
		t.Errorf("activate after edit refused with %q", a.Error.Message)
	}
	after, _ := e.store.Get(t.Context(), "acme")
	if after.ExternalID != stored.ExternalID {
		t.Error("the External ID changed with an edit")
	}

	// Disable, then delete; validation brings a disabled one back.
	e.do("POST", "/api/v1/connections/acme/disable", "").want(t, http.StatusOK).decode(t, &c)
	if c.Status != "disabled" {
		t.Errorf("after disable: %s", c.Status)
	}
	var got view
	e.do("GET", "/api/v1/connections/acme", "").want(t, http.StatusOK).decode(t, &got)
	var path []string
	for _, tr := range got.Transitions {
		path = append(path, tr.To)
		if tr.By != testTokenID {
			t.Errorf("transition %+v by %q, want the token id", tr, tr.By)
		}
	}
	if want := []string{"draft", "draft", "validated", "active", "draft", "disabled"}; !reflect.DeepEqual(path, want) {
		t.Errorf("transitions %v, want %v", path, want)
	}
	e.do("DELETE", "/api/v1/connections/acme", "").want(t, http.StatusOK)
	e.do("GET", "/api/v1/connections/acme", "").want(t, http.StatusNotFound)
	if len(e.auditLines()) < 8 {
		t.Errorf("audit lines: %v", e.auditLines())
	}
}

func TestDisabledComesBackOnlyAfterValidation(t *testing.T) {
	e := newEnv(t)
	e.do("POST", "/api/v1/connections", createBody).want(t, http.StatusCreated)
	e.do("POST", "/api/v1/connections/acme/validate", "").want(t, http.StatusOK)
	e.do("POST", "/api/v1/connections/acme/activate", "").want(t, http.StatusOK)
	e.do("DELETE", "/api/v1/connections/acme", "").want(t, http.StatusConflict)
	e.do("POST", "/api/v1/connections/acme/disable", "").want(t, http.StatusOK)
	if _, running := e.sup.running("acme"); running {
		t.Error("a disabled connection runs")
	}
	e.do("POST", "/api/v1/connections/acme/activate", "").want(t, http.StatusConflict)
	e.clock.advance(time.Minute)
	var res struct {
		CanActivate bool `json:"can_activate"`
	}
	e.do("POST", "/api/v1/connections/acme/validate", "").want(t, http.StatusOK).decode(t, &res)
	if !res.CanActivate {
		t.Error("a passing validation does not make a disabled connection ready to activate")
	}
	e.do("POST", "/api/v1/connections/acme/activate", "").want(t, http.StatusOK)
	if _, running := e.sup.running("acme"); !running {
		t.Error("reactivated connection does not run")
	}
	// A failing validation of an active connection makes it a draft, and
	// stops it.
	e.clock.advance(time.Minute)
	e.val.set(func(f *fakeValidator) { f.fail = true })
	var c struct{ Connection view }
	e.do("POST", "/api/v1/connections/acme/validate", "").want(t, http.StatusOK).decode(t, &c)
	if c.Connection.Status != "draft" {
		t.Errorf("after a failed validation of an active connection: %s", c.Connection.Status)
	}
	if _, running := e.sup.running("acme"); running {
		t.Error("a connection whose validation failed still runs")
	}
}

// TestCreateFieldErrors: every field's problem at once, keyed by its name,
// in config validation's words.
func TestCreateFieldErrors(t *testing.T) {
	e := newEnv(t)
	a := e.do("POST", "/api/v1/connections", `{"name":"Acme Corp","account_id":"1234-5678-9012","bucket":"My Bucket","region":"ap-southeast-9","base_path":"/imports","kms_key_arn":"arn:aws:kms:nowhere"}`).want(t, http.StatusBadRequest)
	want := map[string]string{
		"name":        config.ValidateName("Acme Corp").Error(),
		"account_id":  config.ValidateAccountID("1234-5678-9012").Error(),
		"bucket":      config.ValidateBucket("My Bucket").Error(),
		"region":      config.ValidateRegion("ap-southeast-9").Error(),
		"base_path":   config.ValidateBasePath("/imports").Error(),
		"kms_key_arn": "must be a KMS key ARN such as arn:aws:kms:<region>:111122223333:key/<key-id> or an alias ARN ...:alias/<name>, got \"arn:aws:kms:nowhere\"",
	}
	if a.Error.Code != CodeInvalid || !reflect.DeepEqual(a.Error.Fields, want) {
		t.Errorf("fields:\n got %q\nwant %q", a.Error.Fields, want)
	}
	for f := range want {
		if !strings.Contains(a.Error.Message, f+": ") {
			t.Errorf("message %q does not name %s", a.Error.Message, f)
		}
	}

	tests := []struct {
		name, body, field, msg string
	}{
		{"missing name", `{"account_id":"123456789012","bucket":"b-ok","region":"us-east-1"}`, "name", "is required"},
		{"short account", `{"name":"a","account_id":"1234","bucket":"b-ok","region":"us-east-1"}`, "account_id", `must be exactly 12 digits, got "1234"`},
		{"dot dot", `{"name":"a","account_id":"123456789012","bucket":"b-ok","region":"us-east-1","base_path":"a/../b"}`, "base_path", `must not contain "..", got "a/../b"`},
		{"no region", `{"name":"a","account_id":"123456789012","bucket":"b-ok"}`, "region", "is required"},
		{"path trick in name", `{"name":"../etc","account_id":"123456789012","bucket":"b-ok","region":"us-east-1"}`, "name", `may contain only lowercase letters, digits and "-", got "../etc"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.do("POST", "/api/v1/connections", tt.body).want(t, http.StatusBadRequest)
			if a.Error.Fields[tt.field] != tt.msg {
				t.Errorf("fields[%s] = %q, want %q (all: %q)", tt.field, a.Error.Fields[tt.field], tt.msg, a.Error.Fields)
			}
		})
	}
	if l, _ := e.store.List(t.Context()); len(l) != 0 {
		t.Errorf("invalid requests stored %d connections", len(l))
	}
}

func TestNamesAndBasePathsAcrossConnections(t *testing.T) {
	e := newEnv(t)
	e.fileConns = []config.Connection{{Name: "from-file", Status: config.StatusActive, AccountID: validAccountID, Bucket: "shared-bucket", Region: "us-east-1", BasePath: "file/", RoleName: "s3connector-from-file", ExternalID: "abcdefghijklmnopqrstuvwxyz234567"}}
	e.do("POST", "/api/v1/connections", createBody).want(t, http.StatusCreated)

	a := e.do("POST", "/api/v1/connections", createBody).want(t, http.StatusConflict)
	if a.Error.Fields["name"] == "" {
		t.Errorf("duplicate name: %s", a.Body)
	}
	a = e.do("POST", "/api/v1/connections", `{"name":"from-file","account_id":"123456789012","bucket":"other-bucket","region":"us-east-1"}`).want(t, http.StatusConflict)
	if !strings.Contains(a.Error.Message, "configuration file") {
		t.Errorf("name of a file connection: %s", a.Body)
	}
	// Nested base paths in one bucket: one would ingest the other's inbox.
	a = e.do("POST", "/api/v1/connections", `{"name":"nested","account_id":"123456789012","bucket":"shared-bucket","region":"us-east-1","base_path":"file/sub"}`).want(t, http.StatusBadRequest)
	if want := `"file/sub/" is inside connection "from-file"'s base path "file/"; one connection would ingest the other's inbox, archive/ and error/ folders`; a.Error.Fields["base_path"] != want {
		t.Errorf("overlap: %q\nwant %q", a.Error.Fields["base_path"], want)
	}
	a = e.do("POST", "/api/v1/connections", `{"name":"whole","account_id":"123456789012","bucket":"acme-imports","region":"ap-southeast-2"}`).want(t, http.StatusBadRequest)
	if !strings.Contains(a.Error.Fields["base_path"], `contains connection "acme"'s base path "imports/"`) {
		t.Errorf("overlap with a stored connection: %q", a.Error.Fields["base_path"])
	}
	// Editing a connection onto another's base path is refused the same way.
	e.do("PATCH", "/api/v1/connections/acme", `{"bucket":"shared-bucket","base_path":"file"}`).want(t, http.StatusBadRequest)
	// An edit that keeps its own base path is no overlap with itself.
	e.do("PATCH", "/api/v1/connections/acme", `{"base_path":"imports/"}`).want(t, http.StatusOK)
}

func TestConfigFileConnectionsAreReadOnly(t *testing.T) {
	e := newEnv(t)
	e.fileConns = []config.Connection{{Name: "from-file", Status: config.StatusActive, AccountID: validAccountID, Bucket: "file-bucket", Region: "us-east-1", RoleName: "s3connector-from-file", ExternalID: "abcdefghijklmnopqrstuvwxyz234567"}}
	var list struct{ Connections []view }
	e.do("GET", "/api/v1/connections", "").want(t, http.StatusOK).decode(t, &list)
	if len(list.Connections) != 1 || !list.Connections[0].ReadOnly || list.Connections[0].Source != SourceConfig || list.Connections[0].Status != "active" {
		t.Errorf("list: %+v", list.Connections)
	}
	for _, rq := range []struct{ method, path, body string }{
		{"PATCH", "/api/v1/connections/from-file", `{"bucket":"x-bucket"}`},
		{"DELETE", "/api/v1/connections/from-file", ""},
		{"POST", "/api/v1/connections/from-file/validate", ""},
		{"POST", "/api/v1/connections/from-file/activate", ""},
		{"POST", "/api/v1/connections/from-file/disable", ""},
	} {
		a := e.do(rq.method, rq.path, rq.body).want(t, http.StatusConflict)
		if a.Error.Code != CodeReadOnly || !strings.Contains(a.Error.Message, ReadOnlyReason) {
			t.Errorf("%s %s: %s", rq.method, rq.path, a.Body)
		}
	}
	e.do("GET", "/api/v1/connections/from-file", "").want(t, http.StatusOK)
	e.do("GET", "/api/v1/connections/from-file/iam", "").want(t, http.StatusOK)
}

func TestKMSStatement(t *testing.T) {
	e := newEnv(t)
	key := "arn:aws:kms:ap-southeast-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	e.do("POST", "/api/v1/connections", `{"name":"enc","account_id":"123456789012","bucket":"enc-bucket","region":"ap-southeast-2","kms_key_arn":"`+key+`"}`).want(t, http.StatusCreated)
	var raw map[string]any
	e.do("GET", "/api/v1/connections/enc/iam", "").want(t, http.StatusOK).decode(t, &raw)
	var st connector.PolicyStatement
	remarshal(t, raw["kms_key_policy_statement"], &st)
	if want := connector.KMSKeyPolicyStatement("arn:aws:iam::123456789012:role/s3connector-enc"); !reflect.DeepEqual(st, want) {
		t.Errorf("KMS statement %+v, want %+v", st, want)
	}
	if !strings.Contains(raw["instructions"].(string), "Allow the role to use your KMS key") {
		t.Error("instructions lack the KMS step")
	}
}

func TestSupervisorFailureIsReported(t *testing.T) {
	e := newEnv(t)
	e.do("POST", "/api/v1/connections", createBody).want(t, http.StatusCreated)
	e.do("POST", "/api/v1/connections/acme/validate", "").want(t, http.StatusOK)
	e.sup.mu.Lock()
	e.sup.fail = errTest
	e.sup.mu.Unlock()
	a := e.do("POST", "/api/v1/connections/acme/activate", "").want(t, http.StatusServiceUnavailable)
	if !strings.Contains(a.Error.Message, "stored as active") {
		t.Errorf("%s", a.Body)
	}
	e.sup.mu.Lock()
	e.sup.fail = nil
	e.sup.mu.Unlock()
	// A retry is harmless: activating an active connection changes nothing.
	e.do("POST", "/api/v1/connections/acme/activate", "").want(t, http.StatusOK)
	if _, ok := e.sup.running("acme"); !ok {
		t.Error("not running after the retry")
	}
	c, _ := e.store.Get(t.Context(), "acme")
	if c.Status != store.StatusActive {
		t.Errorf("status %s", c.Status)
	}
}

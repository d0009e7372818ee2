package admin

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
)

// fakeErrorFiles stands in for archive.Mover in the handler tests: the
// move itself (copy pinned to the ETag, never over an inbox file,
// conditional delete) is archive's, tested against MinIO there and through
// the daemon in cmd/s3connector.
type fakeErrorFiles struct {
	mu       sync.Mutex
	files    []ErrorFile
	fail     map[string]error // by key
	listErr  error
	seen     []config.Connection
	requeued []string
}

func (f *fakeErrorFiles) List(_ context.Context, c config.Connection, limit int) ([]ErrorFile, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, c)
	if f.listErr != nil {
		return nil, f.listErr
	}
	out := f.files
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (f *fakeErrorFiles) Requeue(_ context.Context, c config.Connection, key string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, c)
	if err := f.fail[key]; err != nil {
		return "", err
	}
	f.requeued = append(f.requeued, key)
	return strings.Replace(key, "error/", "", 1), nil
}

func newErrorFilesEnv(t *testing.T) (*env, *fakeErrorFiles) {
	t.Helper()
	ef := &fakeErrorFiles{fail: map[string]error{}}
	e := newEnv(t, func(o *Options) { o.ErrorFiles = ef })
	e.do("POST", "/api/v1/connections", createBody).want(t, http.StatusCreated)
	return e, ef
}

func TestListErrorFiles(t *testing.T) {
	e, ef := newErrorFilesEnv(t)
	failed := time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	ef.files = []ErrorFile{
		{Key: "imports/error/bad.csv", Size: 12, Modified: failed, Report: &ErrorReport{OriginalKey: "imports/bad.csv", ReasonCode: "rejected", Reason: "<script>x</script> line 3", Attempts: 1, FailedAt: failed}},
		{Key: "imports/error/orphan.csv", Size: 3, Modified: failed},
	}
	var got struct {
		Connection string      `json:"connection"`
		Prefix     string      `json:"prefix"`
		Files      []ErrorFile `json:"files"`
		Truncated  bool        `json:"truncated"`
	}
	e.do("GET", "/api/v1/connections/acme/errors", "").want(t, http.StatusOK).decode(t, &got)
	if got.Connection != "acme" || got.Prefix != "imports/error/" || len(got.Files) != 2 || got.Truncated {
		t.Fatalf("list = %+v", got)
	}
	if r := got.Files[0].Report; r == nil || r.OriginalKey != "imports/bad.csv" || r.Reason != "<script>x</script> line 3" {
		t.Errorf("report = %+v", r)
	}
	if got.Files[1].Report != nil {
		t.Errorf("orphan's report = %+v, want null", got.Files[1].Report)
	}
	// The stored connection is reached as the daemon runs it: the
	// template applied, the server's role and External ID.
	c := ef.seen[0]
	if c.Bucket != "acme-imports" || c.BasePath != "imports/" || c.Workers != testTemplate.Workers || c.ExternalID == "" || c.RoleName != "s3connector-acme" {
		t.Errorf("connection given to List = %+v", c)
	}
	// Reads are not audited.
	for _, l := range e.auditLines() {
		if strings.HasPrefix(l, "requeue") {
			t.Errorf("audit line for a read: %s", l)
		}
	}

	// Over MaxErrorFiles: the first ones, marked truncated.
	ef.files = make([]ErrorFile, MaxErrorFiles+5)
	for i := range ef.files {
		ef.files[i] = ErrorFile{Key: fmt.Sprintf("imports/error/%05d", i)}
	}
	e.do("GET", "/api/v1/connections/acme/errors", "").want(t, http.StatusOK).decode(t, &got)
	if len(got.Files) != MaxErrorFiles || !got.Truncated {
		t.Errorf("%d files, truncated %v", len(got.Files), got.Truncated)
	}
}

func TestListErrorFilesErrors(t *testing.T) {
	e, ef := newErrorFilesEnv(t)
	e.do("GET", "/api/v1/connections/nobody/errors", "").want(t, http.StatusNotFound)
	e.do("GET", "/api/v1/connections/..%2f/errors", "").want(t, http.StatusBadRequest)
	ef.listErr = fmt.Errorf("list s3://acme-imports/imports/error/: %w", connector.Classify(&smithy.GenericAPIError{Code: "AccessDenied", Message: "test"}, ""))
	a := e.do("GET", "/api/v1/connections/acme/errors", "").want(t, http.StatusBadGateway)
	if a.Error.Code != CodeBucket || !strings.Contains(a.Error.Message, "access denied") {
		t.Errorf("error = %+v", a.Error)
	}
	// A file connection's error/ can be listed too (it only reads).
	e.mu.Lock()
	e.fileConns = []config.Connection{{Name: "from-file", Bucket: "file-bucket", Region: "us-east-1", Status: config.StatusActive}}
	e.mu.Unlock()
	ef.listErr = nil
	e.do("GET", "/api/v1/connections/from-file/errors", "").want(t, http.StatusOK)
	if c := ef.seen[len(ef.seen)-1]; c.Bucket != "file-bucket" {
		t.Errorf("List got %+v", c)
	}
}

func TestRequeueErrorFiles(t *testing.T) {
	e, _ := newErrorFilesEnv(t)
	var got struct {
		Requeued []requeueResult `json:"requeued"`
	}
	// Full keys as listed, or relative to the base path as the CLI takes them.
	e.do("POST", "/api/v1/connections/acme/requeue", `{"keys":["imports/error/a.csv","error/b.csv"]}`).want(t, http.StatusOK).decode(t, &got)
	if len(got.Requeued) != 2 || got.Requeued[0].RequeuedTo != "imports/a.csv" || got.Requeued[1].Key != "imports/error/b.csv" {
		t.Errorf("requeued = %+v", got.Requeued)
	}
	if want := "requeue ok,requeue ok"; !strings.Contains(strings.Join(e.auditLines(), ","), want) {
		t.Errorf("audit lines %q, want %q", e.auditLines(), want)
	}
}

func TestRequeueErrorFilesRefused(t *testing.T) {
	e, ef := newErrorFilesEnv(t)
	ef.fail["imports/error/a.csv.error.json"] = fmt.Errorf("requeue: %w", ErrNotAnErrorFile)
	ef.fail["imports/error/.s3connector/lease"] = fmt.Errorf("requeue: %w", ErrNotAnErrorFile)
	ef.fail["imports/error/taken.csv"] = fmt.Errorf("requeue: %w", ErrInboxTaken)
	ef.fail["imports/error/noreport.csv"] = fmt.Errorf("requeue: %w", ErrNoReport)
	ef.fail["imports/error/gone.csv"] = fmt.Errorf("requeue: %w", connector.Classify(&smithy.GenericAPIError{Code: "NoSuchKey", Message: "test"}, ""))
	ef.fail["imports/error/slow.csv"] = fmt.Errorf("requeue: %w", connector.Classify(&smithy.GenericAPIError{Code: "SlowDown", Message: "test"}, ""))
	e.mu.Lock()
	e.fileConns = []config.Connection{{Name: "from-file", Bucket: "file-bucket", Region: "us-east-1"}}
	e.mu.Unlock()

	many := make([]string, MaxRequeueKeys+1)
	for i := range many {
		many[i] = `"error/x"`
	}
	tests := []struct {
		name, path, body string
		code             int
		errCode          string
		msg              string
	}{
		{"report", "acme", `{"keys":["imports/error/a.csv.error.json"]}`, 400, CodeInvalid, "not a file in error/"},
		{"state", "acme", `{"keys":["imports/error/.s3connector/lease"]}`, 400, CodeInvalid, "not a file in error/"},
		{"inbox taken", "acme", `{"keys":["imports/error/taken.csv"]}`, 409, CodeConflict, "waiting in the inbox"},
		{"no report", "acme", `{"keys":["imports/error/noreport.csv"]}`, 409, CodeConflict, "report is missing"},
		{"missing", "acme", `{"keys":["imports/error/gone.csv"]}`, 404, CodeNotFound, "0 of 1 files requeued"},
		{"throttled", "acme", `{"keys":["imports/error/slow.csv"]}`, 503, CodeUnavailable, "throttling"},
		{"control character", "acme", `{"keys":["imports/error/a\u0000b"]}`, 400, CodeInvalid, "no control characters"},
		{"empty key", "acme", `{"keys":[""]}`, 400, CodeInvalid, "not a key of error/"},
		{"no keys", "acme", `{"keys":[]}`, 400, CodeInvalid, "at least one key"},
		{"too many keys", "acme", `{"keys":[` + strings.Join(many, ",") + `]}`, 400, CodeInvalid, "at most 100 keys"},
		{"wrong type", "acme", `{"keys":"error/a.csv"}`, 400, CodeBadRequest, "keys: must be a JSON array"},
		{"unknown field", "acme", `{"keys":["error/a.csv"],"bucket":"other"}`, 400, CodeBadRequest, `"bucket"`},
		{"no body", "acme", ``, 415, CodeUnsupportedMedia, "application/json"},
		{"file connection", "from-file", `{"keys":["error/a.csv"]}`, 409, CodeReadOnly, "s3connector requeue"},
		{"unknown connection", "nobody", `{"keys":["error/a.csv"]}`, 404, CodeNotFound, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.do("POST", "/api/v1/connections/"+tt.path+"/requeue", tt.body).want(t, tt.code)
			if a.Error.Code != tt.errCode || !strings.Contains(a.Error.Message, tt.msg) {
				t.Errorf("error = %+v, want code %s and a message with %q", a.Error, tt.errCode, tt.msg)
			}
		})
	}
	if len(ef.requeued) != 0 {
		t.Errorf("requeued %v", ef.requeued)
	}

	// One good key and one bad: the good one is requeued, the answer is
	// the bad one's status, naming it.
	a := e.do("POST", "/api/v1/connections/acme/requeue", `{"keys":["error/ok.csv","error/taken.csv"]}`).want(t, http.StatusConflict)
	if !strings.Contains(a.Error.Message, "1 of 2 files requeued (imports/error/ok.csv)") || a.Error.Fields["keys[1]"] == "" || a.Error.Fields["keys[0]"] != "" {
		t.Errorf("error = %+v", a.Error)
	}
	if len(ef.requeued) != 1 {
		t.Errorf("requeued %v", ef.requeued)
	}
}

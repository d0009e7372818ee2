package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/store"
)

const (
	testToken      = "test-token-0123456789abcdef0123456789"
	testTokenID    = "ops-token"
	testPrincipal  = "arn:aws:iam::049579744830:root"
	testHost       = "127.0.0.1:9465"
	validAccountID = "123456789012"
)

// testTemplate is the operator's template of the tests.
var testTemplate = config.Connection{
	Schedule: "@every 1m",
	Workers:  3,
	Importer: config.Importer{Type: config.ImporterDiscard},
}

// fakeValidator stands in for connector's checks in the handler tests:
// what the API does with a report (states, advice, recording, lifecycle) is
// tested here, the checks themselves in connector against MinIO, and both
// together in TestValidateAgainstMinIO.
type fakeValidator struct {
	mu    sync.Mutex
	fail  bool
	block bool // wait for ctx
	files int
	seen  []config.Connection
}

func (f *fakeValidator) Validate(ctx context.Context, c config.Connection) (*connector.Report, error) {
	f.mu.Lock()
	f.seen = append(f.seen, c)
	fail, block, files := f.fail, f.block, f.files
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		err := &connector.ValidationError{Check: connector.CheckAssumeRole, Class: connector.FailureOther, Err: ctx.Err()}
		return &connector.Report{Checks: []connector.CheckResult{{Name: connector.CheckAssumeRole, Detail: c.RoleARN(), Err: ctx.Err()}}}, err
	}
	if fail {
		denied := errors.New("AccessDenied: not authorized to perform sts:AssumeRole")
		return &connector.Report{Checks: []connector.CheckResult{{Name: connector.CheckAssumeRole, Detail: c.RoleARN(), Err: denied}}},
			&connector.ValidationError{Check: connector.CheckAssumeRole, Class: connector.FailureAssumeRole, Err: denied}
	}
	return &connector.Report{Files: files, Checks: []connector.CheckResult{
		{Name: connector.CheckAssumeRole, Detail: c.RoleARN()},
		{Name: connector.CheckTrustPolicy, Detail: c.RoleARN(), Skipped: "the STS endpoint is not AWS's"},
		{Name: connector.CheckBucket, Detail: c.Bucket + " in " + c.Region},
		{Name: connector.CheckList, Detail: "s3://" + c.Bucket + "/" + c.BasePath},
		{Name: connector.CheckReadWrite, Detail: "marker"},
	}}, nil
}

func (f *fakeValidator) set(fn func(f *fakeValidator)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// fakeSupervisor records what the API tells it; the real one is wired by
// cmd and tested there.
type fakeSupervisor struct {
	mu      sync.Mutex
	applied map[string]config.Connection
	calls   []string
	fail    error
	states  map[string]RunState
}

func (s *fakeSupervisor) Apply(_ context.Context, c config.Connection) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "apply "+c.Name)
	if s.fail != nil {
		return s.fail
	}
	s.applied[c.Name] = c
	return nil
}

func (s *fakeSupervisor) Remove(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "remove "+name)
	delete(s.applied, name)
	return nil
}

func (s *fakeSupervisor) State(name string, _ bool) (RunState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[name]
	return st, ok
}

func (s *fakeSupervisor) running(name string) (config.Connection, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.applied[name]
	return c, ok
}

// clock is a settable time for the rate limits.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     testing.TB
	api   *API
	store *store.Bolt
	val   *fakeValidator
	sup   *fakeSupervisor
	clock *clock
	logs  *observer.ObservedLogs
	// fileConns are the configuration file's connections.
	mu        sync.Mutex
	fileConns []config.Connection
}

// newEnv builds the API on a real store in t.TempDir().
func newEnv(t testing.TB, mods ...func(o *Options)) *env {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "connections.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	core, logs := observer.New(zapcore.DebugLevel)
	e := &env{t: t, store: st, val: &fakeValidator{files: 3}, sup: &fakeSupervisor{applied: map[string]config.Connection{}, states: map[string]RunState{}},
		clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}, logs: logs}
	opts := Options{
		Store: st, Validator: e.val, Supervisor: e.sup, PrincipalARN: testPrincipal, Template: testTemplate,
		Tokens: NewTokens(map[string]string{testTokenID: testToken}),
		ConfigConnections: func() []config.Connection {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.fileConns
		},
		AllowedHosts: []string{testHost},
		Logger:       zap.New(core),
		now:          func() time.Time { return e.clock.now() },
	}
	for _, m := range mods {
		m(&opts)
	}
	e.api, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type answer struct {
	Code   int
	Header http.Header
	Body   string
	// Parsed envelope.
	Status string          `json:"status"`
	Data   json.RawMessage `json:"data"`
	Error  struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

// do sends a request with the test token, Host and a JSON body (when
// body is not empty).
func (e *env) do(method, path, body string, hdr ...string) *answer {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, "http://"+testHost+path, rd)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
		} else {
			req.Header.Set(hdr[i], hdr[i+1])
		}
	}
	return e.serve(req)
}

func (e *env) serve(req *http.Request) *answer {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.api.Handler().ServeHTTP(rec, req)
	a := &answer{Code: rec.Code, Header: rec.Header(), Body: rec.Body.String()}
	if err := json.Unmarshal(rec.Body.Bytes(), a); err != nil {
		e.t.Fatalf("%s %s: answer %d is not JSON: %v\n%s", req.Method, req.URL, rec.Code, err, rec.Body)
	}
	return a
}

// want fails unless the answer has the status code.
func (a *answer) want(t testing.TB, code int) *answer {
	t.Helper()
	if a.Code != code {
		t.Fatalf("status %d, want %d; body:\n%s", a.Code, code, a.Body)
	}
	return a
}

func (a *answer) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(a.Data, v); err != nil {
		t.Fatalf("data: %v\n%s", err, a.Body)
	}
}

const createBody = `{"name":"acme","account_id":"123456789012","bucket":"acme-imports","region":"ap-southeast-2","base_path":"imports"}`

// view is the part of a connection the tests read.
type view struct {
	Name           string `json:"name"`
	Status         string `json:"status"`
	StatusReason   string `json:"status_reason"`
	Source         string `json:"source"`
	ReadOnly       bool   `json:"read_only"`
	BasePath       string `json:"base_path"`
	Bucket         string `json:"bucket"`
	RoleName       string `json:"role_name"`
	CanActivate    bool   `json:"can_activate"`
	FilesWaiting   *int   `json:"files_waiting"`
	LastValidation *struct {
		Passed  bool   `json:"passed"`
		Result  string `json:"result"`
		Current bool   `json:"current"`
	} `json:"last_validation"`
	LastRun *struct {
		OK bool `json:"ok"`
	} `json:"last_run"`
	Transitions []struct {
		By, From, To, Reason string
	} `json:"transitions"`
}

var errTest = errors.New("test failure")

func remarshal(t testing.TB, from, to any) {
	t.Helper()
	b, err := json.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, to); err != nil {
		t.Fatal(err)
	}
}

// auditLines are the audit logger's entries, as "action result".
func (e *env) auditLines() []string {
	var out []string
	for _, en := range e.logs.FilterLoggerName("audit").All() {
		m := en.ContextMap()
		out = append(out, m["action"].(string)+" "+m["result"].(string))
	}
	return out
}

// nopStore is a Store for tests that never reach it.
type nopStore struct{ Store }

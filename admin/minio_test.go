package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	miniotest.CloseShared()
	os.Exit(code)
}

// switchableValidator is ConnectorValidator with a platform identity the
// test changes: MinIO plays the customer's role with the platform user's own
// policy, so "the customer creates the role" is "a user with that policy
// appears".
type switchableValidator struct {
	mu sync.Mutex
	v  ConnectorValidator
}

func (s *switchableValidator) Validate(ctx context.Context, c config.Connection) (*connector.Report, error) {
	s.mu.Lock()
	v := s.v
	s.mu.Unlock()
	return v.Validate(ctx, c)
}

func (s *switchableValidator) use(user, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.v = ConnectorValidator{PrincipalARN: testPrincipal, Platform: aws.Config{
		Region:      miniotest.Region,
		Credentials: credentials.NewStaticCredentialsProvider(user, secret, ""),
		HTTPClient:  awshttp.NewBuildableClient(),
	}}
}

// TestValidateAgainstMinIO runs the real checks (connector.Validate, as
// `s3connector validate`) through the API: a failing validation before
// the customer's policy exists (Activate refused), then the IAM step's own
// permissions policy given to the role, a passing one with the seeds'
// success line, and Activate. The endpoints come from the operator's
// template, never from the API.
func TestValidateAgainstMinIO(t *testing.T) {
	srv := miniotest.Shared(t)
	ctx := context.Background()
	bucket := "admin-wizard"
	if err := srv.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"imports/a.csv", "imports/b.csv", "imports/archive/old.csv", "elsewhere/c.csv"} {
		if err := srv.Put(ctx, bucket, k, []byte("x\n")); err != nil {
			t.Fatal(err)
		}
	}
	val := &switchableValidator{}
	// Before the customer sets up the role: a user whose policy reaches
	// another bucket only.
	if err := srv.AddUser(ctx, "admin-before", "admin-before-secret", []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::some-other-bucket"]}]}`)); err != nil {
		t.Fatal(err)
	}
	val.use("admin-before", "admin-before-secret")
	tmpl := testTemplate
	tmpl.Endpoint, tmpl.STSEndpoint = srv.Endpoint, srv.Endpoint
	e := newEnv(t, func(o *Options) {
		o.Validator = val
		o.Template = tmpl
	})

	e.do("POST", "/api/v1/connections", `{"name":"wizard","account_id":"123456789012","bucket":"`+bucket+`","region":"`+miniotest.Region+`","base_path":"imports"}`).want(t, http.StatusCreated)
	var iam struct {
		Permissions json.RawMessage `json:"permissions_policy"`
	}
	e.do("GET", "/api/v1/connections/wizard/iam", "").want(t, http.StatusOK).decode(t, &iam)

	type result struct {
		Passed      bool   `json:"passed"`
		Message     string `json:"message"`
		SuccessLine string `json:"success_line"`
		FailedCheck string `json:"failed_check"`
		CanActivate bool   `json:"can_activate"`
		Checks      []struct{ Name, State, Detail, Error string }
		Advice      *struct{ Headline string }
	}
	var res result
	e.do("POST", "/api/v1/connections/wizard/validate", "").want(t, http.StatusOK).decode(t, &res)
	if res.Passed || res.Message != MessageValidationFailed || res.CanActivate || res.Advice == nil {
		t.Fatalf("before the policy: %+v", res)
	}
	if !strings.Contains(res.Advice.Headline, "Role assumption succeeds but S3 operations fail") {
		t.Errorf("advice %q (failed check %q)", res.Advice.Headline, res.FailedCheck)
	}
	e.do("POST", "/api/v1/connections/wizard/activate", "").want(t, http.StatusConflict)

	// The customer attaches exactly the policy the IAM step shows.
	if err := srv.AddUser(ctx, "admin-after", "admin-after-secret", iam.Permissions); err != nil {
		t.Fatal(err)
	}
	val.use("admin-after", "admin-after-secret")
	e.clock.advance(DefaultValidationInterval)
	res = result{}
	e.do("POST", "/api/v1/connections/wizard/validate", "").want(t, http.StatusOK).decode(t, &res)
	if !res.Passed || res.Message != MessageValidationSuccessful || !res.CanActivate || res.SuccessLine != "Connection successful. Found 2 files in bucket." {
		t.Fatalf("with the IAM step's policy: %+v", res)
	}
	states := map[string]string{}
	for _, c := range res.Checks {
		states[c.Name] = c.State
	}
	// MinIO ignores ExternalId: the trust check is skipped, as in the CLI.
	if states[connector.CheckAssumeRole] != CheckPass || states[connector.CheckTrustPolicy] != CheckSkip || states[connector.CheckReadWrite] != CheckPass {
		t.Errorf("check states %v", states)
	}
	var c view
	e.do("POST", "/api/v1/connections/wizard/activate", "").want(t, http.StatusOK).decode(t, &c)
	if c.Status != "active" {
		t.Errorf("status %s", c.Status)
	}
	if run, ok := e.sup.running("wizard"); !ok || run.Endpoint != srv.Endpoint {
		t.Errorf("supervisor runs %+v", run)
	}
}

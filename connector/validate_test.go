package connector

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAssumeRoleAndList(t *testing.T) {
	srv := needMinIO(t)
	ctx := context.Background()
	seed(t, srv, "assume-list", "in/a.csv", "in/b.csv", "elsewhere/c.csv")
	user, secret := newUser(t, srv, bucketPolicy("assume-list", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"))

	conn, err := New(platformConfig(user, secret), platformPrincipal, minioConnection(srv.Endpoint, "assume-list", "assume-list", "in/"))
	if err != nil {
		t.Fatal(err)
	}
	expires, err := conn.AssumeRole(ctx)
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	if until := time.Until(expires); until <= 0 || until > SessionDuration+time.Minute {
		t.Errorf("temporary credentials expire in %v, want within (0, %v]", until, SessionDuration)
	}
	creds, err := conn.Credentials().Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID == user || creds.SessionToken == "" {
		t.Errorf("got the platform's own keys or no session token: the role was not assumed")
	}
	n, err := conn.CountWaiting(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("CountWaiting = %d, want 2", n)
	}
}

func TestValidateSuccess(t *testing.T) {
	srv := needMinIO(t)
	ctx := context.Background()
	bucket := "validate-ok"
	seed(t, srv, bucket,
		"imports/a.csv", "imports/sub/b.csv", "imports/sub/deeper/c json.json",
		"imports/folder/", // folder marker, not a file
		"imports/archive/2026/old.csv", "imports/error/bad.csv",
		"other/not-counted.csv", "importsX/not-counted.csv")
	user, secret := newUser(t, srv, bucketPolicy(bucket, "s3:GetObject", "s3:PutObject", "s3:DeleteObject"))
	conn, err := New(platformConfig(user, secret), platformPrincipal, minioConnection(srv.Endpoint, "validate-ok", bucket, "imports/"))
	if err != nil {
		t.Fatal(err)
	}
	before, err := srv.Keys(ctx, bucket, "")
	if err != nil {
		t.Fatal(err)
	}
	report, err := conn.Validate(ctx)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got, want := report.SuccessLine(), "Connection successful. Found 3 files in bucket."; got != want {
		t.Errorf("SuccessLine = %q, want %q", got, want)
	}
	var names []string
	for _, c := range report.Checks {
		names = append(names, c.Name)
		if c.Err != nil {
			t.Errorf("check %s: %v", c.Name, c.Err)
		}
	}
	if want := []string{CheckAssumeRole, CheckBucket, CheckList, CheckReadWrite}; !slices.Equal(names, want) {
		t.Errorf("checks = %q, want %q", names, want)
	}
	if !report.OK() {
		t.Error("report.OK() = false after a successful validation")
	}
	after, err := srv.Keys(ctx, bucket, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) {
		t.Errorf("validation left the bucket changed:\nbefore %q\nafter  %q", before, after)
	}
}

func TestValidateEmptyBasePathOnKMSBucket(t *testing.T) {
	srv := needMinIO(t)
	ctx := context.Background()
	bucket := "validate-kms"
	seed(t, srv, bucket)
	if err := srv.EnableKMS(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	if err := srv.Put(ctx, bucket, "one.csv", []byte("1\n")); err != nil {
		t.Fatal(err)
	}
	user, secret := newUser(t, srv, bucketPolicy(bucket, "s3:GetObject", "s3:PutObject", "s3:DeleteObject"))
	conn, err := New(platformConfig(user, secret), platformPrincipal, minioConnection(srv.Endpoint, "validate-kms", bucket, ""))
	if err != nil {
		t.Fatal(err)
	}
	report, err := conn.Validate(ctx)
	if err != nil {
		t.Fatalf("Validate on an SSE-KMS bucket: %v", err)
	}
	if report.Files != 1 {
		t.Errorf("Files = %d, want 1", report.Files)
	}
}

func TestValidateFailureClasses(t *testing.T) {
	srv := needMinIO(t)
	ctx := context.Background()
	bucket := "validate-fail"
	seed(t, srv, bucket, "imports/a.csv")
	seed(t, srv, "someone-else", "x.csv")
	good, goodSecret := newUser(t, srv, bucketPolicy(bucket, "s3:GetObject", "s3:PutObject", "s3:DeleteObject"))
	readOnly, readOnlySecret := newUser(t, srv, bucketPolicy(bucket, "s3:GetObject"))
	// On AWS as on MinIO, a bucket outside the policy answers 403 whether or
	// not it exists; only a role allowed on it learns that it is missing.
	anyBucket, anySecret := newUser(t, srv, bucketPolicy("*", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"))
	otherBucket, otherSecret := newUser(t, srv, bucketPolicy("someone-else", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"))

	tests := []struct {
		name       string
		user, pass string
		bucket     string
		region     string
		wantCheck  string
		wantClass  FailureClass
		wantIs     error
		wantAdvice string
	}{
		{
			name: "bad platform credentials", user: good, pass: "not-the-secret", bucket: bucket,
			wantCheck: CheckAssumeRole, wantClass: FailureAssumeRole, wantIs: ErrAccessDenied,
			wantAdvice: "The trust policy Principal is " + platformPrincipal,
		},
		{
			name: "bucket does not exist", user: anyBucket, pass: anySecret, bucket: "no-such-bucket-here",
			wantCheck: CheckBucket, wantClass: FailureBucketRegion, wantIs: ErrNotFound,
			wantAdvice: "case-sensitive and must not contain spaces",
		},
		{
			name: "wrong region", user: good, pass: goodSecret, bucket: bucket, region: "us-east-1",
			wantCheck: CheckBucket, wantClass: FailureBucketRegion, wantIs: ErrWrongRegion,
			wantAdvice: "answered from region ap-southeast-2",
		},
		{
			name: "policy lacks PutObject", user: readOnly, pass: readOnlySecret, bucket: bucket,
			wantCheck: CheckReadWrite, wantClass: FailureS3Access, wantIs: ErrAccessDenied,
			wantAdvice: "is attached to the role",
		},
		{
			name: "policy for another bucket", user: otherBucket, pass: otherSecret, bucket: bucket,
			wantCheck: CheckBucket, wantClass: FailureS3Access, wantIs: ErrAccessDenied,
			wantAdvice: "explicit Deny",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := minioConnection(srv.Endpoint, "fail", tt.bucket, "imports/")
			if tt.region != "" {
				c.Region = tt.region
			}
			conn, err := New(platformConfig(tt.user, tt.pass), platformPrincipal, c)
			if err != nil {
				t.Fatal(err)
			}
			report, err := conn.Validate(ctx)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate error = %v, want a *ValidationError", err)
			}
			if ve.Check != tt.wantCheck || ve.Class != tt.wantClass {
				t.Errorf("failed at %q class %d, want %q class %d (%v)", ve.Check, ve.Class, tt.wantCheck, tt.wantClass, err)
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			last := report.Checks[len(report.Checks)-1]
			if last.Name != tt.wantCheck || last.Err == nil {
				t.Errorf("last check = %+v, want the failing %q", last, tt.wantCheck)
			}
			if report.OK() {
				t.Error("report.OK() = true for a failed validation")
			}
			advice := conn.AdviceFor(err)
			text := advice.Headline + "\n" + strings.Join(advice.Checks, "\n")
			if !strings.Contains(text, tt.wantAdvice) {
				t.Errorf("advice does not mention %q:\n%s", tt.wantAdvice, text)
			}
			for _, secret := range []string{tt.pass, minioExternalID} {
				if strings.Contains(err.Error(), secret) || strings.Contains(text, secret) {
					t.Errorf("error or advice contains a secret value %q", secret)
				}
			}
		})
	}
}

func TestNewRefusesMissingExternalID(t *testing.T) {
	c := minioConnection("http://127.0.0.1:1", "no-id", "bucket", "")
	for _, id := range []string{"", "short", " s3connector-test-external-id-0001", "s3connector-test-external-id-0001\n"} {
		c.ExternalID = id
		_, err := New(platformConfig("u", "p"), platformPrincipal, c)
		if !errors.Is(err, ErrInvalidExternalID) {
			t.Errorf("New with external id %q: err = %v, want ErrInvalidExternalID", id, err)
		}
	}
}

package connector

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3connector/s3connector/config"
)

// withAnySTSEndpoint runs the trust check against the loopback fake below as
// if it were AWS STS.
func withAnySTSEndpoint(o *validateOptions) { o.anySTSEndpoint = true }

// refuseWrongID answers as AWS STS does for a role whose trust policy
// requires minioExternalID: AccessDenied (403) to any other ExternalId.
func refuseWrongID(form url.Values) (int, string, string) {
	if form.Get("ExternalId") != minioExternalID {
		return http.StatusForbidden, "AccessDenied", "User: arn:aws:iam::049579744830:root is not authorized to perform: sts:AssumeRole on resource: " + form.Get("RoleArn")
	}
	return 0, "", ""
}

// TestTrustCheck runs the trust-policy check on recorded STS answers.
//
// Why a fake: MinIO accepts but ignores ExternalId (TestTrustCheckMinIO shows
// it granting a wrong one), so no real server here can refuse a wrong
// External ID; the fake answers as AWS does, AccessDenied when the trust
// policy's sts:ExternalId condition does not match. The S3 side is a server
// that knows no bucket: each case stops at the trust check or right after it.
func TestTrustCheck(t *testing.T) {
	tests := []struct {
		name   string
		answer func(url.Values) (int, string, string)
		opts   []ValidateOption
		// wantCheck and wantClass: where validation fails (CheckBucket:
		// the trust check passed or was skipped, and the S3 stub refused).
		wantCheck string
		wantClass FailureClass
		wantIs    error
		// wantState of the trust check, and text its detail, reason or
		// advice must contain.
		wantState  string
		wantText   []string
		wantWrong  bool // a wrong-ID AssumeRole was sent
		minSTSCall int
	}{
		{
			name: "wrong ID denied: pass", answer: refuseWrongID, opts: []ValidateOption{withAnySTSEndpoint},
			wantCheck: CheckBucket, wantClass: FailureBucketRegion, wantState: CheckPassed,
			wantText: []string{"refused (AccessDenied)"}, wantWrong: true, minSTSCall: 2,
		},
		{
			name: "wrong ID granted: fail with the confused-deputy advice", opts: []ValidateOption{withAnySTSEndpoint},
			wantCheck: CheckTrustPolicy, wantClass: FailureTrustPolicy, wantIs: ErrTrustPolicyOpen, wantState: CheckFailed,
			wantText: []string{
				"does not require this connection's External ID", "confused deputy",
				"allows " + platformPrincipal + " to perform sts:AssumeRole",
				`"StringEquals": {`, `"sts:ExternalId": "<external_id of this connection>"`,
				"s3connector policy --connection trust --document trust",
			},
			wantWrong: true, minSTSCall: 2,
		},
		{
			// The SDK retries throttling (3 attempts); still throttled, the
			// check fails rather than pass unproven.
			name: "wrong ID throttled: fail, unproven",
			answer: func(form url.Values) (int, string, string) {
				if form.Get("ExternalId") != minioExternalID {
					return http.StatusBadRequest, "Throttling", "Rate exceeded"
				}
				return 0, "", ""
			},
			opts:      []ValidateOption{withAnySTSEndpoint},
			wantCheck: CheckTrustPolicy, wantClass: FailureOther, wantIs: ErrThrottled, wantState: CheckFailed,
			wantText: []string{"trust-policy check did not complete", "Run validation again"}, wantWrong: true, minSTSCall: 4,
		},
		{
			// The platform's own credentials failing is no proof that the
			// trust policy refused the ID.
			name: "wrong ID answered InvalidClientTokenId: fail, unproven",
			answer: func(form url.Values) (int, string, string) {
				if form.Get("ExternalId") != minioExternalID {
					return http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid."
				}
				return 0, "", ""
			},
			opts:      []ValidateOption{withAnySTSEndpoint},
			wantCheck: CheckTrustPolicy, wantClass: FailureOther, wantIs: ErrAccessDenied, wantState: CheckFailed,
			wantText: []string{"trust-policy check did not complete"}, wantWrong: true, minSTSCall: 2,
		},
		{
			// A custom sts_endpoint (MinIO, here a loopback address) ignores
			// ExternalId: a wrong one granted would prove nothing.
			name: "custom sts_endpoint: skipped", opts: []ValidateOption{},
			wantCheck: CheckBucket, wantClass: FailureBucketRegion, wantState: CheckSkipped,
			wantText: []string{"is not AWS STS", "MinIO accept but ignore ExternalId"}, minSTSCall: 1,
		},
		{
			name: "no platform identity given: skipped", answer: refuseWrongID,
			wantCheck: CheckBucket, wantClass: FailureBucketRegion, wantState: CheckSkipped,
			wantText: []string{"WithPlatform"}, minSTSCall: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &recordingSTS{expiresIn: time.Hour, answer: tt.answer}
			stsServer := httptest.NewServer(fake)
			defer stsServer.Close()
			var s3Calls atomic.Int32
			s3Server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s3Calls.Add(1)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusNotFound)
				_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>`))
			}))
			defer s3Server.Close()

			c := minioConnection(s3Server.URL, "trust", "bucket", "")
			c.STSEndpoint = stsServer.URL
			platform := platformConfig("platform-key", "platform-secret")
			conn, err := New(platform, platformPrincipal, c)
			if err != nil {
				t.Fatal(err)
			}
			opts := tt.opts
			if opts != nil {
				opts = append([]ValidateOption{WithPlatform(platform)}, opts...)
			}
			report, err := conn.Validate(context.Background(), opts...)

			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Check != tt.wantCheck || ve.Class != tt.wantClass {
				t.Fatalf("Validate: %v, want a failure at %q class %d", err, tt.wantCheck, tt.wantClass)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if len(report.Checks) < 2 || report.Checks[1].Name != CheckTrustPolicy {
				t.Fatalf("checks %+v: want the trust check second, right after %q", report.Checks, CheckAssumeRole)
			}
			trust := report.Checks[1]
			if got := trust.State(); got != tt.wantState {
				t.Errorf("trust check state %s, want %s (%+v)", got, tt.wantState, trust)
			}
			if report.OK() {
				t.Error("report.OK() = true for a failed validation")
			}
			advice := conn.AdviceFor(err)
			text := trust.Detail + "\n" + trust.Skipped + "\n" + advice.Headline + "\n" + strings.Join(advice.Checks, "\n")
			for _, want := range tt.wantText {
				if !strings.Contains(text, want) {
					t.Errorf("detail, reason and advice do not mention %q:\n%s", want, text)
				}
			}
			if strings.Contains(text, minioExternalID) || strings.Contains(err.Error(), minioExternalID) {
				t.Errorf("error or advice carries the External ID:\n%v\n%s", err, text)
			}
			if tt.wantCheck == CheckTrustPolicy && s3Calls.Load() != 0 {
				t.Errorf("%d S3 requests after the trust check failed, want none", s3Calls.Load())
			}

			if n := fake.count(); n < tt.minSTSCall || (!tt.wantWrong && n != 1) {
				t.Fatalf("%d STS requests, want at least %d (exactly 1 without a wrong-ID attempt)", n, tt.minSTSCall)
			}
			if !tt.wantWrong {
				return
			}
			// The first request is the connection's own, with its ID; the
			// second tries a random one of valid format, asking for the
			// shortest session with a deny-all session policy, under a
			// session name of its own.
			if got := fake.request(0).Get("ExternalId"); got != minioExternalID {
				t.Errorf("first AssumeRole ExternalId %q, want the connection's", got)
			}
			wrong := fake.request(1)
			if id := wrong.Get("ExternalId"); id == minioExternalID || config.ValidateExternalID(id) != nil {
				t.Errorf("wrong-ID attempt ExternalId %q: want a valid ID that is not the connection's", id)
			}
			for k, v := range map[string]string{
				"Action":          "AssumeRole",
				"RoleArn":         c.RoleARN(),
				"RoleSessionName": "s3connector-trustcheck-trust",
				"DurationSeconds": "900",
				"Policy":          trustCheckSessionPolicy,
			} {
				if got := wrong.Get(k); got != v {
					t.Errorf("wrong-ID AssumeRole %s = %q, want %q", k, got, v)
				}
			}
			if tt.minSTSCall > 2 {
				// Retries of the same attempt reuse the same wrong ID.
				for i := 2; i < fake.count(); i++ {
					if fake.request(i).Get("ExternalId") != wrong.Get("ExternalId") {
						t.Errorf("retry %d sent another External ID", i)
					}
				}
			}
		})
	}
}

// Two wrong-ID attempts use different random IDs: no fixed "wrong" value a
// trust policy could be written to allow.
func TestTrustCheckRandomID(t *testing.T) {
	fake := &recordingSTS{expiresIn: time.Hour, answer: refuseWrongID}
	ts := httptest.NewServer(fake)
	defer ts.Close()
	platform := platformConfig("k", "s")
	c := minioConnection(ts.URL, "random", "bucket", "")
	ids := map[string]bool{}
	for range 2 {
		conn, err := New(platform, platformPrincipal, c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.checkTrustPolicy(context.Background(), validateOptions{platform: &platform, anySTSEndpoint: true}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range fake.count() {
		if id := fake.request(i).Get("ExternalId"); id != minioExternalID {
			ids[id] = true
		}
	}
	if len(ids) != 2 {
		t.Errorf("wrong IDs %v, want two different ones", ids)
	}
}

func TestTrustCheckAWSEndpoints(t *testing.T) {
	tests := []struct {
		endpoint string
		aws      bool
	}{
		{"", true}, // the SDK resolves AWS's regional endpoint
		{"https://sts.amazonaws.com", true},
		{"https://sts.ap-southeast-2.amazonaws.com", true},
		{"https://sts-fips.us-east-1.amazonaws.com/", true},
		{"https://sts.cn-north-1.amazonaws.com.cn", true},
		{"https://vpce-0a1b2c3d-4e5f6a7b.sts.eu-west-1.vpce.amazonaws.com", true},
		{"https://STS.AP-SOUTHEAST-2.AMAZONAWS.COM.", true},
		{"http://127.0.0.1:9000", false},
		{"https://minio.internal.example:9000", false},
		{"https://sts.amazonaws.com.attacker.example", false},
		{"https://notamazonaws.com", false},
	}
	for _, tt := range tests {
		reason := notAWSSTS(tt.endpoint)
		if (reason == "") != tt.aws {
			t.Errorf("notAWSSTS(%q) = %q, want AWS %v", tt.endpoint, reason, tt.aws)
		}
		if !tt.aws && !strings.Contains(reason, "ignore ExternalId") {
			t.Errorf("reason %q does not say why", reason)
		}
	}
}

// TestTrustCheckMinIO shows why the check is skipped on MinIO: it grants a
// wrong External ID (run anyway, the check fails), and validation with the
// check skipped passes.
func TestTrustCheckMinIO(t *testing.T) {
	srv := needMinIO(t)
	ctx := context.Background()
	bucket := "trust-minio"
	seed(t, srv, bucket, "in/a.csv")
	user, secret := newUser(t, srv, bucketPolicy(bucket, "s3:GetObject", "s3:PutObject", "s3:DeleteObject"))
	platform := platformConfig(user, secret)
	conn, err := New(platform, platformPrincipal, minioConnection(srv.Endpoint, "trust-minio", bucket, "in/"))
	if err != nil {
		t.Fatal(err)
	}

	_, err = conn.Validate(ctx, WithPlatform(platform), withAnySTSEndpoint)
	if !errors.Is(err, ErrTrustPolicyOpen) {
		t.Fatalf("Validate on MinIO with the check forced: %v, want ErrTrustPolicyOpen (MinIO ignores ExternalId)", err)
	}

	report, err := conn.Validate(ctx, WithPlatform(platform))
	if err != nil {
		t.Fatalf("Validate on MinIO: %v", err)
	}
	trust := report.Checks[1]
	if trust.Name != CheckTrustPolicy || trust.State() != CheckSkipped || !strings.Contains(trust.Skipped, "MinIO") {
		t.Errorf("trust check %+v, want skipped naming MinIO", trust)
	}
	if !report.OK() || report.SuccessLine() != "Connection successful. Found 1 files in bucket." {
		t.Errorf("report OK %v, %q", report.OK(), report.SuccessLine())
	}
}

// The advice's condition block is the trust policy's own Condition, with a
// placeholder for the External ID.
func TestTrustConditionBlockMatchesTrustPolicy(t *testing.T) {
	var b strings.Builder
	if err := writeIndented(&b, TrustPolicy(platformPrincipal, "EXTERNAL-ID")); err != nil {
		t.Fatal(err)
	}
	// Dedent the document's condition (nested three levels deep: 6 spaces).
	doc := strings.Replace(b.String(), "EXTERNAL-ID", "<external_id of this connection>", 1)
	start := strings.Index(doc, `"Condition"`)
	if start < 0 {
		t.Fatal("no Condition in the trust policy")
	}
	var lines []string
	for _, l := range strings.Split(doc[start:], "\n") {
		lines = append(lines, strings.TrimPrefix(l, "      "))
		if l == "      }" {
			break
		}
	}
	if got := strings.Join(lines, "\n"); got != trustConditionBlock {
		t.Errorf("trust policy condition\n%s\nadvice block\n%s", got, trustConditionBlock)
	}
}

// The wrong-ID attempt is sent only to the STS endpoint: a redirect to
// another host is not followed (as for the connection's own STS client),
// and the check fails unproven instead of passing.
func TestTrustCheckNoRedirect(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	fake := &recordingSTS{expiresIn: time.Hour}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil && r.PostForm.Get("ExternalId") != minioExternalID {
			http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
			return
		}
		fake.ServeHTTP(w, r)
	}))
	defer ts.Close()
	platform := platformConfig("k", "s")
	conn, err := New(platform, platformPrincipal, minioConnection(ts.URL, "redirect", "bucket", ""))
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Validate(context.Background(), WithPlatform(platform), withAnySTSEndpoint)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Check != CheckTrustPolicy || ve.Class != FailureOther {
		t.Errorf("Validate: %v, want the trust check failing unproven", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("%d requests followed the redirect to another host", n)
	}
}

package connector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3connector/s3connector/connector/miniotest"
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
	n, more, err := conn.CountWaiting(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || more {
		t.Errorf("CountWaiting = %d (more %v), want 2", n, more)
	}
	// A capped count stops there and says there are more.
	n, more, err = conn.CountWaiting(ctx, 1)
	if err != nil || n != 1 || !more {
		t.Errorf("CountWaiting(limit 1) = %d, %v, %v; want 1, more", n, more, err)
	}
	if got, want := (&Report{Files: n, FilesAtLeast: more}).SuccessLine(), "Connection successful. Found at least 1 files in bucket."; got != want {
		t.Errorf("SuccessLine = %q, want %q", got, want)
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
	// With the platform identity the trust check runs as in the CLI and
	// the daemon, and is skipped: MinIO ignores ExternalId.
	report, err := conn.Validate(ctx, WithPlatform(platformConfig(user, secret)))
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got, want := report.SuccessLine(), "Connection successful. Found 3 files in bucket."; got != want {
		t.Errorf("SuccessLine = %q, want %q", got, want)
	}
	// The daemon's validation counts less (WithCountLimit): at least 2.
	limited, err := conn.Validate(ctx, WithCountLimit(2))
	if err != nil {
		t.Fatalf("Validate with a count limit: %v", err)
	}
	if limited.Files != 2 || !limited.FilesAtLeast {
		t.Errorf("with WithCountLimit(2): %d files, at least %v; want at least 2", limited.Files, limited.FilesAtLeast)
	}
	var names []string
	for _, c := range report.Checks {
		names = append(names, c.Name)
		if c.Err != nil {
			t.Errorf("check %s: %v", c.Name, c.Err)
		}
		if want := CheckPassed; c.Name == CheckTrustPolicy {
			if c.State() != CheckSkipped || !strings.Contains(c.Skipped, "MinIO") {
				t.Errorf("trust check on MinIO: %+v, want skipped because MinIO ignores ExternalId", c)
			}
		} else if c.State() != want {
			t.Errorf("check %s is %s, want %s", c.Name, c.State(), want)
		}
	}
	if want := []string{CheckAssumeRole, CheckTrustPolicy, CheckBucket, CheckList, CheckReadWrite}; !slices.Equal(names, want) {
		t.Errorf("checks = %q, want %q", names, want)
	}
	if !report.OK() {
		t.Error("report.OK() = false after a successful validation")
	}
	// The detail names both markers: the one written and its copy.
	if d := report.Checks[len(report.Checks)-1].Detail; !strings.Contains(d, "s3://"+bucket+"/imports/"+ArchiveFolder+markerPrefix) || !strings.Contains(d, "-copy") {
		t.Errorf("marker check detail %q does not name both markers", d)
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
	noDelete, noDeleteSecret := newUser(t, srv, bucketPolicy(bucket, "s3:GetObject", "s3:PutObject"))
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
		wantStep   string // of the marker check, when it fails there
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
			wantCheck: CheckReadWrite, wantClass: FailureS3Access, wantIs: ErrAccessDenied, wantStep: MarkerPut,
			wantAdvice: "s3:PutObjectTagging on arn:aws:s3:::validate-fail/imports/archive/*",
		},
		{
			name: "policy lacks DeleteObject", user: noDelete, pass: noDeleteSecret, bucket: bucket,
			wantCheck: CheckReadWrite, wantClass: FailureS3Access, wantIs: ErrAccessDenied, wantStep: MarkerDelete,
			wantAdvice: "needs both s3:DeleteObject and s3:GetObject on arn:aws:s3:::validate-fail/imports/*",
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
			if step, _ := MarkerStep(err); step != tt.wantStep {
				t.Errorf("marker step %q, want %q (%v)", step, tt.wantStep, err)
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

// On a versioned bucket validation deletes the way a move does, without a
// version id: nothing is left but the two markers' noncurrent versions, each
// behind a delete marker, and the check's detail says so.
func TestValidateVersionedBucket(t *testing.T) {
	srv := needMinIO(t)
	ctx := context.Background()
	bucket := "validate-versioned"
	seed(t, srv, bucket, "imports/a.csv")
	enableVersioning(t, srv, bucket)
	user, secret := newUser(t, srv, bucketPolicy(bucket, "s3:GetObject", "s3:PutObject", "s3:DeleteObject"))
	conn, err := New(platformConfig(user, secret), platformPrincipal, minioConnection(srv.Endpoint, "validate-versioned", bucket, "imports/"))
	if err != nil {
		t.Fatal(err)
	}
	report, err := conn.Validate(ctx)
	if err != nil {
		t.Fatalf("Validate on a versioned bucket: %v", err)
	}
	if got, want := report.SuccessLine(), "Connection successful. Found 1 files in bucket."; got != want {
		t.Errorf("SuccessLine = %q, want %q", got, want)
	}
	if d := report.Checks[len(report.Checks)-1].Detail; !strings.Contains(d, "noncurrent versions behind delete markers") {
		t.Errorf("detail %q does not say what a versioned bucket keeps", d)
	}
	if keys, err := srv.Keys(ctx, bucket, "imports/"+ArchiveFolder); err != nil || len(keys) != 0 {
		t.Errorf("current objects under archive/ after validation: %q, %v; want none", keys, err)
	}
	out, err := srv.Root().ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("imports/" + ArchiveFolder)})
	if err != nil {
		t.Fatal(err)
	}
	versions, markers := map[string]int{}, map[string]int{}
	for _, v := range out.Versions {
		versions[aws.ToString(v.Key)]++
		if aws.ToBool(v.IsLatest) {
			t.Errorf("%s version %s is still current", aws.ToString(v.Key), aws.ToString(v.VersionId))
		}
	}
	for _, m := range out.DeleteMarkers {
		markers[aws.ToString(m.Key)]++
	}
	if len(versions) != 2 || len(markers) != 2 {
		t.Fatalf("versions %v, delete markers %v: want the marker and its copy, one version and one delete marker each", versions, markers)
	}
	for k, n := range versions {
		if n != 1 || markers[k] != 1 || !strings.Contains(k, markerPrefix) {
			t.Errorf("%s: %d versions, %d delete markers; want 1 and 1", k, n, markers[k])
		}
	}
}

// MinIO does not enforce the tagging permissions of a copy: checked on the
// pinned build, a user without s3:GetObjectTagging, s3:GetObjectVersionTagging
// and s3:PutObjectTagging copies a tagged object with TaggingDirective COPY
// (the tags are copied) and writes one with x-amz-tagging; it also accepts
// s3:GetObject or s3:GetObjectVersion alike for a copy source, with or
// without ?versionId=. AWS authorizes each separately ("Required permissions
// for Amazon S3 API operations"), so a policy lacking them cannot be shown
// to fail here. Instead this test checks, on a recording proxy, the requests
// validation sends -- the same a move sends -- and, with the proxy answering
// the copy as AWS would without the tagging permissions, the advice.
func TestValidateSendsTheMoveRequests(t *testing.T) {
	srv := needMinIO(t)
	ctx := context.Background()
	tests := []struct {
		name      string
		versioned bool
		// nullVersion makes PutObject answer x-amz-version-id: null, as AWS
		// does for objects written while versioning is suspended.
		nullVersion bool
		denyCopy    bool
	}{
		{name: "unversioned"},
		{name: "versioned", versioned: true},
		{name: "null version", nullVersion: true},
		{name: "copy denied", versioned: true, denyCopy: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bucket := fmt.Sprintf("validate-requests-%d", i)
			seed(t, srv, bucket, "in/a.csv")
			if tt.versioned {
				enableVersioning(t, srv, bucket)
			}
			rec := newRecorder(t, srv)
			if tt.nullVersion {
				rec.RewriteHeader(func(r *http.Request, h http.Header) {
					if r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") == "" {
						h.Set("X-Amz-Version-Id", "null")
					}
				})
			}
			if tt.denyCopy {
				rec.Answer(func(r *http.Request) (int, string, bool) {
					if r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "" {
						return http.StatusForbidden, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>User is not authorized to perform: s3:GetObjectTagging</Message></Error>`, true
					}
					return 0, "", false
				})
			}
			user, secret := newUser(t, srv, bucketPolicy(bucket, "s3:GetObject", "s3:PutObject", "s3:DeleteObject"))
			c := minioConnection(rec.URL, "requests", bucket, "in/")
			c.STSEndpoint = srv.Endpoint
			conn, err := New(platformConfig(user, secret), platformPrincipal, c)
			if err != nil {
				t.Fatal(err)
			}
			report, err := conn.Validate(ctx)
			if tt.denyCopy {
				var ve *ValidationError
				if !errors.As(err, &ve) || ve.Check != CheckReadWrite || ve.Class != FailureCopyAccess || !errors.Is(err, ErrAccessDenied) {
					t.Fatalf("Validate with the copy denied: %v, want %s failing with FailureCopyAccess", err, CheckReadWrite)
				}
				if step, _ := MarkerStep(err); step != MarkerCopy {
					t.Errorf("failed step %q, want %q", step, MarkerCopy)
				}
				advice := conn.AdviceFor(err)
				text := advice.Headline + "\n" + strings.Join(advice.Checks, "\n")
				for _, want := range []string{"s3:GetObjectTagging", "s3:GetObjectVersionTagging", "s3:PutObjectTagging on arn:aws:s3:::" + bucket + "/in/archive/*", "s3:GetObjectVersion on"} {
					if !strings.Contains(text, want) {
						t.Errorf("copy advice does not name %q:\n%s", want, text)
					}
				}
				// The marker written before the copy is cleaned up.
				if keys, err := srv.Keys(ctx, bucket, "in/"+ArchiveFolder); err != nil || len(keys) != 0 {
					t.Errorf("left under archive/: %q, %v", keys, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got, want := report.SuccessLine(), "Connection successful. Found 1 files in bucket."; got != want {
				t.Errorf("SuccessLine = %q, want %q", got, want)
			}

			var puts, copies []miniotest.Request
			for _, r := range requestsTo(rec, http.MethodPut, "") {
				if !strings.Contains(r.Path, markerPrefix) {
					continue
				}
				if r.Header.Get("X-Amz-Copy-Source") != "" {
					copies = append(copies, r)
				} else {
					puts = append(puts, r)
				}
			}
			if len(puts) != 1 || len(copies) != 1 {
				t.Fatalf("%d marker puts and %d copies, want 1 and 1", len(puts), len(copies))
			}
			put, cp := puts[0], copies[0]
			key := strings.TrimPrefix(put.Path, "/"+bucket+"/")
			if got := put.Header.Get("X-Amz-Tagging"); got != markerTagging {
				t.Errorf("marker put x-amz-tagging %q, want %q", got, markerTagging)
			}
			if got := put.Header.Get("If-None-Match"); got != "*" {
				t.Errorf("marker put If-None-Match %q, want *", got)
			}
			gets := requestsTo(rec, http.MethodGet, "/"+key)
			if len(gets) != 1 || gets[0].Header.Get("If-Match") == "" {
				t.Fatalf("marker reads %+v, want one with If-Match", gets)
			}
			etag := gets[0].Header.Get("If-Match")

			wantSource := bucket + "/" + key
			if tt.versioned {
				out, err := srv.Root().ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(key)})
				if err != nil || len(out.Versions) < 1 {
					t.Fatalf("versions of %s: %v, %v", key, out, err)
				}
				for _, v := range out.Versions {
					if aws.ToString(v.Key) == key {
						wantSource += "?versionId=" + aws.ToString(v.VersionId)
					}
				}
			}
			if got := cp.Path; got != "/"+bucket+"/"+key+"-copy" {
				t.Errorf("copy to %s, want %s-copy", got, key)
			}
			for h, want := range map[string]string{
				"X-Amz-Copy-Source":          wantSource,
				"X-Amz-Copy-Source-If-Match": etag,
				"If-None-Match":              "*",
				"X-Amz-Metadata-Directive":   "COPY",
				"X-Amz-Tagging-Directive":    "COPY",
			} {
				if got := cp.Header.Get(h); got != want {
					t.Errorf("copy %s: %q, want %q", h, got, want)
				}
			}

			// Both markers are deleted as a move deletes: the original
			// first, conditional on the ETag, never by version.
			var deleted []string
			for _, d := range requestsTo(rec, http.MethodDelete, "") {
				if !strings.Contains(d.Path, markerPrefix) {
					continue
				}
				deleted = append(deleted, strings.TrimPrefix(d.Path, "/"+bucket+"/"))
				if d.Header.Get("If-Match") != etag {
					t.Errorf("delete %s If-Match %q, want %q", d.Path, d.Header.Get("If-Match"), etag)
				}
				if strings.Contains(d.Query, "versionId") {
					t.Errorf("delete %s names a version: %v", d.Path, d.Query)
				}
			}
			if want := []string{key, key + "-copy"}; !slices.Equal(deleted, want) {
				t.Errorf("deleted %q, want %q in that order", deleted, want)
			}
		})
	}
}

// A marker an earlier validation could not delete (its delete failed, as
// under throttling) is removed by a later one, once it is older than any
// validation still under way; other keys under archive/ are never touched.
func TestValidateRemovesStaleMarkers(t *testing.T) {
	srv := needMinIO(t)
	ctx := context.Background()
	bucket := "validate-stale"
	stale := "imports/" + ArchiveFolder + markerPrefix + "0123456789abcdef-copy"
	seed(t, srv, bucket, "imports/a.csv", stale, "imports/archive/kept.20261201T000000Z-0123456789ab.csv")
	user, secret := newUser(t, srv, bucketPolicy(bucket, "s3:GetObject", "s3:PutObject", "s3:DeleteObject"))
	conn, err := New(platformConfig(user, secret), platformPrincipal, minioConnection(srv.Endpoint, "validate-stale", bucket, "imports/"))
	if err != nil {
		t.Fatal(err)
	}
	// The default age keeps a fresh marker: it may be another validation's.
	if _, err := conn.Validate(ctx); err != nil {
		t.Fatal(err)
	}
	if keys, _ := srv.Keys(ctx, bucket, stale); len(keys) != 1 {
		t.Fatal("a fresh marker was removed")
	}
	defer func(age time.Duration) { staleMarkerAge = age }(staleMarkerAge)
	staleMarkerAge = 0
	report, err := conn.Validate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := report.Checks[len(report.Checks)-1].Detail; !strings.Contains(d, "removed 1 marker(s)") {
		t.Errorf("detail %q does not say the stale marker was removed", d)
	}
	keys, err := srv.Keys(ctx, bucket, "imports/archive/")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"imports/archive/kept.20261201T000000Z-0123456789ab.csv"}) {
		t.Errorf("archive/ holds %q, want only the archived file", keys)
	}
}

// A validation cancelled part-way (the daemon stopping while it validates)
// still removes the marker it wrote: the proxy cancels the validation's
// context as the marker is read back.
func TestValidateCancelledRemovesItsMarker(t *testing.T) {
	srv := needMinIO(t)
	bucket := "validate-cancelled"
	seed(t, srv, bucket, "imports/a.csv")
	rec := newRecorder(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec.Answer(func(r *http.Request) (int, string, bool) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, markerPrefix) {
			cancel()
		}
		return 0, "", false
	})
	user, secret := newUser(t, srv, bucketPolicy(bucket, "s3:GetObject", "s3:PutObject", "s3:DeleteObject"))
	c := minioConnection(rec.URL, "validate-cancelled", bucket, "imports/")
	c.STSEndpoint = srv.Endpoint
	conn, err := New(platformConfig(user, secret), platformPrincipal, c)
	if err != nil {
		t.Fatal(err)
	}
	conn.Validate(ctx) //nolint:errcheck // cancelled: whatever it reports
	if ctx.Err() == nil {
		t.Fatal("the marker was never read back: nothing was cancelled")
	}
	keys, err := srv.Keys(context.Background(), bucket, "imports/archive/")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("a cancelled validation left %q in archive/", keys)
	}
}

package connector

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3connector/s3connector/connector/miniotest"
)

// fastFixture is a connection to a fresh MinIO bucket through a recording
// proxy, whose every request attempt is recorded by the hook too.
type fastFixture struct {
	srv    *miniotest.Server
	proxy  *miniotest.Proxy
	conn   *Connection
	bucket string

	mu      sync.Mutex
	results []string // "Op result" per attempt, from the request hook
}

func newFastFixture(t *testing.T, bucket string, kms bool) *fastFixture {
	t.Helper()
	srv := needMinIO(t)
	ctx := context.Background()
	if err := srv.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	if kms {
		if err := srv.EnableKMS(ctx, bucket); err != nil {
			t.Fatal(err)
		}
	}
	f := &fastFixture{srv: srv, proxy: newRecorder(t, srv), bucket: bucket}
	user, secret := newUser(t, srv, bucketPolicy(bucket, "s3:*"))
	c := minioConnection(f.proxy.URL, "fast", bucket, "inbox/")
	conn, err := New(platformConfig(user, secret), platformPrincipal, c, WithHooks(Hooks{S3Request: func(op string, err error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.results = append(f.results, op+" "+ResultLabel(err, miniotest.Region))
	}}))
	if err != nil {
		t.Fatal(err)
	}
	if conn.FastS3().fast == nil {
		t.Fatal("the short path is off; is " + shortPathEnv + " set?")
	}
	f.conn = conn
	return f
}

// requests returns the recorded S3 requests to the fixture's bucket (not
// the AssumeRole calls, which go through the proxy too).
func (f *fastFixture) requests() []miniotest.Request {
	var out []miniotest.Request
	for _, q := range f.proxy.Requests() {
		if strings.HasPrefix(q.Path, "/"+f.bucket) {
			out = append(out, q)
		}
	}
	return out
}

func (f *fastFixture) attempts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.results
	f.results = nil
	return out
}

// sdkSent says whether a recorded request came through the SDK's
// middleware stack, which sends amz-sdk-request on every attempt; the
// short path does not.
func sdkSent(q miniotest.Request) bool { return q.Header.Get("Amz-Sdk-Request") != "" }

// outputFields returns v's exported fields but Body and ResultMetadata,
// for comparing the two paths' outputs.
func outputFields(v any) map[string]any {
	rv := reflect.ValueOf(v).Elem()
	out := map[string]any{}
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		// Expires: deprecated in the SDK; the short path sets ExpiresString only.
		if !f.IsExported() || f.Name == "Body" || f.Name == "ResultMetadata" || f.Name == "Expires" {
			continue
		}
		out[f.Name] = rv.Field(i).Interface()
	}
	return out
}

func diffFields(t *testing.T, what string, sdk, fast map[string]any) {
	t.Helper()
	for name, want := range sdk {
		if got := fast[name]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s: short path %s, SDK %s", what, name, show(got), show(want))
		}
	}
}

func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "nil"
		}
		return "&" + show(rv.Elem().Interface())
	}
	return strings.TrimSpace(strings.ReplaceAll(reflect.ValueOf(v).String(), "\n", " ")) + "(" + rv.Type().String() + ")"
}

// TestFastGetObjectMatchesTheSDK reads objects with every attribute the
// daemon keeps (metadata, content headers, tags, SSE-KMS, a version id)
// and awkward keys through both paths, on MinIO: the short path's output
// is the SDK's field by field, the bodies are the same bytes (a gzip
// Content-Encoding is not decoded), and the short path's requests really
// took it (no SDK attempt header) to the same URL path.
func TestFastGetObjectMatchesTheSDK(t *testing.T) {
	f := newFastFixture(t, "fast-get", true)
	ctx := context.Background()
	enableVersioning(t, f.srv, f.bucket)
	keys := []string{"inbox/plain.csv", "inbox/a b+c/ü é%25;=&?.csv", "inbox/(1) [x] {y} ~!@$'*,.csv", "inbox/gz.csv.gz"}
	for _, k := range keys {
		in := &s3.PutObjectInput{
			Bucket: aws.String(f.bucket), Key: aws.String(k), Body: strings.NewReader("body of " + k),
			ContentType: aws.String("text/csv"), CacheControl: aws.String("no-cache"),
			ContentDisposition: aws.String(`attachment; filename="x.csv"`), ContentLanguage: aws.String("de"),
			Metadata: map[string]string{"source": "sftp", "Mixed-Case": "Value"}, Tagging: aws.String("a=1&b=2"),
		}
		if strings.HasSuffix(k, ".gz") {
			in.ContentEncoding = aws.String("gzip")
			in.Body = strings.NewReader("\x1f\x8b\x08\x00not really gzip")
		}
		if _, err := f.srv.Root().PutObject(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	fast, sdk := f.conn.FastS3(), f.conn.S3()
	for _, k := range keys {
		head, err := f.srv.Root().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		for _, input := range []*s3.GetObjectInput{
			{Bucket: aws.String(f.bucket), Key: aws.String(k), IfMatch: head.ETag},
			{Bucket: aws.String(f.bucket), Key: aws.String(k), IfMatch: head.ETag, Range: aws.String("bytes=2-5")},
			{Bucket: aws.String(f.bucket), Key: aws.String(k), VersionId: head.VersionId},
		} {
			before := len(f.requests())
			// Each call its own input: the SDK's path writes into it
			// (ChecksumMode, when it validates response checksums).
			in := *input
			want, err := sdk.GetObject(ctx, &in)
			if err != nil {
				t.Fatalf("SDK GetObject %q: %v", k, err)
			}
			wantBody, _ := io.ReadAll(want.Body)
			want.Body.Close()
			in = *input
			got, err := fast.GetObject(ctx, &in)
			if err != nil {
				t.Fatalf("short GetObject %q: %v", k, err)
			}
			gotBody, _ := io.ReadAll(got.Body)
			got.Body.Close()
			if string(gotBody) != string(wantBody) {
				t.Errorf("%q: short path body %q, SDK %q", k, gotBody, wantBody)
			}
			diffFields(t, k, outputFields(want), outputFields(got))
			reqs := f.requests()[before:]
			if len(reqs) != 2 || !sdkSent(reqs[0]) || sdkSent(reqs[1]) {
				for _, q := range reqs {
					t.Logf("%s %s %v", q.Method, q.Path, q.Header)
				}
				t.Fatalf("%q: want one SDK request, then one on the short path; got %d", k, len(reqs))
			}
			if reqs[0].Path != reqs[1].Path {
				t.Errorf("%q: short path asked for %q, SDK for %q", k, reqs[1].Path, reqs[0].Path)
			}
		}
	}
	// The attributes the daemon reads really were there to compare.
	got, err := fast.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(keys[1])})
	if err != nil {
		t.Fatal(err)
	}
	got.Body.Close()
	if got.Metadata["source"] != "sftp" || got.Metadata["mixed-case"] != "Value" || aws.ToString(got.ContentType) != "text/csv" ||
		got.ServerSideEncryption != types.ServerSideEncryptionAwsKms || aws.ToString(got.VersionId) == "" ||
		aws.ToInt32(got.TagCount) != 2 || got.LastModified == nil || aws.ToInt64(got.ContentLength) == 0 {
		t.Errorf("short path output lacks attributes: %+v", got)
	}
}

// TestFastPathErrorsMatchTheSDK: a wrong If-Match, a missing key and a
// wrong copy condition are settled on the short path (one attempt, no
// SDK retry) and classified exactly as the SDK's path classifies them.
func TestFastPathErrorsMatchTheSDK(t *testing.T) {
	f := newFastFixture(t, "fast-errors", false)
	ctx := context.Background()
	if err := f.srv.Put(ctx, f.bucket, "inbox/a.csv", []byte("a")); err != nil {
		t.Fatal(err)
	}
	fast, sdk := f.conn.FastS3(), f.conn.S3()
	bucket := aws.String(f.bucket)
	cases := map[string]func(get func(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error),
		copy func(context.Context, *s3.CopyObjectInput, ...func(*s3.Options)) (*s3.CopyObjectOutput, error)) error{
		"wrong If-Match": func(get func(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error), _ func(context.Context, *s3.CopyObjectInput, ...func(*s3.Options)) (*s3.CopyObjectOutput, error)) error {
			_, err := get(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String("inbox/a.csv"), IfMatch: aws.String(`"0123"`)})
			return err
		},
		"missing key": func(get func(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error), _ func(context.Context, *s3.CopyObjectInput, ...func(*s3.Options)) (*s3.CopyObjectOutput, error)) error {
			_, err := get(ctx, &s3.GetObjectInput{Bucket: bucket, Key: aws.String("inbox/missing.csv")})
			return err
		},
		"wrong copy source If-Match": func(_ func(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error), copy func(context.Context, *s3.CopyObjectInput, ...func(*s3.Options)) (*s3.CopyObjectOutput, error)) error {
			_, err := copy(ctx, &s3.CopyObjectInput{Bucket: bucket, Key: aws.String("inbox/archive/a.csv"),
				CopySource: aws.String(f.bucket + "/inbox/a.csv"), CopySourceIfMatch: aws.String(`"0123"`)})
			return err
		},
	}
	for name, call := range cases {
		t.Run(name, func(t *testing.T) {
			wantErr := call(sdk.GetObject, sdk.CopyObject)
			f.attempts()
			before := len(f.requests())
			gotErr := call(fast.GetObject, fast.CopyObject)
			if wantErr == nil || gotErr == nil {
				t.Fatalf("want errors; SDK %v, short path %v", wantErr, gotErr)
			}
			if w, g := ResultLabel(wantErr, miniotest.Region), ResultLabel(gotErr, miniotest.Region); w != g {
				t.Errorf("short path result %s, SDK %s", g, w)
			}
			var wantAPI, gotAPI smithy.APIError
			if !errors.As(wantErr, &wantAPI) || !errors.As(gotErr, &gotAPI) || wantAPI.ErrorCode() != gotAPI.ErrorCode() {
				t.Errorf("short path error %v, SDK %v", gotErr, wantErr)
			}
			var wantOp, gotOp *smithy.OperationError
			if !errors.As(gotErr, &gotOp) || !errors.As(wantErr, &wantOp) || gotOp.Operation() != wantOp.Operation() {
				t.Errorf("short path error %v is not an operation error like the SDK's %v", gotErr, wantErr)
			}
			if reqs := f.requests()[before:]; len(reqs) != 1 || sdkSent(reqs[0]) {
				t.Errorf("want one request on the short path, got %d", len(reqs))
			}
			if a := f.attempts(); len(a) != 1 {
				t.Errorf("hook saw %v, want one attempt", a)
			}
		})
	}
}

// TestFastCopyObjectMatchesTheSDK copies a tagged SSE-KMS object with
// the move's directives through both paths: both copies carry the same
// metadata, content headers, tags and encryption.
func TestFastCopyObjectMatchesTheSDK(t *testing.T) {
	f := newFastFixture(t, "fast-copy", true)
	ctx := context.Background()
	root := f.srv.Root()
	src := "inbox/a b+c/ü.csv"
	put, err := root.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(f.bucket), Key: aws.String(src), Body: strings.NewReader("copy me"),
		ContentType: aws.String("text/csv"), Metadata: map[string]string{"source": "sftp"}, Tagging: aws.String("a=1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	in := func(dest string) *s3.CopyObjectInput {
		return &s3.CopyObjectInput{
			Bucket: aws.String(f.bucket), Key: aws.String(dest), CopySource: aws.String(f.bucket + "/inbox/a%20b%2Bc/%C3%BC.csv"), // as archive.CopySource encodes it
			CopySourceIfMatch: put.ETag, IfNoneMatch: aws.String("*"),
			MetadataDirective: types.MetadataDirectiveCopy, TaggingDirective: types.TaggingDirectiveCopy,
			ServerSideEncryption: types.ServerSideEncryptionAwsKms, SSEKMSKeyId: aws.String(miniotest.KMSKeyID),
		}
	}
	before := len(f.requests())
	wantOut, err := f.conn.S3().CopyObject(ctx, in("inbox/archive/sdk.csv"))
	if err != nil {
		t.Fatal(err)
	}
	gotOut, err := f.conn.FastS3().CopyObject(ctx, in("inbox/archive/fast.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if reqs := f.requests()[before:]; len(reqs) != 2 || sdkSent(reqs[1]) {
		t.Fatalf("want the second copy on the short path; got %d requests", len(reqs))
	}
	if gotOut.CopyObjectResult == nil || aws.ToString(gotOut.CopyObjectResult.ETag) == "" ||
		gotOut.ServerSideEncryption != wantOut.ServerSideEncryption || aws.ToString(gotOut.SSEKMSKeyId) != aws.ToString(wantOut.SSEKMSKeyId) {
		t.Errorf("short path output %+v, SDK %+v", gotOut, wantOut)
	}
	heads := map[string]map[string]any{}
	tags := map[string][]types.Tag{}
	for _, k := range []string{"inbox/archive/sdk.csv", "inbox/archive/fast.csv"} {
		h, err := root.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		fields := outputFields(h)
		// MinIO's SSE-KMS ETags are random per object.
		delete(fields, "LastModified")
		delete(fields, "ETag")
		heads[k] = fields
		tg, err := root.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(f.bucket), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		tags[k] = tg.TagSet
	}
	diffFields(t, "copy", heads["inbox/archive/sdk.csv"], heads["inbox/archive/fast.csv"])
	if !reflect.DeepEqual(tags["inbox/archive/sdk.csv"], tags["inbox/archive/fast.csv"]) || len(tags["inbox/archive/fast.csv"]) != 1 {
		t.Errorf("tags: short path %v, SDK %v", tags["inbox/archive/fast.csv"], tags["inbox/archive/sdk.csv"])
	}
	if heads["inbox/archive/fast.csv"]["Metadata"].(map[string]string)["source"] != "sftp" {
		t.Errorf("short path copy lost the metadata: %v", heads["inbox/archive/fast.csv"])
	}
}

// TestFastPathHandsRetriesToTheSDK: an answer the retryer retries (503
// SlowDown on a GET, a 200 CopyObject answer carrying an error, which
// AWS documents) is not retried on the short path but handed to the SDK's
// operation, which retries it; every attempt is reported.
func TestFastPathHandsRetriesToTheSDK(t *testing.T) {
	f := newFastFixture(t, "fast-retry", false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := f.srv.Put(ctx, f.bucket, "inbox/a.csv", []byte("a")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	failed := map[string]bool{}
	f.proxy.Answer(func(r *http.Request) (int, string, bool) {
		mu.Lock()
		defer mu.Unlock()
		if !strings.HasPrefix(r.URL.Path, "/"+f.bucket+"/") || failed[r.Method] {
			return 0, "", false
		}
		failed[r.Method] = true
		if r.Method == http.MethodGet {
			return http.StatusServiceUnavailable, `<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`, true
		}
		return http.StatusOK, `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>`, true
	})
	fast := f.conn.FastS3()
	out, err := fast.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(f.bucket), Key: aws.String("inbox/a.csv")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(body) != "a" {
		t.Errorf("body %q", body)
	}
	if _, err := fast.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(f.bucket), Key: aws.String("inbox/archive/a.csv"),
		CopySource: aws.String(f.bucket + "/inbox/a.csv")}); err != nil {
		t.Fatal(err)
	}
	want := []string{"GetObject throttled", "GetObject ok", "CopyObject error", "CopyObject ok"}
	if got := f.attempts(); !reflect.DeepEqual(got, want) {
		t.Errorf("attempts %v, want %v", got, want)
	}
	reqs := f.requests()
	var sdkRetries int
	for _, q := range reqs {
		if sdkSent(q) {
			sdkRetries++
			if !strings.Contains(q.Header.Get("Amz-Sdk-Request"), "attempt=1") {
				t.Errorf("the SDK's path began at %q", q.Header.Get("Amz-Sdk-Request"))
			}
		}
	}
	if sdkRetries != 2 {
		t.Errorf("want each retry sent by the SDK's path, got %d of %d requests", sdkRetries, len(reqs))
	}
}

// TestShortPathInputs: only inputs the short path fully sends take it.
func TestShortPathInputs(t *testing.T) {
	b, k := aws.String("b"), aws.String("k")
	for _, tt := range []struct {
		in   any
		want bool
	}{
		{&s3.GetObjectInput{Bucket: b, Key: k, IfMatch: aws.String(`"e"`), Range: aws.String("bytes=0-1"), VersionId: aws.String("v")}, true},
		{&s3.GetObjectInput{Bucket: b, Key: k, SSECustomerKey: aws.String("x")}, false},
		{&s3.GetObjectInput{Bucket: b, Key: k, ExpectedBucketOwner: aws.String("1")}, false},
		{&s3.GetObjectInput{Bucket: b, Key: k, ChecksumMode: types.ChecksumModeEnabled}, false},
		{&s3.GetObjectInput{Bucket: b}, false},
		{&s3.CopyObjectInput{Bucket: b, Key: k, CopySource: aws.String("b/s"), MetadataDirective: types.MetadataDirectiveCopy, BucketKeyEnabled: aws.Bool(true)}, true},
		{&s3.CopyObjectInput{Bucket: b, Key: k, CopySource: aws.String("b/s"), Metadata: map[string]string{"a": "b"}}, false},
		{&s3.CopyObjectInput{Bucket: b, Key: k, CopySource: aws.String("b/s"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32}, false},
		{&s3.CopyObjectInput{Bucket: b, Key: k}, false},
		{&s3.DeleteObjectsInput{Bucket: b, Delete: &types.Delete{Quiet: aws.Bool(true), Objects: []types.ObjectIdentifier{{Key: k, ETag: aws.String(`"e"`)}, {Key: k}}}}, true},
		{&s3.DeleteObjectsInput{Bucket: b, Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: k}}}}, false},
		{&s3.DeleteObjectsInput{Bucket: b, Delete: &types.Delete{Quiet: aws.Bool(true), Objects: []types.ObjectIdentifier{{Key: k, VersionId: aws.String("v")}}}}, false},
		{&s3.DeleteObjectsInput{Bucket: b, BypassGovernanceRetention: aws.Bool(true), Delete: &types.Delete{Quiet: aws.Bool(true), Objects: []types.ObjectIdentifier{{Key: k}}}}, false},
	} {
		var got bool
		switch in := tt.in.(type) {
		case *s3.GetObjectInput:
			got = shortGet(in)
		case *s3.CopyObjectInput:
			got = shortCopy(in)
		case *s3.DeleteObjectsInput:
			got = shortDelete(in)
		}
		if got != tt.want {
			t.Errorf("%+v: short path %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestFastDeleteObjectsMatchesTheSDK deletes batches through both paths
// on MinIO (the keys are gone, the requests go to the same path and
// query), then reads one canned answer of the kind AWS documents — a
// Deleted entry and per-key Errors (a failed ETag condition, access
// denied) — through both: the outputs are the same. MinIO ignores the
// ETag conditions in a DeleteObjects body, hence the canned answer.
func TestFastDeleteObjectsMatchesTheSDK(t *testing.T) {
	f := newFastFixture(t, "fast-delete", false)
	ctx := context.Background()
	batch := func(keys ...string) *s3.DeleteObjectsInput {
		objs := make([]types.ObjectIdentifier, len(keys))
		for i, k := range keys {
			if err := f.srv.Put(ctx, f.bucket, k, []byte(k)); err != nil {
				t.Fatal(err)
			}
			head, err := f.srv.Root().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(k)})
			if err != nil {
				t.Fatal(err)
			}
			objs[i] = types.ObjectIdentifier{Key: aws.String(k), ETag: head.ETag}
		}
		return &s3.DeleteObjectsInput{Bucket: aws.String(f.bucket), Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)}}
	}
	before := len(f.requests())
	if out, err := f.conn.S3().DeleteObjects(ctx, batch("inbox/sdk-1.csv", "inbox/sdk <&>\"'.csv")); err != nil || len(out.Errors) != 0 {
		t.Fatalf("SDK: %v %+v", err, out)
	}
	out, err := f.conn.FastS3().DeleteObjects(ctx, batch("inbox/fast-1.csv", "inbox/fast <&>\"'.csv"))
	if err != nil || len(out.Errors) != 0 {
		t.Fatalf("short path: %v %+v", err, out)
	}
	keys, err := f.srv.Keys(ctx, f.bucket, "inbox/")
	if err != nil || len(keys) != 0 {
		t.Fatalf("left after the deletes: %v %v", keys, err)
	}
	var posts []miniotest.Request
	for _, q := range f.requests()[before:] {
		if q.Method == http.MethodPost {
			posts = append(posts, q)
		}
	}
	if len(posts) != 2 || !sdkSent(posts[0]) || sdkSent(posts[1]) {
		t.Fatalf("want one SDK delete, then one on the short path; got %d", len(posts))
	}
	if posts[0].Path != posts[1].Path || !strings.HasPrefix(posts[1].Query, "delete") {
		t.Errorf("short path sent %s?%s, SDK %s?%s", posts[1].Path, posts[1].Query, posts[0].Path, posts[0].Query)
	}
	if !strings.Contains(posts[1].Body, "<Key>inbox/fast &lt;&amp;&gt;&#34;&#39;.csv</Key>") || !strings.Contains(posts[1].Body, "<Quiet>true</Quiet>") {
		t.Errorf("short path body %s", posts[1].Body)
	}

	canned := `<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Deleted><Key>inbox/a.csv</Key><DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>dm1</DeleteMarkerVersionId></Deleted>
  <Error><Key>inbox/b.csv</Key><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>
  <Error><Key>inbox/c &amp; d.csv</Key><VersionId>v3</VersionId><Code>AccessDenied</Code><Message>Access Denied</Message></Error>
</DeleteResult>`
	f.proxy.Answer(func(r *http.Request) (int, string, bool) {
		return http.StatusOK, canned, r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/"+f.bucket)
	})
	in := func() *s3.DeleteObjectsInput {
		return &s3.DeleteObjectsInput{Bucket: aws.String(f.bucket), Delete: &types.Delete{Quiet: aws.Bool(true), Objects: []types.ObjectIdentifier{
			{Key: aws.String("inbox/a.csv"), ETag: aws.String(`"1"`)}, {Key: aws.String("inbox/b.csv"), ETag: aws.String(`"2"`)}, {Key: aws.String("inbox/c & d.csv")},
		}}}
	}
	want, err := f.conn.S3().DeleteObjects(ctx, in())
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.conn.FastS3().DeleteObjects(ctx, in())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Errors) != 2 {
		t.Fatalf("short path read %d errors, want 2", len(got.Errors))
	}
	if !reflect.DeepEqual(outputFields(got), outputFields(want)) {
		t.Errorf("short path output %+v, SDK %+v", outputFields(got), outputFields(want))
	}

	// A 200 answer that is no DeleteResult is never read as "nothing
	// failed" on the short path (the SDK's path reads it as an empty
	// result), and not retried.
	f.proxy.Answer(func(r *http.Request) (int, string, bool) {
		return http.StatusOK, `<html>gateway</html>`, r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/"+f.bucket)
	})
	f.attempts()
	if _, err := f.conn.FastS3().DeleteObjects(ctx, in()); err == nil {
		t.Error("an answer that is no DeleteResult was taken for success")
	}
	if a := f.attempts(); len(a) != 1 {
		t.Errorf("attempts %v, want one", a)
	}
	if out, err := f.conn.S3().DeleteObjects(ctx, in()); err == nil && len(out.Errors) == 0 {
		t.Log("the SDK's path takes the same answer for a success")
	}
}

// TestFastPathCorrectsClockSkew: a GET refused with RequestTimeTooSkewed
// by a server whose clock is an hour ahead (its Date header) makes the
// short path sign its next requests on the server's time, as the SDK's
// path corrects its own. A canned server: MinIO's clock is this machine's.
func TestFastPathCorrectsClockSkew(t *testing.T) {
	canned := cannedS3()
	ahead := time.Hour
	var mu sync.Mutex
	var dates []time.Time
	refused := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			d, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
			mu.Lock()
			if err == nil {
				dates = append(dates, d)
			}
			first := !refused
			refused = true
			mu.Unlock()
			if first {
				w.Header().Set("Date", time.Now().Add(ahead).UTC().Format(http.TimeFormat))
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, `<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message></Error>`)
				return
			}
		}
		canned.ServeHTTP(w, r)
	}))
	defer srv.Close()
	conn, err := New(platformConfig("user", "secret"), platformPrincipal, minioConnection(srv.URL, "skew", "bucket", "inbox/"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 {
		out, err := conn.FastS3().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("inbox/a.csv")})
		if err != nil {
			t.Fatal(err)
		}
		out.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(dates) != 3 {
		t.Fatalf("want 3 GETs (refused, the SDK's retry, the next file's), got %d", len(dates))
	}
	if d := time.Until(dates[2]); d < ahead-time.Minute || d > ahead+time.Minute {
		t.Errorf("the request after the refusal was signed %v from now, want about %v", d.Round(time.Second), ahead)
	}
}

// TestShortPathSwitch: S3CONNECTOR_S3_SHORT_PATH turns the short path off,
// and a value that is neither on nor off is an error naming the variable.
func TestShortPathSwitch(t *testing.T) {
	c := minioConnection("http://127.0.0.1:1", "switch", "bucket", "inbox/")
	for _, tt := range []struct {
		value   string
		fast    bool
		wantErr bool
	}{{"", true, false}, {"on", true, false}, {"off", false, false}, {"no", false, true}} {
		t.Setenv(shortPathEnv, tt.value)
		conn, err := New(platformConfig("k", "s"), platformPrincipal, c)
		if tt.wantErr {
			if err == nil || !strings.Contains(err.Error(), shortPathEnv) {
				t.Errorf("%q: error %v, want one naming %s", tt.value, err, shortPathEnv)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tt.value, err)
		}
		if got := conn.FastS3().fast != nil; got != tt.fast {
			t.Errorf("%q: short path %v, want %v", tt.value, got, tt.fast)
		}
	}
}

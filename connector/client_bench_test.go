package connector

import (
	"context"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// cannedS3 answers STS AssumeRole, GetObject (4 KiB, with its CRC32 when
// asked for checksums, as AWS does for every object written since 2025),
// CopyObject and DeleteObjects at once: a benchmark of the client's own
// per-request work, without a real store's CPU on the same cores.
func cannedS3() http.Handler {
	body := strings.Repeat("x", 4096)
	sum := crc32.ChecksumIEEE([]byte(body))
	crc := base64.StdEncoding.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	lastModified := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).Format(http.TimeFormat)
	exp := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h.Set("x-amz-request-id", "0123456789ABCDEF")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/":
			fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>`+
				`<AccessKeyId>AKIAEXAMPLE</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken>`+
				`<Expiration>%s</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>`, exp)
		case r.Method == http.MethodGet:
			h.Set("ETag", `"0123456789abcdef0123456789abcdef"`)
			h.Set("Last-Modified", lastModified)
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Content-Length", strconv.Itoa(len(body)))
			h.Set("x-amz-meta-source", "bench")
			if r.Header.Get("x-amz-checksum-mode") == "ENABLED" {
				h.Set("x-amz-checksum-crc32", crc)
			}
			_, _ = io.WriteString(w, body)
		case r.Method == http.MethodPut:
			_, _ = io.WriteString(w, `<CopyObjectResult><LastModified>2025-01-02T03:04:05.000Z</LastModified><ETag>"0123456789abcdef0123456789abcdef"</ETag></CopyObjectResult>`)
		case r.Method == http.MethodPost:
			_, _ = io.WriteString(w, `<DeleteResult></DeleteResult>`)
		default:
			http.Error(w, "unexpected", http.StatusBadRequest)
		}
	})
}

// BenchmarkSmallFileRequests measures the client CPU and allocations of one
// small file's requests through a connection's S3 client (New's settings
// and a hook as `run` installs it): GetObject read to the end, CopyObject,
// and a twentieth of a DeleteObjects of 20 keys. The canned server runs in
// the same process, so ns/op includes its share; compare runs of this
// benchmark, not its absolute figure. cpu-ns/op is the process's user+sys
// time per file (both sides), steadier than ns/op on a shared machine.
//
//	go test -run '^$' -bench SmallFileRequests -benchmem ./connector
//
// The sdk cases send every request through the SDK's path, the short ones
// GetObject and CopyObject on FastS3's short path (DeleteObjects stays on
// the SDK's either way).
func BenchmarkSmallFileRequests(b *testing.B) {
	for _, path := range []string{"sdk", "short"} {
		b.Run(path+"/http", func(b *testing.B) { benchmarkSmallFileRequests(b, httptest.NewServer(cannedS3()), path == "short") })
		b.Run(path+"/https", func(b *testing.B) { benchmarkSmallFileRequests(b, httptest.NewTLSServer(cannedS3()), path == "short") })
	}
}

// smallFileClient is what the file requests of BenchmarkSmallFileRequests
// go through.
type smallFileClient interface {
	GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	CopyObject(context.Context, *s3.CopyObjectInput, ...func(*s3.Options)) (*s3.CopyObjectOutput, error)
	DeleteObjects(context.Context, *s3.DeleteObjectsInput, ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error)
}

func benchmarkSmallFileRequests(b *testing.B, srv *httptest.Server, short bool) {
	defer srv.Close()
	c := minioConnection(srv.URL, "bench", "bucket", "inbox/")
	platform := platformConfig("user", "secret")
	if srv.TLS != nil {
		tlsConfig := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		platform.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) { t.TLSClientConfig = tlsConfig })
	}
	// What LoadPlatformConfig resolves when the environment says nothing.
	platform.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenSupported
	platform.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported
	conn, err := New(platform, platformPrincipal, c, WithHooks(Hooks{S3Request: func(string, error) {}}))
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if _, err := conn.AssumeRole(ctx); err != nil {
		b.Fatal(err)
	}
	var client smallFileClient = conn.S3()
	if short {
		client = conn.FastS3()
	}
	bucket, key, etag := "bucket", "inbox/2025/file.csv", `"0123456789abcdef0123456789abcdef"`
	objects := make([]types.ObjectIdentifier, 0, 20)
	b.ReportAllocs()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	for i := 0; b.Loop(); i++ {
		out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, IfMatch: &etag})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, out.Body); err != nil {
			b.Fatal(err)
		}
		out.Body.Close()
		if _, err := client.CopyObject(ctx, &s3.CopyObjectInput{
			Bucket: &bucket, Key: aws.String("inbox/archive/2025/file.csv"), CopySource: aws.String(bucket + "/" + key),
			CopySourceIfMatch: &etag, IfNoneMatch: aws.String("*"),
			MetadataDirective: types.MetadataDirectiveCopy, TaggingDirective: types.TaggingDirectiveCopy,
		}); err != nil {
			b.Fatal(err)
		}
		objects = append(objects, types.ObjectIdentifier{Key: &key, ETag: &etag})
		if len(objects) == cap(objects) {
			if _, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &bucket, Delete: &types.Delete{Objects: objects, Quiet: aws.Bool(true)}}); err != nil {
				b.Fatal(err)
			}
			objects = objects[:0]
		}
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
}

package connector

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector/miniotest"
)

// The MinIO server is shared by the package's tests and started on first use.
func TestMain(m *testing.M) {
	code := m.Run()
	miniotest.CloseShared()
	os.Exit(code)
}

// needMinIO returns the test binary's shared MinIO server, started on first
// use (miniotest.Shared).
func needMinIO(t *testing.T) *miniotest.Server {
	t.Helper()
	return miniotest.Shared(t)
}

// minioExternalID is only ever sent to MinIO, which ignores it.
const minioExternalID = "s3connector-test-external-id-0001"

const platformPrincipal = "arn:aws:iam::049579744830:root"

// platformConfig is the platform identity for tests: a MinIO user's static
// keys, as the default credential chain would provide them.
func platformConfig(user, secret string) aws.Config {
	return aws.Config{
		Region:      miniotest.Region,
		Credentials: credentials.NewStaticCredentialsProvider(user, secret, ""),
		HTTPClient:  awshttp.NewBuildableClient(),
	}
}

func minioConnection(endpoint string, name, bucket, basePath string) config.Connection {
	return config.Connection{
		Name:        name,
		Status:      config.StatusActive,
		AccountID:   "123456789012",
		Bucket:      bucket,
		Region:      miniotest.Region,
		BasePath:    basePath,
		RoleName:    config.RoleNamePrefix + name,
		ExternalID:  minioExternalID,
		Workers:     4,
		Endpoint:    endpoint,
		STSEndpoint: endpoint,
	}
}

// bucketPolicy is a broad policy on one bucket, for users that play a
// correctly configured customer role.
func bucketPolicy(bucket string, actions ...string) []byte {
	acts := ""
	for i, a := range actions {
		if i > 0 {
			acts += ","
		}
		acts += fmt.Sprintf("%q", a)
	}
	return []byte(fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::%[1]s"]},
	 {"Effect":"Allow","Action":[%[2]s],"Resource":["arn:aws:s3:::%[1]s/*"]}]}`, bucket, acts))
}

var userSeq struct {
	sync.Mutex
	n int
}

// newUser creates a MinIO user with the given policy and returns its keys.
func newUser(t *testing.T, srv *miniotest.Server, policy []byte) (string, string) {
	t.Helper()
	userSeq.Lock()
	userSeq.n++
	n := userSeq.n
	userSeq.Unlock()
	user, secret := fmt.Sprintf("platform-%d", n), fmt.Sprintf("platform-secret-%d", n)
	if err := srv.AddUser(context.Background(), user, secret, policy); err != nil {
		t.Fatal(err)
	}
	return user, secret
}

func seed(t *testing.T, srv *miniotest.Server, bucket string, keys ...string) {
	t.Helper()
	ctx := context.Background()
	if err := srv.CreateBucket(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := srv.Put(ctx, bucket, k, []byte("content of "+k+"\n")); err != nil {
			t.Fatal(err)
		}
	}
}

// enableVersioning turns versioning on for bucket (MinIO supports it, and
// its suspension, on a single drive).
func enableVersioning(t *testing.T, srv *miniotest.Server, bucket string) {
	t.Helper()
	if _, err := srv.Root().PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(bucket),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	}); err != nil {
		t.Fatal(err)
	}
}

// newRecorder is the recording proxy in front of MinIO (miniotest.Proxy),
// for what MinIO does not show: it ignores If-Match on DeleteObject and
// If-None-Match on CopyObject, and it enforces none of the tagging
// permissions (see TestValidateSendsTheMoveRequests).
func newRecorder(t *testing.T, srv *miniotest.Server) *miniotest.Proxy { return srv.NewProxy(t) }

// requestsTo returns the recorded requests whose method is method and
// whose path ends with suffix.
func requestsTo(p *miniotest.Proxy, method, suffix string) []miniotest.Request {
	var out []miniotest.Request
	for _, q := range p.Requests() {
		if q.Method == method && strings.HasSuffix(q.Path, suffix) {
			out = append(out, q)
		}
	}
	return out
}

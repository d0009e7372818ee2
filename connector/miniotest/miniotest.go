// Package miniotest starts a real MinIO server for tests: S3, STS and SSE-KMS
// on a free loopback port, with helpers to create buckets, objects and
// non-root users whose policy plays a customer's IAM role.
//
// The minio and mc binaries are built from the Go module proxy at pinned
// versions by `make tools` into .cache/bin at the repository root (or the
// directory named by S3CONNECTOR_TOOLS). Tests fail with that hint when
// they are missing.
package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Region is the region the server answers as (MINIO_SITE_REGION): HeadBucket
// reports it and requests signed for another region fail as on AWS.
const Region = "ap-southeast-2"

// KMSKeyID is the name of the server's built-in KMS key (MINIO_KMS_SECRET_KEY).
const KMSKeyID = "s3connector-test-key"

// Server is a running MinIO process.
type Server struct {
	// Endpoint is the S3, STS and admin endpoint, http://127.0.0.1:PORT.
	Endpoint  string
	RootUser  string
	RootPass  string
	dir       string
	cmd       *exec.Cmd
	done      chan error
	logFile   *os.File
	rootStore *s3.Client
}

// ToolsDir is where `make tools` installs minio, mc and the other test tools.
func ToolsDir() (string, error) {
	if d := os.Getenv("S3CONNECTOR_TOOLS"); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".cache", "bin"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod) not found above the working directory; set S3CONNECTOR_TOOLS")
		}
		dir = parent
	}
}

// Tool returns the path of an installed test tool, or an error telling how
// to install it.
func Tool(name string) (string, error) {
	dir, err := ToolsDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found at %s: run `make tools` (builds it from the Go module proxy) or set S3CONNECTOR_TOOLS", name, p)
	}
	return p, nil
}

// Start starts MinIO in a fresh temporary directory and waits until it
// serves requests. Close stops it and removes the directory.
func Start(ctx context.Context) (*Server, error) {
	bin, err := Tool("minio")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "s3connector-minio-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	// A free port can be taken between probing and binding; try a few.
	for range 3 {
		s, err := startOnce(ctx, bin, dir)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func startOnce(ctx context.Context, bin, dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	consolePort, err := freePort()
	if err != nil {
		return nil, err
	}
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port),
		RootUser: "s3connector-root",
		RootPass: "s3connector-root-secret",
		dir:      dir,
		done:     make(chan error, 1),
	}
	s.logFile, err = os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "server", "--quiet",
		"--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", consolePort),
		filepath.Join(dir, "data"))
	s.cmd.Env = append(cleanEnv(),
		"MINIO_ROOT_USER="+s.RootUser,
		"MINIO_ROOT_PASSWORD="+s.RootPass,
		"MINIO_KMS_SECRET_KEY="+KMSKeyID+":"+base64.StdEncoding.EncodeToString(key[:]),
		"MINIO_SITE_REGION="+Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	s.cmd.Stdout, s.cmd.Stderr = s.logFile, s.logFile
	// Never outlive the test binary, even when it crashes.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.logFile.Close()
		return nil, fmt.Errorf("start minio: %w", err)
	}
	go func() { s.done <- s.cmd.Wait() }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		if ready(ctx, s.Endpoint) {
			break
		}
		select {
		case err := <-s.done:
			s.logFile.Close()
			return nil, fmt.Errorf("minio exited before it was ready: %v\n%s", err, s.logTail())
		case <-ctx.Done():
			s.kill()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			return nil, fmt.Errorf("minio not ready after 60s\n%s", s.logTail())
		}
	}
	s.rootStore = s.S3Client(s.RootUser, s.RootPass)
	return s, nil
}

// cleanEnv is the environment without AWS_* and MINIO_* variables, so the
// host's settings do not leak into the server.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "MINIO_") || strings.HasPrefix(kv, "MC_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func ready(ctx context.Context, endpoint string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/minio/health/ready", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logFile.Name())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (s *Server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
	s.logFile.Close()
}

// Close stops the server and removes its data.
func (s *Server) Close() error {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.logFile.Close()
	return os.RemoveAll(s.dir)
}

// S3Client returns an S3 client for the given static credentials, signed for
// Region, path-style.
func (s *Server) S3Client(accessKey, secretKey string) *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		HTTPClient:   awshttp.NewBuildableClient(),
	})
}

// Root is an S3 client with the root credentials, for setting up fixtures.
func (s *Server) Root() *s3.Client { return s.rootStore }

// CreateBucket creates a bucket in Region.
func (s *Server) CreateBucket(ctx context.Context, bucket string) error {
	_, err := s.rootStore.CreateBucket(ctx, &s3.CreateBucketInput{
		Bucket: aws.String(bucket),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(Region),
		},
	})
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// EnableKMS sets SSE-KMS with the server's key as the bucket's default
// encryption.
func (s *Server) EnableKMS(ctx context.Context, bucket string) error {
	_, err := s.rootStore.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
		Bucket: aws.String(bucket),
		ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
			Rules: []types.ServerSideEncryptionRule{{
				ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{
					SSEAlgorithm:   types.ServerSideEncryptionAwsKms,
					KMSMasterKeyID: aws.String(KMSKeyID),
				},
			}},
		},
	})
	if err != nil {
		return fmt.Errorf("enable SSE-KMS on %s: %w", bucket, err)
	}
	return nil
}

// Put writes an object with the root credentials.
func (s *Server) Put(ctx context.Context, bucket, key string, body []byte) error {
	_, err := s.rootStore.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	})
	if err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// Keys lists every key under prefix with the root credentials.
func (s *Server) Keys(ctx context.Context, bucket, prefix string) ([]string, error) {
	var keys []string
	// URL-encoded, as the connector lists: a key with a control character
	// would make a plain XML listing unreadable.
	p := s3.NewListObjectsV2Paginator(s.rootStore, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), EncodingType: types.EncodingTypeUrl})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if page.EncodingType == types.EncodingTypeUrl { // as connector.ListedKey (which would be an import cycle)
				if k, err = url.QueryUnescape(k); err != nil {
					return nil, err
				}
			}
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// AddUser creates a non-root user whose only policy is policyJSON (an IAM
// policy document). Through STS AssumeRole it receives temporary credentials
// scoped by that policy, which is how tests play the customer's IAM role.
func (s *Server) AddUser(ctx context.Context, user, secret string, policyJSON []byte) error {
	policyName := "p-" + user
	policyFile := filepath.Join(s.dir, policyName+".json")
	if err := os.WriteFile(policyFile, policyJSON, 0o600); err != nil {
		return err
	}
	steps := [][]string{
		{"admin", "policy", "create", "s3ct", policyName, policyFile},
		{"admin", "user", "add", "s3ct", user, secret},
		{"admin", "policy", "attach", "s3ct", policyName, "--user", user},
	}
	for _, args := range steps {
		if err := s.mc(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// mc runs the MinIO client against this server under the alias "s3ct".
func (s *Server) mc(ctx context.Context, args ...string) error {
	bin, err := Tool("mc")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--no-color", "--quiet"}, args...)...)
	host := strings.TrimPrefix(s.Endpoint, "http://")
	cmd.Env = append(cleanEnv(),
		"MC_CONFIG_DIR="+filepath.Join(s.dir, "mc"),
		"MC_HOST_s3ct=http://"+s.RootUser+":"+s.RootPass+"@"+host,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("mc %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// The shared server: one MinIO per test binary, started on first use.
var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared returns the test binary's MinIO server, starting it on first use;
// it fails the test if the server cannot start. Call CloseShared from
// TestMain after m.Run.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		shared, sharedErr = Start(ctx)
	})
	if sharedErr != nil {
		t.Fatalf("start MinIO: %v", sharedErr)
	}
	return shared
}

// CloseShared stops the shared server if it was started.
func CloseShared() {
	if shared != nil {
		shared.Close()
	}
}

// S3ClientAt is S3Client for another endpoint in front of this server (a
// recording or fault-injecting proxy).
func (s *Server) S3ClientAt(endpoint, accessKey, secretKey string) *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		HTTPClient:   awshttp.NewBuildableClient(),
	})
}

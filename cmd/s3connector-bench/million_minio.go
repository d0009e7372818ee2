package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/s3connector/s3connector/connector/miniotest"
)

// keptMinIO is a MinIO process on a data directory that may outlive it
// (-keep): miniotest.Start always makes a fresh one and removes it on
// Close. It runs without KMS (the case needs none, and a KMS key chosen
// afresh at each start would make a kept directory's encrypted IAM
// configuration unreadable).
type keptMinIO struct {
	endpoint, rootUser, rootPass string
	root, dataDir                string
	cmd                          *exec.Cmd
	done                         chan error
	log                          *os.File
}

func startKeptMinIO(ctx context.Context, root string) (*keptMinIO, error) {
	bin, err := miniotest.Tool("minio")
	if err != nil {
		return nil, err
	}
	s := &keptMinIO{rootUser: "s3connector-root", rootPass: "s3connector-root-secret", root: root,
		dataDir: filepath.Join(root, "data"), done: make(chan error, 1)}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	console, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	s.endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	if s.log, err = os.OpenFile(filepath.Join(root, "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(bin, "server", "--quiet", "--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", console), s.dataDir)
	s.cmd.Env = append(envWithout("AWS_", "MINIO_", "MC_"),
		"MINIO_ROOT_USER="+s.rootUser, "MINIO_ROOT_PASSWORD="+s.rootPass,
		"MINIO_SITE_REGION="+miniotest.Region, "MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		s.log.Close()
		return nil, fmt.Errorf("start minio: %w", err)
	}
	go func() { s.done <- s.cmd.Wait() }()
	// A kept directory with a million objects takes MinIO a while to open.
	deadline := time.Now().Add(5 * time.Minute)
	for !minioReady(ctx, s.endpoint) {
		select {
		case err := <-s.done:
			s.log.Close()
			return nil, fmt.Errorf("minio exited before it was ready: %v (see %s)", err, s.log.Name())
		case <-ctx.Done():
			s.close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.close()
			return nil, fmt.Errorf("minio not ready after 5 minutes (see %s)", s.log.Name())
		}
	}
	return s, nil
}

// close stops MinIO; its data stays (the caller removes the directory
// unless -keep).
func (s *keptMinIO) close() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.log.Close()
}

func minioReady(ctx context.Context, endpoint string) bool {
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

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// envWithout is the environment without the variables of these prefixes.
func envWithout(prefixes ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

// addPlatformUser makes the platform identity the daemon assumes its role
// with (as newBench does). In a kept directory the user exists already:
// mc then reports the policy attached, which is fine.
func (s *keptMinIO) addPlatformUser(ctx context.Context) error {
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],` +
		`"Resource":["arn:aws:s3:::bench-*","arn:aws:s3:::bench-*/*"]}]}`
	file := filepath.Join(s.root, "platform-policy.json")
	if err := os.WriteFile(file, []byte(policy), 0o600); err != nil {
		return err
	}
	bin, err := miniotest.Tool("mc")
	if err != nil {
		return err
	}
	steps := [][]string{
		{"admin", "policy", "create", "m", "p-" + platformUser, file},
		{"admin", "user", "add", "m", platformUser, platformSecret},
		{"admin", "policy", "attach", "m", "p-" + platformUser, "--user", platformUser},
	}
	for i, args := range steps {
		cmd := exec.CommandContext(ctx, bin, append([]string{"--no-color", "--quiet"}, args...)...)
		cmd.Env = append(envWithout("AWS_", "MINIO_", "MC_"), "MC_CONFIG_DIR="+filepath.Join(s.root, "mc"),
			"MC_HOST_m=http://"+s.rootUser+":"+s.rootPass+"@"+strings.TrimPrefix(s.endpoint, "http://"))
		out, err := cmd.CombinedOutput()
		if err != nil && !(i == 2 && strings.Contains(string(out), "already")) {
			return fmt.Errorf("mc %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// seedClient is a root client for seeding, emptying and checking:
// unsigned payloads without checksums (seeding is not measured), a pool of
// idle connections for every concurrent call, and a retryer without the
// shared retry quota, so a burst of 503 SlowDown from a busy MinIO is
// waited out instead of failing the seeding.
func (s *keptMinIO) seedClient(parallel int) *s3.Client {
	return s3.New(s3.Options{
		Region:       miniotest.Region,
		BaseEndpoint: aws.String(s.endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.rootUser, s.rootPass, ""),
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns, t.MaxIdleConnsPerHost = 2*parallel+8, 2*parallel+8
		}),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 10
			o.RateLimiter = ratelimit.None
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		APIOptions:                 []func(*middleware.Stack) error{v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware},
	})
}

// purgeTrash removes what MinIO keeps of deleted objects under
// .minio.sys/tmp/.trash (see bench.purgeTrash).
func (s *keptMinIO) purgeTrash() error {
	entries, err := filepath.Glob(filepath.Join(s.dataDir, ".minio.sys", "tmp", ".trash", "*"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(e); err != nil {
			return fmt.Errorf("purge MinIO trash: %w", err)
		}
	}
	return nil
}

// Disk use of one small object in MinIO on a single drive: a directory and
// its xl.meta (the data inline), a block each on ext4. A run leaves the
// archived copy and, until purged, the deleted original in MinIO's trash.
const (
	inodesPerKey = 6        // inbox, archive, trash: 2 each
	bytesPerKey  = 24 << 10 // the same, at 8 KiB each
)

// checkRoom fails when dir's file system cannot hold keys objects, their
// archived copies and the trash, and describes what is free.
func checkRoom(dir string, keys int) (string, error) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return "", err
	}
	freeBytes := fs.Bavail * uint64(fs.Bsize)
	needBytes, needInodes := uint64(keys)*bytesPerKey, uint64(keys)*inodesPerKey
	desc := fmt.Sprintf("%.1f GiB and %d inodes free; up to %.1f GiB and %d inodes needed", float64(freeBytes)/(1<<30), fs.Ffree, float64(needBytes)/(1<<30), needInodes)
	if freeBytes < needBytes || (fs.Files > 0 && fs.Ffree < needInodes) {
		return desc, fmt.Errorf("%s: not enough room: %s", dir, desc)
	}
	return desc, nil
}

//go:build torture

package torture

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
)

// Base is every fixture's base_path.
const Base = "imports/"

// Fixture is one scenario's world: its own bucket on the suite's MinIO,
// an import directory, a platform user (made by the first Config) holding
// exactly the generated permissions policy, the versions it seeded and
// every process it ran (whose output the checker reads).
type Fixture struct {
	T      *testing.T
	Srv    *miniotest.Server
	Bucket string
	// ImportDir is the dir importer's directory of Config's default importer.
	ImportDir  string
	ExternalID string
	// User and Secret are the platform identity the binary runs as.
	User, Secret string
	// Versioned is whether the bucket has versioning enabled.
	Versioned bool
	// ExtraEnv is added to the binary's environment (test-only knobs).
	ExtraEnv []string

	rnd *mrand.Rand

	mu       sync.Mutex
	versions map[string][]Version // relative key → versions in upload order
	procs    []*Proc
	userOnce sync.Once
}

// Version is one seeded version of a key.
type Version struct {
	Rel      string // key relative to Base
	Size     int64
	SHA256   [32]byte
	ETag     string
	Modified time.Time // as listed
	ID       string    // version id on a versioned bucket
}

// FixtureOptions configure NewFixture.
type FixtureOptions struct {
	// Versioned enables versioning on the bucket.
	Versioned bool
	// Seed is the random seed; 0 takes one from the clock (logged).
	Seed uint64
}

var bucketSeq atomic.Int64

// NewFixture makes a bucket named after the test.
func NewFixture(t *testing.T, o FixtureOptions) *Fixture {
	t.Helper()
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	t.Logf("random seed %d", o.Seed)
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	name = strings.TrimPrefix(name, "test")
	if len(name) > 40 {
		name = name[:40]
	}
	bucket := fmt.Sprintf("t-%s-%d-%d", strings.Trim(name, "-"), time.Now().Unix()%100000, bucketSeq.Add(1))
	f := &Fixture{T: t, Srv: suite.srv, Bucket: bucket, ImportDir: t.TempDir(), Versioned: o.Versioned,
		rnd: mrand.New(mrand.NewPCG(o.Seed, 12)), versions: map[string][]Version{}}
	if err := f.Srv.CreateBucket(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
	if o.Versioned {
		_, err := f.Srv.Root().PutBucketVersioning(t.Context(), &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(bucket),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	id, err := connector.NewExternalID()
	if err != nil {
		t.Fatal(err)
	}
	f.ExternalID = id
	f.User = "torture-" + bucket
	f.Secret = "torture-secret-" + rand.Text()
	t.Cleanup(f.keepLogsOnFailure)
	return f
}

// EnvKeepLogs=1 keeps every process's output, as a failed test does
// (keepLogsOnFailure).
const EnvKeepLogs = "S3CONNECTOR_TORTURE_KEEP_LOGS"

// keepLogsOnFailure writes every process's output to
// $TMPDIR/s3connector-torture-logs/<test>/ when the test failed, or always
// with EnvKeepLogs=1 (the test's own temporary directories are removed).
func (f *Fixture) keepLogsOnFailure() {
	if !f.T.Failed() && os.Getenv(EnvKeepLogs) != "1" {
		return
	}
	dir := filepath.Join(os.TempDir(), "s3connector-torture-logs", strings.ReplaceAll(f.T.Name(), "/", "-"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		f.T.Log(err)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, p := range f.procs {
		name := filepath.Join(dir, fmt.Sprintf("%03d-%s.log", i, strings.Join(p.Args[:min(len(p.Args), 2)], "-")))
		_ = os.WriteFile(name, []byte(strings.Join(p.Args, " ")+"\n"+p.Output()), 0o600)
	}
	f.T.Logf("outputs of the %d processes in %s", len(f.procs), dir)
}

// SeedOptions shape a batch of files.
type SeedOptions struct {
	// Files is how many files; Prefix goes before each name (relative to
	// Base), e.g. "batch-1/".
	Files  int
	Prefix string
	// MinSize and MaxSize bound most files' sizes (default 1 B to 64 KiB).
	MinSize, MaxSize int
	// LargeEvery makes every n-th file large: LargeMin to LargeMax
	// (default 1 to 6 MiB). 0 means none.
	LargeEvery         int
	LargeMin, LargeMax int
	// Keys, when set, are the relative keys to upload (new versions of
	// existing keys, say) instead of Files generated names.
	Keys []string
}

// Seeded is what a Seed call uploaded.
type Seeded struct {
	Files int
	Bytes int64
}

// Seed uploads files of random content into the inbox with the root
// credentials, 8 at a time, and records each version. It may be called
// while the binary runs (new files arriving).
func (f *Fixture) Seed(o SeedOptions) Seeded {
	t := f.T
	t.Helper()
	if o.MaxSize == 0 {
		o.MaxSize = 64 << 10
	}
	if o.MinSize == 0 {
		o.MinSize = 1
	}
	if o.LargeMin == 0 {
		o.LargeMin = 1 << 20
	}
	if o.LargeMax == 0 {
		o.LargeMax = 6 << 20
	}
	keys := o.Keys
	if keys == nil {
		stamp := time.Now().UnixNano() % 1_000_000
		for i := range o.Files {
			keys = append(keys, fmt.Sprintf("%sf%06d-%05d.csv", o.Prefix, stamp, i))
		}
	}
	type job struct {
		rel  string
		size int
		seed uint64
	}
	jobs := make([]job, len(keys))
	f.mu.Lock()
	for i, k := range keys {
		size := o.MinSize + f.rnd.IntN(o.MaxSize-o.MinSize+1)
		if o.LargeEvery > 0 && i%o.LargeEvery == o.LargeEvery-1 {
			size = o.LargeMin + f.rnd.IntN(o.LargeMax-o.LargeMin+1)
		}
		jobs[i] = job{k, size, f.rnd.Uint64()}
	}
	f.mu.Unlock()
	var total atomic.Int64
	ctx := t.Context()
	err := parallel(8, len(jobs), func(i int) error {
		j := jobs[i]
		{
			body := randomBody(j.seed, j.size)
			out, err := f.Srv.Root().PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(f.Bucket), Key: aws.String(Base + j.rel),
				Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))),
			})
			if err != nil {
				return fmt.Errorf("seed %s: %w", j.rel, err)
			}
			// LastModified comes from the listing (refreshListed), as
			// the daemon names archived copies from it.
			v := Version{Rel: j.rel, Size: int64(len(body)), SHA256: sha256.Sum256(body),
				ETag: strings.Trim(aws.ToString(out.ETag), `"`), ID: aws.ToString(out.VersionId)}
			// LastModified to the millisecond, as the daemon lists it,
			// at once: a running daemon may move the file any moment.
			// (If it already has, the checker finds the time from the
			// archived name: resolveModified.)
			if !f.Versioned {
				l, err := f.Srv.Root().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(f.Bucket), Prefix: aws.String(Base + j.rel), MaxKeys: aws.Int32(1)})
				if err != nil {
					return fmt.Errorf("list %s: %w", j.rel, err)
				}
				if len(l.Contents) == 1 && aws.ToString(l.Contents[0].Key) == Base+j.rel && strings.Trim(aws.ToString(l.Contents[0].ETag), `"`) == v.ETag {
					v.Modified = aws.ToTime(l.Contents[0].LastModified)
				}
			}
			f.mu.Lock()
			f.versions[j.rel] = append(f.versions[j.rel], v)
			f.mu.Unlock()
			total.Add(int64(len(body)))
			return nil
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	f.refreshListed()
	return Seeded{Files: len(jobs), Bytes: total.Load()}
}

// parallel calls fn(0..n-1), limit at a time, and returns the first error
// (the calls already started still finish).
func parallel(limit, n int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		sem   = make(chan struct{}, limit)
	)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := fn(i); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

// randomBody is size bytes from a seeded generator: cheap to make, and the
// same again from the same seed.
func randomBody(seed uint64, size int) []byte {
	r := mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24),
		byte(seed >> 32), byte(seed >> 40), byte(seed >> 48), byte(seed >> 56)})
	b := make([]byte, size)
	r.Read(b)
	return b
}

// refreshListed fills in LastModified, as ListObjectsV2 gives it (the
// daemon names archived copies from the listing), for every version still
// in the inbox that has none yet. On a versioned bucket the versions
// listing gives it for older versions too.
func (f *Fixture) refreshListed() {
	t := f.T
	ctx := t.Context()
	type listed struct {
		etag, id string
		mod      time.Time
	}
	var found []listed
	var rels []string
	if f.Versioned {
		p := s3.NewListObjectVersionsPaginator(f.Srv.Root(), &s3.ListObjectVersionsInput{Bucket: aws.String(f.Bucket), Prefix: aws.String(Base)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range page.Versions {
				found = append(found, listed{strings.Trim(aws.ToString(v.ETag), `"`), aws.ToString(v.VersionId), aws.ToTime(v.LastModified)})
				rels = append(rels, strings.TrimPrefix(aws.ToString(v.Key), Base))
			}
		}
	} else {
		p := s3.NewListObjectsV2Paginator(f.Srv.Root(), &s3.ListObjectsV2Input{Bucket: aws.String(f.Bucket), Prefix: aws.String(Base)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range page.Contents {
				found = append(found, listed{strings.Trim(aws.ToString(o.ETag), `"`), "", aws.ToTime(o.LastModified)})
				rels = append(rels, strings.TrimPrefix(aws.ToString(o.Key), Base))
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, l := range found {
		vs := f.versions[rels[i]]
		for j := range vs {
			if vs[j].Modified.IsZero() && vs[j].ETag == l.etag && (l.id == "" || vs[j].ID == l.id) {
				vs[j].Modified = l.mod
			}
		}
	}
}

// Versions returns every seeded version, by relative key, in upload order.
func (f *Fixture) Versions() map[string][]Version {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string][]Version, len(f.versions))
	for k, v := range f.versions {
		out[k] = append([]Version(nil), v...)
	}
	return out
}

// Inbox lists the keys (relative to Base) waiting in the inbox: everything
// under Base but archive/ and error/.
func (f *Fixture) Inbox() []string {
	keys, err := f.Srv.Keys(f.T.Context(), f.Bucket, Base)
	if err != nil {
		f.T.Fatal(err)
	}
	var left []string
	for _, k := range keys {
		rel := strings.TrimPrefix(k, Base)
		if !strings.HasPrefix(rel, connector.ArchiveFolder) && !strings.HasPrefix(rel, connector.ErrorFolder) {
			left = append(left, rel)
		}
	}
	return left
}

// Keys lists every key under Base+prefix.
func (f *Fixture) Keys(prefix string) []string {
	keys, err := f.Srv.Keys(f.T.Context(), f.Bucket, Base+prefix)
	if err != nil {
		f.T.Fatal(err)
	}
	return keys
}

// WaitInboxEmpty polls the inbox until it is empty or timeout passes
// (then the test fails with what is left).
func (f *Fixture) WaitInboxEmpty(timeout time.Duration) {
	f.T.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := f.Inbox()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			if len(left) > 10 {
				left = left[:10]
			}
			f.T.Fatalf("inbox not empty after %s: %d keys left, e.g. %v", timeout, len(f.Inbox()), left)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// ConfigOptions shape a config file. Zero values take the defaults noted.
type ConfigOptions struct {
	// Listen is the daemon's HTTP address (default a free loopback port).
	Listen string
	// Endpoint and STSEndpoint (default MinIO itself): a proxy in front.
	Endpoint, STSEndpoint string
	// Schedule (default "@every 1s"), Workers (default 4), LeaseTTL
	// (default 0: the daemon's 90 s), ShutdownGrace (default unset).
	Schedule      string
	Workers       int
	LeaseTTL      time.Duration
	ShutdownGrace time.Duration
	// Importer is the importer block, indented six spaces (default the
	// dir importer on ImportDir, or Dir when set).
	Importer string
	Dir      string
	// Extra is more connection keys, indented four spaces.
	Extra string
}

// Config writes a config file with one active connection "acme" on the
// fixture's bucket and returns its path; the first call also makes the
// platform user with the policy `s3connector policy --document
// permissions` prints for it. The config's listen address is returned by
// ListenAddr.
func (f *Fixture) Config(o ConfigOptions) string {
	t := f.T
	t.Helper()
	if o.Listen == "" {
		o.Listen = FreeAddr(t)
	}
	if o.Endpoint == "" {
		o.Endpoint = f.Srv.Endpoint
	}
	if o.STSEndpoint == "" {
		o.STSEndpoint = f.Srv.Endpoint
	}
	if o.Schedule == "" {
		o.Schedule = "@every 1s"
	}
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.Dir == "" {
		o.Dir = f.ImportDir
	}
	if o.Importer == "" {
		o.Importer = "      type: dir\n      path: " + o.Dir + "\n"
	}
	var top, conn strings.Builder
	fmt.Fprintf(&top, "principal_arn: arn:aws:iam::049579744830:root\nlisten: %s\n", o.Listen)
	if o.ShutdownGrace > 0 {
		fmt.Fprintf(&top, "shutdown_grace: %s\n", o.ShutdownGrace)
	}
	fmt.Fprintf(&conn, `  - name: acme
    status: active
    account_id: "123456789012"
    bucket: %s
    region: %s
    base_path: %s
    external_id: %s
    endpoint: %s
    sts_endpoint: %s
    schedule: %q
    workers: %d
`, f.Bucket, miniotest.Region, Base, f.ExternalID, o.Endpoint, o.STSEndpoint, o.Schedule, o.Workers)
	if o.LeaseTTL > 0 {
		fmt.Fprintf(&conn, "    lease_ttl: %s\n", o.LeaseTTL)
	}
	conn.WriteString(o.Extra)
	yaml := top.String() + "connections:\n" + conn.String() + "    importer:\n" + o.Importer
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	f.userOnce.Do(func() {
		cmd := exec.Command(suite.bin, "policy", "--config", path, "--connection", "acme", "--document", "permissions")
		cmd.Env = f.Env()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		policy, err := cmd.Output()
		if err != nil {
			t.Fatalf("policy: %v\n%s", err, stderr.String())
		}
		if err := f.Srv.AddUser(t.Context(), f.User, f.Secret, policy); err != nil {
			t.Fatal(err)
		}
	})
	return path
}

// Env is the binary's environment: the host's, less AWS_* and proxies,
// with the platform user's keys for the default credential chain.
func (f *Fixture) Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		up := strings.ToUpper(kv)
		if strings.HasPrefix(up, "AWS_") || strings.HasPrefix(up, "HTTP_PROXY=") || strings.HasPrefix(up, "HTTPS_PROXY=") {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env,
		"AWS_ACCESS_KEY_ID="+f.User,
		"AWS_SECRET_ACCESS_KEY="+f.Secret,
		"AWS_REGION="+miniotest.Region,
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	), f.ExtraEnv...)
}

// MiB formats bytes as MiB.
func MiB(n int64) string { return fmt.Sprintf("%d MiB", (n+1<<19)>>20) }

// Thousands formats n with thousands separators: 5,000.
func Thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// Command s3connector-bench measures what the ingestion pipeline costs over
// the bare S3 calls it makes. It starts its own MinIO (the pinned build from
// `make tools`) on a free loopback port and compares, on the same server,
// bucket layout and S3 client:
//
//   - pipeline: ingest.Runner.Run with the discard importer on a connection
//     made by connector.New with the metric hooks `s3connector run --once`
//     installs (assumed-role credentials through MinIO's STS, the tuned
//     transport, the standard retryer without its retry quota);
//   - plain: a loop making the same S3 calls with the same concurrency: one
//     goroutine pages ListObjectsV2 into a queue of `workers` files, `workers`
//     goroutines each GetObject (read to io.Discard), CopyObject to archive/
//     and DeleteObject, one file at a time. It uses the pipeline connection's
//     own S3 client (conn.S3()), so transport, credentials, checksum and retry
//     settings are identical, and it sends the same conditional headers
//     (If-Match, CopySourceIfMatch, If-None-Match on the copy): what differs
//     is orchestration only — the pipeline's metrics, bookkeeping and
//     group-committed deletes (DeleteObjects) against one DeleteObject per file.
//
// Two sets are measured separately: many small files (request-bound) and a
// few large ones (byte-bound). Every run starts from the same state: the
// bucket is emptied (and MinIO's trash of deleted objects purged, see
// purgeTrash), the set is seeded afresh with parallel PutObject calls, the
// Go heap is collected, and only then is the run timed. The variants
// alternate A B A B ... within each round. After every run the bench checks
// that the inbox is empty and archive/ holds exactly the seeded files, and
// fails otherwise: a benchmark of a broken pipeline is worthless.
//
// Reading the output: one line per run, then per set the median files/s and
// MB/s (MB = 10^6 bytes of object content) of each variant, the S3 requests
// each variant sent, and the ratio pipeline/plain of the medians (above 1:
// the pipeline is faster). Heap figures are the Go runtime's HeapInuse: base
// after a GC just before a run, peak sampled every 10 ms during it; their
// difference is the cleanest view of what a variant holds in memory. "peak
// RSS" (VmHWM) is the whole process over its whole life, so it also counts
// the seeding and both variants. MinIO runs on the same machine and competes
// for the same two CPUs: compare the variants with each other, not with a
// remote S3. On a disk, MinIO's synced metadata writes make small-file runs
// vary by 2x from run to run; -minio-dir /dev/shm (what `make bench` uses)
// keeps the disk out.
//
// Run it with `make bench`, or for a quick smoke run:
//
//	go run ./cmd/s3connector-bench -small 200 -large 2 -rounds 1
package main

import (
	"bufio"
	"cmp"
	"context"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
	"github.com/s3connector/s3connector/ingest"
	"github.com/s3connector/s3connector/metrics"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3connector-bench: FAILED:", err)
		os.Exit(1)
	}
}

const (
	basePath = "inbox/"
	// seedParallel is how many PutObject calls seed a set at once.
	seedParallel = 16
	// heapEvery is the HeapInuse sampling interval during a run.
	heapEvery = 10 * time.Millisecond
)

// The two variants, in the order they run within a round.
const (
	pipeline = "pipeline"
	plain    = "plain"
)

var variants = []string{pipeline, plain}

type settings struct {
	small, large         int
	smallSize, largeSize byteSize
	rounds, workers      int
}

func run(ctx context.Context, argv []string, out io.Writer) error {
	start := time.Now()
	var st settings
	st.smallSize, st.largeSize = 4<<10, 64<<20
	fset := flag.NewFlagSet("s3connector-bench", flag.ContinueOnError)
	fset.IntVar(&st.small, "small", 2000, "number of small files (0 skips the small set)")
	fset.Var(&st.smallSize, "small-size", "size of each small file (bytes, or with KiB/MiB/GiB)")
	fset.IntVar(&st.large, "large", 20, "number of large files (0 skips the large set)")
	fset.Var(&st.largeSize, "large-size", "size of each large file (bytes, or with KiB/MiB/GiB)")
	fset.IntVar(&st.rounds, "rounds", 3, "rounds; each runs every set with the pipeline, then with the plain loop")
	fset.IntVar(&st.workers, "workers", 16, "concurrent files, for both variants (the connection's workers)")
	minioDir := fset.String("minio-dir", "", "parent directory of MinIO's data (default $TMPDIR or /tmp); /dev/shm keeps disk noise out")
	if err := fset.Parse(argv[1:]); err != nil {
		return err
	}
	if st.rounds < 1 || st.workers < 1 || st.small < 0 || st.large < 0 || st.small+st.large == 0 {
		return errors.New("need -rounds >= 1, -workers >= 1 and at least one of -small, -large > 0")
	}

	fmt.Fprintf(out, "s3connector-bench: ingestion pipeline vs a plain S3 loop, on a local MinIO\n")
	fmt.Fprintf(out, "command:  %s\n", shellJoin(append([]string{filepath.Base(argv[0])}, argv[1:]...)))
	var all []string
	fset.VisitAll(func(f *flag.Flag) { all = append(all, "-"+f.Name+" "+f.Value.String()) })
	fmt.Fprintf(out, "settings: %s\n", strings.Join(all, " "))
	fmt.Fprintf(out, "machine:  %s %s/%s, %d CPUs, GOMAXPROCS %d\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(out, "minio:    %s\n", minioVersion(ctx))

	// MinIO's data goes into a directory of our own: miniotest.Start makes
	// it under os.TempDir, and purgeTrash must touch only this server's.
	parent := *minioDir
	if parent == "" {
		parent = os.TempDir()
	}
	dataRoot, err := os.MkdirTemp(parent, "s3connector-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataRoot)
	if err := os.Setenv("TMPDIR", dataRoot); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	srv, err := miniotest.Start(startCtx)
	cancel()
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(out, "          at %s, region %s (same machine: MinIO and the bench share the CPUs)\n", srv.Endpoint, miniotest.Region)
	fmt.Fprintf(out, "          data under %s (%s)\n", dataRoot, fsKind(dataRoot))

	b, err := newBench(ctx, srv, st)
	if err != nil {
		return err
	}
	b.dataRoot = dataRoot
	fmt.Fprintf(out, "\nEach run: reset (empty the bucket and MinIO's trash, seed the set with %d parallel PutObject), GC,\nthen time one pass over %s.\n", seedParallel, basePath)
	fmt.Fprintf(out, "Both variants: %d workers, the same connector.New S3 client. MB = 10^6 bytes.\n\n", st.workers)

	const runRow = "%5v  %-5s  %-8s  %6v  %8v  %8v  %9v  %8v  %9v  %9v  %6v\n"
	fmt.Fprintf(out, runRow, "round", "set", "variant", "files", "MB", "seconds", "files/s", "MB/s", "heap base", "heap peak", "reset s")
	var results []result
	for round := 1; round <= st.rounds; round++ {
		for _, set := range b.sets {
			for _, v := range variants {
				res, err := b.measure(ctx, set, v)
				if err != nil {
					return fmt.Errorf("round %d, %s set, %s: %w", round, set.name, v, err)
				}
				results = append(results, res)
				fmt.Fprintf(out, runRow, round, set.name, v, res.files, f1(mb(res.bytes)), f3(res.elapsed.Seconds()),
					f1(res.filesPerSec()), f1(res.mbPerSec()), f1(mib(res.heapBase)), f1(mib(res.heapPeak)), f1(res.reset.Seconds()))
			}
		}
	}

	fmt.Fprintf(out, "\nMedians over %d round(s). Heap columns (MiB) are the highest over the variant's runs: base = HeapInuse\n", st.rounds)
	fmt.Fprintf(out, "after a GC just before a run, peak = HeapInuse sampled every %s during it, growth = peak - base of one run.\n\n", heapEvery)
	const sumRow = "%-5s  %-8s  %9v  %8v  %9v  %9v  %11v\n"
	fmt.Fprintf(out, sumRow, "set", "variant", "files/s", "MB/s", "heap base", "heap peak", "heap growth")
	var ratios []string
	for _, set := range b.sets {
		med := map[string]float64{}
		for _, v := range variants {
			var fps, mbps []float64
			var base, peak, growth uint64
			for _, r := range results {
				if r.set == set.name && r.variant == v {
					fps = append(fps, r.filesPerSec())
					mbps = append(mbps, r.mbPerSec())
					base, peak = max(base, r.heapBase), max(peak, r.heapPeak)
					growth = max(growth, r.heapPeak-min(r.heapBase, r.heapPeak))
				}
			}
			med[v] = median(fps)
			fmt.Fprintf(out, sumRow, set.name, v, f1(med[v]), f1(median(mbps)), f1(mib(base)), f1(mib(peak)), f1(mib(growth)))
		}
		ratios = append(ratios, fmt.Sprintf("%s set (%d × %s): pipeline/plain = %.2f", set.name, set.n, set.size, med[pipeline]/med[plain]))
	}
	fmt.Fprintf(out, "\nS3 requests of each variant's last run (attempts, retries included):\n")
	for _, set := range b.sets {
		for _, v := range variants {
			for _, r := range slices.Backward(results) {
				if r.set == set.name && r.variant == v {
					fmt.Fprintf(out, "  %-5s  %-8s  %s\n", set.name, v, r.requests)
					break
				}
			}
		}
	}
	fmt.Fprintf(out, "\nThroughput ratio of the medians (>1: the pipeline is faster; files/s and MB/s give the same ratio):\n")
	for _, r := range ratios {
		fmt.Fprintf(out, "  %s\n", r)
	}
	hwm, err := peakRSS()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\npeak RSS (VmHWM) of this process: %.1f MiB — includes both variants and the seeding buffers (not MinIO)\n", mib(hwm))
	fmt.Fprintf(out, "total wall time: %s\n", time.Since(start).Round(time.Second))
	return nil
}

// set is one file set in its own bucket, with its own connection.
type set struct {
	name    string
	n       int
	size    byteSize
	bucket  string
	conn    *connector.Connection
	pattern []byte
	// requests counts the S3 requests made through conn.
	requests requestCounter
}

// body is the content of file i: the pattern, repeated, from an offset
// that depends on i.
func (s *set) body(i int) *patternReader {
	return &patternReader{pattern: s.pattern, start: int64(i) * int64(s.size), size: int64(s.size)}
}

func (s *set) key(i int) string { return fmt.Sprintf("%s%s/%06d.bin", basePath, s.name, i) }

type bench struct {
	srv *miniotest.Server
	// dataRoot holds the server's data directory (see purgeTrash).
	dataRoot string
	st       settings
	admin    *s3.Client // root credentials: seeding, cleaning, checking
	metrics  *metrics.Metrics
	sets     []*set
}

func newBench(ctx context.Context, srv *miniotest.Server, st settings) (*bench, error) {
	b := &bench{srv: srv, st: st, admin: adminClient(srv)}
	m, err := metrics.New(nil) // created as `run` does, not served
	if err != nil {
		return nil, err
	}
	b.metrics = m

	// The platform identity: a MinIO user allowed everything on the bench
	// buckets. connector.New assumes a role with it through MinIO's STS;
	// the temporary credentials carry this policy.
	const user, secret = "bench-platform", "bench-platform-secret"
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],` +
		`"Resource":["arn:aws:s3:::bench-*","arn:aws:s3:::bench-*/*"]}]}`
	if err := srv.AddUser(ctx, user, secret, []byte(policy)); err != nil {
		return nil, err
	}
	platform := aws.Config{
		Region:      miniotest.Region,
		Credentials: credentials.NewStaticCredentialsProvider(user, secret, ""),
		HTTPClient:  awshttp.NewBuildableClient(),
	}

	// Content comes from one 1 MiB random pattern, read at an offset per
	// file, so the bench holds no copy of the sets: the heap figures are
	// the variants' own. MinIO neither compresses (off by default) nor
	// deduplicates, so repeated content costs it the same as any other.
	pattern := make([]byte, 1<<20)
	fill(rand.New(rand.NewChaCha8([32]byte{'s', '3', 'c'})), pattern)
	if st.small > 0 {
		b.sets = append(b.sets, &set{name: "small", n: st.small, size: st.smallSize, pattern: pattern})
	}
	if st.large > 0 {
		b.sets = append(b.sets, &set{name: "large", n: st.large, size: st.largeSize, pattern: pattern})
	}
	for _, s := range b.sets {
		s.bucket = "bench-" + s.name
		if err := srv.CreateBucket(ctx, s.bucket); err != nil {
			return nil, err
		}
		externalID, err := connector.NewExternalID()
		if err != nil {
			return nil, err
		}
		c := config.Connection{
			Name: "bench-" + s.name, Status: config.StatusActive, AccountID: "123456789012",
			Bucket: s.bucket, Region: miniotest.Region, BasePath: basePath,
			RoleName: "s3connector-bench", ExternalID: externalID,
			Workers: st.workers, Endpoint: srv.Endpoint, STSEndpoint: srv.Endpoint,
			Importer: config.Importer{Type: config.ImporterDiscard},
		}
		// The hooks `s3connector run` installs; the plain loop shares the
		// client, so it pays for them too.
		s.conn, err = connector.New(platform, "arn:aws:iam::049579744830:root", c, connector.WithHooks(connector.Hooks{
			S3Request: func(op string, err error) {
				m.S3Request(c.Name, op, connector.ResultLabel(err, c.Region))
				s.requests.add(op)
			},
			AssumeRole: func(expires time.Time, err error) { m.AssumeRole(c.Name, err, expires) },
		}))
		if err != nil {
			return nil, err
		}
		// Assume the role and open the client's connections before the
		// first timed run, so that run pays no more than the others.
		if _, err := s.conn.AssumeRole(ctx); err != nil {
			return nil, err
		}
		if err := warmUp(ctx, s.conn.S3(), s.bucket, st.workers); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func fill(rng *rand.Rand, buf []byte) {
	for i := 0; i+8 <= len(buf); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			buf[i+j] = byte(v >> (8 * j))
		}
	}
}

// warmUp makes `workers` concurrent requests so the client's pool holds
// that many open connections.
func warmUp(ctx context.Context, client *s3.Client, bucket string, workers int) error {
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			_, errs[i] = client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(basePath), MaxKeys: aws.Int32(1)})
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// adminClient is a root client for fixtures, sized for parallel seeding.
// Seeding sends unsigned payloads without checksums: it is not measured, and
// hashing gigabytes for the signature would only make the bench slower.
func adminClient(srv *miniotest.Server) *s3.Client {
	return s3.New(s3.Options{
		Region:       miniotest.Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(srv.RootUser, srv.RootPass, ""),
		HTTPClient: awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns, t.MaxIdleConnsPerHost = seedParallel+4, seedParallel+4
		}),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		APIOptions:                 []func(*middleware.Stack) error{v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware},
	})
}

type result struct {
	set, variant string
	files        int
	bytes        int64
	elapsed      time.Duration
	// heapBase is HeapInuse after a GC just before the run; heapPeak the
	// highest HeapInuse sampled during it.
	heapBase, heapPeak uint64
	reset              time.Duration
	requests           requestCounts
}

func (r result) filesPerSec() float64 { return float64(r.files) / r.elapsed.Seconds() }
func (r result) mbPerSec() float64    { return mb(r.bytes) / r.elapsed.Seconds() }

// measure runs one variant over a freshly seeded set and checks the result.
func (b *bench) measure(ctx context.Context, s *set, variant string) (result, error) {
	res := result{set: s.name, variant: variant}
	resetStart := time.Now()
	if err := b.empty(ctx, s.bucket); err != nil {
		return res, err
	}
	if err := b.purgeTrash(); err != nil {
		return res, err
	}
	if err := b.seed(ctx, s); err != nil {
		return res, err
	}
	res.reset = time.Since(resetStart)

	var runner *ingest.Runner
	if variant == pipeline {
		var err error
		runner, err = ingest.NewRunner(s.conn, ingest.Options{Importer: ingest.Discard{}, Metrics: b.metrics})
		if err != nil {
			return res, err
		}
	}
	s.requests.reset()
	runtime.GC() // leave the seeding's garbage out of the heap figure
	sampler := startHeapSampler(heapEvery)
	res.heapBase = sampler.peak
	t0 := time.Now()
	var err error
	switch variant {
	case pipeline:
		sum := runner.Run(ctx)
		res.elapsed = time.Since(t0)
		res.files, res.bytes = sum.Archived, sum.Bytes
		if !sum.OK() || sum.Archived != s.n || sum.Errored != 0 || sum.Vanished != 0 {
			err = fmt.Errorf("pipeline did not archive all %d files: %s", s.n, sum)
		}
	case plain:
		res.files, res.bytes, err = plainRun(ctx, s.conn.S3(), s.bucket, basePath, b.st.workers)
		res.elapsed = time.Since(t0)
	}
	res.heapPeak = sampler.stop()
	res.requests = s.requests.snapshot()
	if err != nil {
		return res, err
	}
	if want := int64(s.n) * int64(s.size); res.files != s.n || res.bytes != want {
		return res, fmt.Errorf("moved %d files, %d bytes; want %d files, %d bytes", res.files, res.bytes, s.n, want)
	}
	return res, b.check(ctx, s)
}

// check fails unless every seeded file left the inbox for archive/.
func (b *bench) check(ctx context.Context, s *set) error {
	keys, err := b.keys(ctx, s.bucket)
	if err != nil {
		return err
	}
	var inbox, archived, other int
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, basePath+string(archive.Archive)):
			archived++
		case strings.HasPrefix(k, basePath+string(archive.Error)):
			other++
		default:
			inbox++
		}
	}
	if inbox != 0 || archived != s.n || other != 0 {
		return fmt.Errorf("after the run: %d files left in the inbox, %d in archive/, %d in error/; want 0, %d, 0", inbox, archived, other, s.n)
	}
	return nil
}

func (b *bench) keys(ctx context.Context, bucket string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(b.admin, &s3.ListObjectsV2Input{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// empty deletes every object in bucket, so each run starts from the same
// state (and the disk does not fill up with archived copies).
func (b *bench) empty(ctx context.Context, bucket string) error {
	keys, err := b.keys(ctx, bucket)
	if err != nil {
		return err
	}
	for chunk := range slices.Chunk(keys, 1000) {
		ids := make([]types.ObjectIdentifier, len(chunk))
		for i, k := range chunk {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := b.admin.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		if err != nil {
			return fmt.Errorf("empty %s: %w", bucket, err)
		}
		if len(out.Errors) > 0 {
			return fmt.Errorf("empty %s: %d keys not deleted, first %s: %s", bucket, len(out.Errors), aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
		}
	}
	return nil
}

// purgeTrash removes what MinIO keeps of deleted objects. It moves them to
// .minio.sys/tmp/.trash and, during the bench, frees nothing: every run
// would leave its inbox there (1.3 GB for the large set), filling a tmpfs
// until MinIO stalls and making later runs slower than earlier ones.
func (b *bench) purgeTrash() error {
	entries, err := filepath.Glob(filepath.Join(b.dataRoot, "s3connector-minio-*", "data", ".minio.sys", "tmp", ".trash", "*"))
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

// seed puts the set's files with seedParallel concurrent PutObject calls.
func (b *bench) seed(ctx context.Context, s *set) error {
	next := atomic.Int64{}
	errs := make([]error, seedParallel)
	var wg sync.WaitGroup
	for w := range seedParallel {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= s.n || ctx.Err() != nil {
					return
				}
				_, err := b.admin.PutObject(ctx, &s3.PutObjectInput{
					Bucket: &s.bucket, Key: aws.String(s.key(i)),
					Body: s.body(i), ContentLength: aws.Int64(int64(s.size)),
				})
				if err != nil {
					errs[w] = fmt.Errorf("seed %s: %w", s.key(i), err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// plainRun is the baseline: the same S3 calls as the pipeline with the same
// concurrency, and nothing else. It returns the files and bytes moved; the
// first failure stops it.
func plainRun(ctx context.Context, client *s3.Client, bucket, base string, workers int) (int, int64, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	runID := ingest.NewRunID()
	type object struct {
		key, etag string
		size      int64
	}
	skipArchive, skipError := base+string(archive.Archive), base+string(archive.Error)
	queue := make(chan object, workers)
	var (
		files atomic.Int64
		moved atomic.Int64
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		defer close(queue)
		p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &base})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				cancel(fmt.Errorf("list: %w", err))
				return
			}
			for _, o := range page.Contents {
				key := aws.ToString(o.Key)
				if strings.HasSuffix(key, "/") || strings.HasPrefix(key, skipArchive) || strings.HasPrefix(key, skipError) {
					continue
				}
				select {
				case queue <- object{key: key, etag: aws.ToString(o.ETag), size: aws.ToInt64(o.Size)}:
				case <-ctx.Done():
					return
				}
			}
		}
	})
	for range workers {
		wg.Go(func() {
			for o := range queue {
				if ctx.Err() != nil {
					continue // drain the queue so the lister can stop
				}
				n, err := plainMove(ctx, client, bucket, base, runID, o.key, o.etag)
				if err != nil {
					cancel(err)
					continue
				}
				files.Add(1)
				moved.Add(n)
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return int(files.Load()), moved.Load(), err
	}
	return int(files.Load()), moved.Load(), nil
}

// plainMove is GetObject (read to the end), CopyObject to archive/ under
// the pipeline's naming, DeleteObject; with the pipeline's conditional
// headers.
func plainMove(ctx context.Context, client *s3.Client, bucket, base, runID, key, etag string) (int64, error) {
	obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key, IfMatch: &etag})
	if err != nil {
		return 0, fmt.Errorf("get %q: %w", key, err)
	}
	n, err := io.Copy(io.Discard, obj.Body)
	obj.Body.Close()
	if err != nil {
		return 0, fmt.Errorf("read %q: %w", key, err)
	}
	dest := archive.DestKey(base, archive.Archive, strings.TrimPrefix(key, base), archive.Version{ETag: etag, Modified: aws.ToTime(obj.LastModified)})
	_, err = client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket: &bucket, Key: &dest,
		CopySource:        aws.String(archive.CopySource(bucket, key)),
		CopySourceIfMatch: &etag,
		IfNoneMatch:       aws.String("*"),
		MetadataDirective: types.MetadataDirectiveCopy,
		TaggingDirective:  types.TaggingDirectiveCopy,
	})
	if err != nil {
		return 0, fmt.Errorf("copy %q to %q: %w", key, dest, err)
	}
	if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key, IfMatch: &etag}); err != nil {
		return 0, fmt.Errorf("delete %q: %w", key, err)
	}
	return n, nil
}

// patternReader reads size bytes of pattern, repeated, starting at pattern
// offset start. It is an io.ReadSeeker so the SDK can rewind it on a retry.
type patternReader struct {
	pattern          []byte
	start, size, off int64
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.size-r.off)]
	n := 0
	for n < len(p) {
		at := (r.start + r.off + int64(n)) % int64(len(r.pattern))
		n += copy(p[n:], r.pattern[at:])
	}
	r.off += int64(n)
	return n, nil
}

func (r *patternReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.off = offset
	return offset, nil
}

// requestCounter counts requests by S3 operation.
type requestCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *requestCounter) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[op]++
}

func (c *requestCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n = nil
}

func (c *requestCounter) snapshot() requestCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rc requestCounts
	for op, n := range c.n {
		rc = append(rc, opCount{op, n})
	}
	slices.SortFunc(rc, func(a, b opCount) int { return cmp.Or(b.n-a.n, strings.Compare(a.op, b.op)) })
	return rc
}

type opCount struct {
	op string
	n  int
}

// requestCounts are per-operation counts, most frequent first.
type requestCounts []opCount

func (rc requestCounts) String() string {
	var parts []string
	total := 0
	for _, c := range rc {
		parts = append(parts, fmt.Sprintf("%s %d", c.op, c.n))
		total += c.n
	}
	return fmt.Sprintf("%d requests: %s", total, strings.Join(parts, ", "))
}

// heapSampler records the highest runtime HeapInuse seen while it runs.
type heapSampler struct {
	done chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

func startHeapSampler(every time.Duration) *heapSampler {
	h := &heapSampler{done: make(chan struct{})}
	h.sample()
	h.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-t.C:
				h.sample()
			}
		}
	})
	return h
}

func (h *heapSampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.peak = max(h.peak, ms.HeapInuse)
}

// stop ends the sampling and returns the peak in bytes.
func (h *heapSampler) stop() uint64 {
	close(h.done)
	h.wg.Wait()
	h.sample()
	return h.peak
}

// peakRSS is the process's peak resident set size (VmHWM) in bytes.
func peakRSS() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM: %w", err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}

// fsKind names the kind of file system dir is on: MinIO's small-object
// speed depends mostly on it (it syncs its metadata writes).
func fsKind(dir string) string {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return err.Error()
	}
	switch fs.Type {
	case 0x01021994:
		return "tmpfs: in memory, no disk I/O"
	case 0xEF53:
		return "ext4: on disk"
	case 0x58465342:
		return "xfs: on disk"
	case 0x9123683E:
		return "btrfs: on disk"
	case 0x794C7630:
		return "overlayfs"
	}
	return fmt.Sprintf("file system type %#x", fs.Type)
}

// minioVersion describes the MinIO binary: what it reports and the module
// version it was built from.
func minioVersion(ctx context.Context) string {
	bin, err := miniotest.Tool("minio")
	if err != nil {
		return err.Error()
	}
	var parts []string
	if out, err := exec.CommandContext(ctx, bin, "--version").Output(); err == nil {
		if line, _, _ := strings.Cut(string(out), "\n"); line != "" {
			parts = append(parts, strings.TrimSpace(line))
		}
	}
	if info, err := buildinfo.ReadFile(bin); err == nil {
		parts = append(parts, fmt.Sprintf("module %s@%s, built with %s", info.Main.Path, info.Main.Version, info.GoVersion))
	}
	parts = append(parts, bin)
	return strings.Join(parts, "; ")
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func mb(n int64) float64   { return float64(n) / 1e6 }
func f1(x float64) string  { return strconv.FormatFloat(x, 'f', 1, 64) }
func f3(x float64) string  { return strconv.FormatFloat(x, 'f', 3, 64) }
func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// shellJoin quotes args for a POSIX shell where needed.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == "" {
			q[i] = a
		} else {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(q, " ")
}

// byteSize is a flag value in bytes, written as a number with an optional
// KiB, MiB or GiB suffix.
type byteSize int64

func (s byteSize) String() string {
	n := int64(s)
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n > 0 && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.suffix)
		}
	}
	return strconv.FormatInt(n, 10)
}

func (s *byteSize) Set(v string) error {
	shift := uint(0)
	for suffix, sh := range map[string]uint{"KiB": 10, "MiB": 20, "GiB": 30} {
		if num, ok := strings.CutSuffix(v, suffix); ok {
			v, shift = num, sh
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("want a positive number of bytes, optionally with KiB, MiB or GiB")
	}
	*s = byteSize(n << shift)
	return nil
}

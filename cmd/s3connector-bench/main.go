// Command s3connector-bench measures what the ingestion pipeline costs over
// the bare S3 calls it makes, on a local MinIO (the pinned build from `make
// bench-tools`) it starts on a free loopback port. Cases: many small files
// (request-bound) straight to MinIO and behind toxiproxy adding -latency to
// every response (S3 answers in tens of milliseconds; loopback MinIO in
// well under one), at each of -latency-workers; a few large files
// (byte-bound); and, with -bandwidth, the large files behind toxiproxy
// capping each connection's throughput, where the pipeline's parallel
// ranged download races the same binary with it turned off (variant
// single; see large.go). Variants, on the same server, bucket layout and
// settings:
//
//   - pipeline: `s3connector run --once` (the binary of -binary, else built
//     from ./cmd/s3connector) in a process of its own, with the discard
//     importer and the product's defaults (info logs, metrics, the file
//     state records and the lease). Its time is the run's own duration
//     from its summary line; its CPU and peak RSS are the child process's
//     (rusage, whole life, startup included).
//   - plain: a loop making the pipeline's S3 calls with the same
//     concurrency and nothing else (see loopRun), every delete deferred to
//     the end and sent in DeleteObjects batches, each entry with its ETag.
//   - naive: the same loop deleting each file with its own DeleteObject
//     (If-Match) right after its copy: GET + COPY + DELETE per file.
//   - runner (only with -variants): ingest.Runner in this process, on a
//     connection made by connector.New with the hooks `run` installs; what
//     -profile profiles.
//
// The loops run in this process, on a connection made by connector.New for
// the case (pool, retryer, checksum settings and request hooks as `run`
// has them), and their CPU is this process's user+sys during the run, their
// peak RSS this process's VmHWM, reset before the run (/proc/self/clear_refs).
// Requests are counted by MinIO itself (see serverRequests), the same way
// for every variant.
//
// Every run starts from the same state: the bucket is emptied (and MinIO's
// trash purged, see purgeTrash), the set is seeded afresh with parallel
// PutObject calls straight to MinIO, the Go heap is collected, and only then
// is the run timed. The order of the variants rotates round by round. After
// every run the bench checks that the inbox is empty and archive/ holds
// exactly the seeded files, and fails otherwise: a benchmark of a broken
// pipeline is worthless.
//
// Output: one line per run, then one table of medians per case and
// variant: files/s, MB/s (10^6 bytes of content), ratio to the plain loop
// of the same case (above 1: faster), client CPU per file, S3 requests per
// file, peak RSS. -out writes it as summary.csv, every run as runs.csv, and
// throughput.svg (files/s against workers at -latency, one line per
// variant). MinIO and toxiproxy run on the same machine and compete for the
// same CPUs: compare variants within one run, not with a remote S3.
//
// Run it with `make bench` or `make bench-quick`, or for a smoke run:
//
//	go run ./cmd/s3connector-bench -small 200 -large 0 -latency 20ms -latency-workers 16 -rounds 1
package main

import (
	"bufio"
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
	"runtime/pprof"
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
)

// The variants.
const (
	pipeline = "pipeline"
	plain    = "plain"
	naive    = "naive"
	runner   = "runner"
	// sdkPath is the pipeline with every S3 request on the SDK's path
	// (S3CONNECTOR_S3_SHORT_PATH=off; see connector.FastS3).
	sdkPath = "sdk-path"
)

var knownVariants = []string{pipeline, plain, naive, runner, sdkPath}

type settings struct {
	small, large         int
	smallSize, largeSize byteSize
	rounds, workers      int
	latency              time.Duration
	latencyWorkers       intList
	variants             stringList
	out, binary, profile string
	// bandwidth (KB/s per connection) and bandwidthWorkers: the
	// bandwidth-capped large case (large.go); 0 skips it.
	bandwidth, bandwidthWorkers int
}

func run(ctx context.Context, argv []string, out io.Writer) error {
	if len(argv) > 1 && argv[1] == "million" {
		return runMillion(ctx, append([]string{argv[0] + " million"}, argv[2:]...), out)
	}
	start := time.Now()
	var st settings
	st.smallSize, st.largeSize = 4<<10, 64<<20
	st.latencyWorkers = intList{16, 64, 256}
	st.variants = stringList{pipeline, plain, naive}
	fset := flag.NewFlagSet("s3connector-bench", flag.ContinueOnError)
	fset.IntVar(&st.small, "small", 2000, "number of small files (0 skips the small cases)")
	fset.Var(&st.smallSize, "small-size", "size of each small file (bytes, or with KiB/MiB/GiB)")
	fset.IntVar(&st.large, "large", 20, "number of large files (0 skips the large case)")
	fset.Var(&st.largeSize, "large-size", "size of each large file (bytes, or with KiB/MiB/GiB)")
	fset.IntVar(&st.rounds, "rounds", 3, "rounds; each runs every case with every variant, in an order that rotates")
	fset.IntVar(&st.workers, "workers", 16, "workers of the loopback cases (no added latency)")
	fset.DurationVar(&st.latency, "latency", 0, "latency toxiproxy adds to every MinIO response in the latency cases (0: none)")
	fset.Var(&st.latencyWorkers, "latency-workers", "comma-separated worker counts of the latency cases")
	fset.Var(&st.variants, "variants", "comma-separated variants: pipeline, plain, naive, runner (in-process ingest.Runner), sdk-path (the pipeline with S3CONNECTOR_S3_SHORT_PATH=off)")
	fset.StringVar(&st.out, "out", "", "directory for summary.csv, runs.csv and throughput.svg (none if empty)")
	fset.StringVar(&st.binary, "binary", "", "s3connector binary of the pipeline variant (default: built from ./cmd/s3connector)")
	fset.StringVar(&st.profile, "profile", "", "directory for CPU and allocation profiles of each in-process run (runner, plain, naive)")
	fset.IntVar(&st.bandwidth, "bandwidth", 0, "per-connection cap in KB/s (toxiproxy bandwidth toxic on MinIO's responses) of the capped large case: pipeline vs single-stream GET (0 skips it)")
	fset.IntVar(&st.bandwidthWorkers, "bandwidth-workers", 2, "workers of the bandwidth-capped large case (few: see large.go)")
	minioDir := fset.String("minio-dir", "", "parent directory of MinIO's data (default $TMPDIR or /tmp); /dev/shm keeps disk noise out")
	if err := fset.Parse(argv[1:]); err != nil {
		return err
	}
	if st.rounds < 1 || st.workers < 1 || st.small < 0 || st.large < 0 || st.small+st.large == 0 {
		return errors.New("need -rounds >= 1, -workers >= 1 and at least one of -small, -large > 0")
	}
	if st.bandwidth < 0 || st.bandwidthWorkers < 1 {
		return errors.New("need -bandwidth >= 0 and -bandwidth-workers >= 1")
	}
	for _, v := range st.variants {
		if !slices.Contains(knownVariants, v) {
			return fmt.Errorf("-variants: unknown variant %q (want %s)", v, strings.Join(knownVariants, ", "))
		}
	}

	fmt.Fprintf(out, "s3connector-bench: ingestion pipeline vs plain S3 loops, on a local MinIO\n")
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
	if (slices.Contains(st.variants, pipeline) || slices.Contains(st.variants, sdkPath) || bandwidthCase(st)) && st.binary == "" {
		if st.binary, err = buildBinary(ctx, dataRoot); err != nil {
			return err
		}
	}
	if st.binary != "" {
		if st.binary, err = filepath.Abs(st.binary); err != nil {
			return err
		}
		fmt.Fprintf(out, "pipeline: %s run --once\n", st.binary)
	}
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
	var tox *toxiproxy
	if (st.latency > 0 && st.small > 0) || bandwidthCase(st) {
		if tox, err = startToxiproxy(ctx, dataRoot); err != nil {
			return err
		}
		defer tox.Close()
		if st.latency > 0 && st.small > 0 {
			fmt.Fprintf(out, "toxiproxy: %s, +%s on every response of the latency cases\n", tox.api, st.latency)
		}
		if bandwidthCase(st) {
			fmt.Fprintf(out, "toxiproxy: %s, %d KB/s per connection on MinIO's responses in the capped large case\n", tox.api, st.bandwidth)
		}
	}

	b, err := newBench(ctx, srv, tox, st, dataRoot)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nEach run: reset (empty the bucket and MinIO's trash, seed the set with %d parallel PutObject), GC,\nthen time one pass over %s. MB = 10^6 bytes. CPU = user+sys of the variant's process during the run.\n\n", seedParallel, basePath)

	const runRow = "%5v  %-20s  %-8s  %6v  %8v  %8v  %9v  %8v  %11v  %9v  %8v\n"
	fmt.Fprintf(out, runRow, "round", "case", "variant", "files", "MB", "seconds", "files/s", "MB/s", "CPU ms/file", "req/file", "RSS MiB")
	var results []result
	for round := 1; round <= st.rounds; round++ {
		for _, c := range b.cases {
			// Rotate the order, so no variant always runs first or last.
			order := slices.Clone(c.variantsOf(st.variants))
			k := (round - 1) % len(order)
			order = append(order[k:], order[:k]...)
			for _, v := range order {
				res, err := b.measure(ctx, c, v, round)
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", round, c.name, v, err)
				}
				results = append(results, res)
				fmt.Fprintf(out, runRow, round, c.name, v, res.files, f1(mb(res.bytes)), f3(res.elapsed.Seconds()),
					f1(res.filesPerSec()), f1(res.mbPerSec()), f3(res.cpuPerFile()), f2(res.requestsPerFile()), f1(mib(res.maxRSS)))
			}
		}
	}

	sum := summarize(b.cases, st.variants, results)
	fmt.Fprintf(out, "\nMedians over %d round(s); ratio = files/s over the plain loop's (deferred, batched deletes) in the same case\n", st.rounds)
	fmt.Fprintf(out, "(in the capped large case: over the single-stream pipeline's);\n")
	fmt.Fprintf(out, "CPU per file = user+sys of the variant's process / files; requests counted by MinIO; peak RSS the highest of the runs.\n\n")
	writeTable(out, sum)
	writeLargeGoals(out, b.cases, sum)
	fmt.Fprintf(out, "\nS3 requests of each variant's last run, as MinIO counted them:\n")
	for _, c := range b.cases {
		for _, v := range c.variantsOf(st.variants) {
			for _, r := range slices.Backward(results) {
				if r.caseName == c.name && r.variant == v {
					fmt.Fprintf(out, "  %-20s  %-8s  %s\n", c.name, v, r.requests)
					break
				}
			}
		}
	}
	if st.out != "" {
		if err := writeOutputs(st.out, sum, results, st.latency); err != nil {
			return err
		}
		fmt.Fprintf(out, "\nwrote %s\n", strings.Join([]string{filepath.Join(st.out, "summary.csv"), filepath.Join(st.out, "runs.csv"), filepath.Join(st.out, "throughput.svg")}, ", "))
	}
	fmt.Fprintf(out, "total wall time: %s\n", time.Since(start).Round(time.Second))
	return nil
}

// set is one file set in its own bucket.
type set struct {
	name    string
	n       int
	size    byteSize
	bucket  string
	pattern []byte
}

// body is the content of file i: the pattern, repeated, from an offset
// that depends on i.
func (s *set) body(i int) *patternReader {
	return &patternReader{pattern: s.pattern, start: int64(i) * int64(s.size), size: int64(s.size)}
}

func (s *set) key(i int) string { return fmt.Sprintf("%s%s/%06d.bin", basePath, s.name, i) }

// benchCase is a set at a latency and a worker count, with its own
// connection (pool sized to its workers) and pipeline configuration.
type benchCase struct {
	name       string
	set        *set
	latency    time.Duration
	workers    int
	endpoint   string
	connName   string
	conn       *connector.Connection
	configFile string
	capped     // the bandwidth-capped large case's own settings (large.go)
}

type bench struct {
	srv *miniotest.Server
	// dataRoot holds the server's data directory (see purgeTrash).
	dataRoot string
	st       settings
	admin    *s3.Client // root credentials: seeding, cleaning, checking
	requests *serverRequests
	metrics  *metrics.Metrics
	cases    []*benchCase
}

func newBench(ctx context.Context, srv *miniotest.Server, tox *toxiproxy, st settings, dataRoot string) (*bench, error) {
	b := &bench{srv: srv, st: st, admin: adminClient(srv), dataRoot: dataRoot,
		requests: newServerRequests(srv.Endpoint, srv.RootUser, srv.RootPass)}
	if _, err := b.requests.snapshot(ctx); err != nil {
		return nil, err
	}
	m, err := metrics.New(nil) // created as `run` does, not served
	if err != nil {
		return nil, err
	}
	b.metrics = m

	// The platform identity: a MinIO user allowed everything on the bench
	// buckets. connector.New assumes a role with it through MinIO's STS;
	// the temporary credentials carry this policy.
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],` +
		`"Resource":["arn:aws:s3:::bench-*","arn:aws:s3:::bench-*/*"]}]}`
	if err := srv.AddUser(ctx, platformUser, platformSecret, []byte(policy)); err != nil {
		return nil, err
	}
	platform := aws.Config{
		Region:      miniotest.Region,
		Credentials: credentials.NewStaticCredentialsProvider(platformUser, platformSecret, ""),
		HTTPClient:  awshttp.NewBuildableClient(),
	}

	// Content comes from one 1 MiB random pattern, read at an offset per
	// file, so the bench holds no copy of the sets. MinIO neither
	// compresses (off by default) nor deduplicates.
	pattern := make([]byte, 1<<20)
	fill(rand.New(rand.NewChaCha8([32]byte{'s', '3', 'c'})), pattern)
	var latencyEndpoint string
	if tox != nil {
		if latencyEndpoint, err = tox.proxy(ctx, "minio", srv.Endpoint, st.latency); err != nil {
			return nil, err
		}
	}
	addSet := func(name string, n int, size byteSize) (*set, error) {
		s := &set{name: name, n: n, size: size, pattern: pattern, bucket: "bench-" + name}
		return s, srv.CreateBucket(ctx, s.bucket)
	}
	addCase := func(s *set, latency time.Duration, workers int) {
		name := fmt.Sprintf("%s-%s-%dw", s.name, latencyName(latency), workers)
		endpoint := srv.Endpoint
		if latency > 0 {
			endpoint = latencyEndpoint
		}
		b.cases = append(b.cases, &benchCase{name: name, set: s, latency: latency, workers: workers, endpoint: endpoint,
			connName: strings.ReplaceAll("bench-"+name, "ms", "")})
	}
	if st.small > 0 {
		s, err := addSet("small", st.small, st.smallSize)
		if err != nil {
			return nil, err
		}
		addCase(s, 0, st.workers)
		if st.latency > 0 {
			for _, w := range st.latencyWorkers {
				addCase(s, st.latency, w)
			}
		}
	}
	if st.large > 0 {
		s, err := addSet("large", st.large, st.largeSize)
		if err != nil {
			return nil, err
		}
		addCase(s, 0, st.workers)
		if bandwidthCase(st) {
			c, err := newCappedCase(ctx, tox, srv.Endpoint, s, st)
			if err != nil {
				return nil, err
			}
			b.cases = append(b.cases, c)
		}
	}
	for _, c := range b.cases {
		externalID, err := connector.NewExternalID()
		if err != nil {
			return nil, err
		}
		cc := config.Connection{
			Name: c.connName, Status: config.StatusActive, AccountID: "123456789012",
			Bucket: c.set.bucket, Region: miniotest.Region, BasePath: basePath,
			RoleName: "s3connector-bench", ExternalID: externalID,
			Workers: c.workers, Endpoint: c.endpoint, STSEndpoint: c.endpoint,
			Importer: config.Importer{Type: config.ImporterDiscard},
		}
		// The hooks `s3connector run` installs; the loops share the
		// client, so they pay for them too.
		c.conn, err = connector.New(platform, "arn:aws:iam::049579744830:root", cc, connector.WithHooks(connector.Hooks{
			S3Request:  func(op string, err error) { m.S3Request(cc.Name, op, connector.ResultLabel(err, cc.Region)) },
			AssumeRole: func(expires time.Time, err error) { m.AssumeRole(cc.Name, err, expires) },
		}))
		if err != nil {
			return nil, err
		}
		// Assume the role before the first timed run, so it pays no more
		// than the others.
		if _, err := c.conn.AssumeRole(ctx); err != nil {
			return nil, err
		}
		if c.configFile, err = writeConfig(dataRoot, c, externalID); err != nil {
			return nil, err
		}
		if err := c.writeSingleStreamConfig(); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func latencyName(d time.Duration) string {
	if d == 0 {
		return "0ms"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

type result struct {
	caseName, set, variant string
	latency                time.Duration
	workers, round         int
	files                  int
	bytes                  int64
	elapsed                time.Duration
	// cpu is user+sys of the variant's process; maxRSS its peak RSS.
	cpu      time.Duration
	maxRSS   uint64
	requests requestCounts
}

func (r result) filesPerSec() float64 { return float64(r.files) / r.elapsed.Seconds() }
func (r result) mbPerSec() float64    { return mb(r.bytes) / r.elapsed.Seconds() }
func (r result) cpuPerFile() float64 {
	return float64(r.cpu) / float64(time.Millisecond) / float64(max(r.files, 1))
}
func (r result) requestsPerFile() float64 {
	return float64(r.requests.total()) / float64(max(r.files, 1))
}

// measure runs one variant over a freshly seeded set and checks the result.
func (b *bench) measure(ctx context.Context, c *benchCase, variant string, round int) (result, error) {
	s := c.set
	res := result{caseName: c.name, set: s.name, variant: variant, latency: c.latency, workers: c.workers, round: round}
	if err := b.empty(ctx, s.bucket); err != nil {
		return res, err
	}
	if err := b.purgeTrash(); err != nil {
		return res, err
	}
	if err := b.seed(ctx, s); err != nil {
		return res, err
	}
	var rn *ingest.Runner
	if variant == runner {
		var err error
		rn, err = ingest.NewRunner(c.conn, ingest.Options{Importer: ingest.Discard{}, Metrics: b.metrics})
		if err != nil {
			return res, err
		}
	}
	runtime.GC() // leave the seeding's garbage out of the figures
	before, err := b.requests.snapshot(ctx)
	if err != nil {
		return res, err
	}
	var runErr error
	if variant == pipeline || variant == single || variant == sdkPath {
		var ru *syscall.Rusage
		var env []string
		if variant == sdkPath {
			env = []string{"S3CONNECTOR_S3_SHORT_PATH=off"}
		}
		res.files, res.elapsed, ru, runErr = pipelineRun(ctx, b.st.binary, c.forVariant(variant), env...)
		res.bytes = int64(res.files) * int64(s.size)
		if ru != nil {
			res.cpu = cpuTime(ru)
			res.maxRSS = uint64(ru.Maxrss) << 10
		}
	} else {
		stopProfile, err := b.startProfile(c, variant, round)
		if err != nil {
			return res, err
		}
		resetPeakRSS()
		var ru0, ru1 syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		t0 := time.Now()
		switch variant {
		case runner:
			sum := rn.Run(ctx)
			res.elapsed = time.Since(t0)
			res.files, res.bytes = sum.Archived, sum.Bytes
			if !sum.OK() || sum.Archived != s.n || sum.Errored != 0 || sum.Vanished != 0 {
				runErr = fmt.Errorf("pipeline did not archive all %d files: %s", s.n, sum)
			}
		case plain, naive:
			res.files, res.bytes, runErr = loopRun(ctx, c.conn.FastS3(), s.bucket, basePath, c.workers, variant == plain)
			res.elapsed = time.Since(t0)
		}
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		res.cpu = cpuTime(&ru1) - cpuTime(&ru0)
		res.maxRSS, _ = peakRSS()
		if err := stopProfile(); err != nil {
			return res, err
		}
	}
	after, err := b.requests.snapshot(ctx)
	if err != nil {
		return res, err
	}
	res.requests = diffCounts(before, after)
	if runErr != nil {
		return res, runErr
	}
	if want := int64(s.n) * int64(s.size); res.files != s.n || res.bytes != want {
		return res, fmt.Errorf("moved %d files, %d bytes; want %d files, %d bytes", res.files, res.bytes, s.n, want)
	}
	return res, b.check(ctx, s)
}

func cpuTime(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS resets this process's VmHWM to its current RSS, so peakRSS
// tells the peak of what follows (Linux 4.0 and later).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// startProfile starts a CPU profile of one in-process run (with -profile)
// and returns what ends it and writes the allocations made during the run
// (go tool pprof -sample_index=alloc_space -base <before> <after>).
func (b *bench) startProfile(c *benchCase, variant string, round int) (func() error, error) {
	if b.st.profile == "" {
		return func() error { return nil }, nil
	}
	if err := os.MkdirAll(b.st.profile, 0o755); err != nil {
		return nil, err
	}
	prefix := filepath.Join(b.st.profile, fmt.Sprintf("%s-%s-r%d", variant, c.name, round))
	if err := writeHeapProfile(prefix + ".alloc-before.pprof"); err != nil {
		return nil, err
	}
	f, err := os.Create(prefix + ".cpu.pprof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return err
		}
		return writeHeapProfile(prefix + ".alloc.pprof")
	}, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// intList is a flag of comma-separated positive integers.
type intList []int

func (l intList) String() string {
	s := make([]string, len(l))
	for i, n := range l {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	*l = nil
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("want comma-separated positive integers")
		}
		*l = append(*l, n)
	}
	return nil
}

// stringList is a flag of comma-separated words.
type stringList []string

func (l stringList) String() string { return strings.Join(l, ",") }

func (l *stringList) Set(v string) error {
	*l = nil
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*l = append(*l, f)
		}
	}
	if len(*l) == 0 {
		return errors.New("want at least one")
	}
	return nil
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

// measure runs one variant over a freshly seeded set and checks the result.
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
// plainMove is GetObject (read to the end), CopyObject to archive/ under
// the pipeline's naming, DeleteObject; with the pipeline's conditional
// headers.
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
// requestCounts are per-operation counts, most frequent first.
// heapSampler records the highest runtime HeapInuse seen while it runs.
// stop ends the sampling and returns the peak in bytes.
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

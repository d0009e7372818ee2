package ingest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3connector/s3connector/config"
	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
)

// BenchmarkRunPeakHeap measures the Go heap one Run holds while it streams
// a single object through the Discard importer and archives it. I7 says
// memory is bounded by workers × buffer whatever the object size, so the
// 1 GiB object must peak about where the 1 MiB one does.
//
// peak-heap-MiB is the highest runtime HeapInuse sampled every 5 ms during
// the Run (it includes the test binary's own heap); heap-growth-MiB is that
// peak minus HeapInuse after a GC just before the Run. The upload of the
// object is outside the timer; MB/s counts the object's bytes per Run.
//
//	go test -run '^$' -bench RunPeakHeap -benchtime 2x ./ingest
func BenchmarkRunPeakHeap(b *testing.B) {
	for _, bm := range []struct {
		name string
		size int64
	}{
		{"1MiB", 1 << 20},
		{"1GiB", 1 << 30},
	} {
		b.Run(bm.name, func(b *testing.B) { benchmarkRunPeakHeap(b, bm.size) })
	}
}

func benchmarkRunPeakHeap(b *testing.B, size int64) {
	const base, key = "inbox/", "inbox/object.bin"
	srv := needMinIO(b)
	bucket := minioBucket(b, srv)
	conn := testConnection(b, srv, bucket, base, "", func(c *config.Connection) {
		c.Name, c.Workers = "bench", config.DefaultWorkers
	})
	r, err := NewRunner(conn, Options{Importer: Discard{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.Cleanup(func() { deleteUnder(context.Background(), b, srv, bucket, base) })

	b.SetBytes(size)
	var peak, growth uint64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		// Put the object back (the previous Run archived it) and drop the
		// archived copies, so every Run sees the same bucket.
		deleteUnder(ctx, b, srv, bucket, base+"archive/")
		if err := putStreaming(ctx, srv, bucket, key, size); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		sampler := startHeapSampler(5 * time.Millisecond)
		before := sampler.peak
		b.StartTimer()

		s := r.Run(ctx)

		b.StopTimer()
		p := sampler.stop()
		peak, growth = max(peak, p), max(growth, p-min(p, before))
		if !s.OK() || s.Archived != 1 || s.Bytes != size {
			b.Fatalf("run did not archive the %d-byte object: %s", size, s)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(growth)/(1<<20), "heap-growth-MiB")
}

// putStreaming uploads size deterministic pseudo-random bytes without
// holding them in memory: the body is a reader, sent as an unsigned payload
// without a checksum, so the SDK neither hashes nor buffers it (and cannot
// retry it, which a local server does not need).
func putStreaming(ctx context.Context, srv *miniotest.Server, bucket, key string, size int64) error {
	if out, err := srv.Root().HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key}); err == nil && aws.ToInt64(out.ContentLength) == size {
		return nil // still there
	}
	body := io.LimitReader(rand.NewChaCha8([32]byte{'b', 'e', 'n', 'c', 'h'}), size)
	_, err := srv.Root().PutObject(ctx, &s3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: body, ContentLength: aws.Int64(size),
	}, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware), func(o *s3.Options) {
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	})
	if err != nil {
		return fmt.Errorf("put %d bytes to s3://%s/%s: %w", size, bucket, key, err)
	}
	return nil
}

// deleteUnder deletes every object under prefix with the root credentials.
func deleteUnder(ctx context.Context, tb testing.TB, srv *miniotest.Server, bucket, prefix string) {
	tb.Helper()
	keys, err := srv.Keys(ctx, bucket, prefix)
	if err != nil {
		tb.Fatal(err)
	}
	var errs []error
	for _, k := range keys {
		if _, err := srv.Root().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &k}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		tb.Fatal(err)
	}
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

// BenchmarkRunArchiveHistory measures one Run over a 10-file inbox (listed,
// imported by Discard, archived) next to an archive/ that is empty and one
// that holds 100,000 files, the history of a busy connection. The listing
// never reads archive/ (connector.InboxListing), so both must cost the same
// LIST requests and about the same time. LIST-requests/op counts every
// ListObjectsV2 attempt the connection sent during the Run (its listing of
// the inbox and of the per-file state records); list-ms/op is a listing of
// the inbox alone, made before each Run, outside the timer. The parent
// benchmark logs both cases side by side.
//
// Putting the inbox back and removing what the previous Run archived is
// outside the timer; so is the seeding, which uses MinIO's snowball
// extension (tar archives extracted on upload, several at once): 100,000
// PUTs would take minutes.
//
//	TMPDIR=/dev/shm go test -run '^$' -bench RunArchiveHistory -benchtime 20x ./ingest
func BenchmarkRunArchiveHistory(b *testing.B) {
	const base = "inbox/"
	srv := needMinIO(b)
	type result struct {
		run, list time.Duration
		requests  float64
	}
	results := map[int]result{}
	cases := []int{0, 100_000}
	for _, archived := range cases {
		// Seeded once: a sub-benchmark function runs once per b.N tried.
		bucket := minioBucket(b, srv)
		start := time.Now()
		if err := seedArchive(b.Context(), srv, bucket, base+"archive/history/", archived); err != nil {
			b.Fatal(err)
		}
		if archived > 0 {
			b.Logf("seeded %d archived files in %s", archived, time.Since(start).Round(time.Millisecond))
		}
		var lists atomic.Int64
		conn := benchConnection(b, srv, bucket, base, &lists)
		b.Run(fmt.Sprintf("archived=%d", archived), func(b *testing.B) {
			ctx := b.Context()
			r, err := NewRunner(conn, Options{Importer: Discard{}})
			if err != nil {
				b.Fatal(err)
			}
			lister := &Lister{S3: conn.S3(), Bucket: bucket, BasePath: base}
			inbox := map[string][]byte{}
			for i := range 10 {
				inbox[fmt.Sprintf("%sfile-%02d.csv", base, i)] = []byte("id,amount\n1,2\n")
			}
			var run, list time.Duration
			var requests int64
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				deleteArchivedRuns(ctx, b, srv, bucket, base)
				minioPut(b, srv, bucket, inbox)
				start := time.Now()
				if st, err := lister.List(ctx, make(chan File, len(inbox))); err != nil || st.Listed != len(inbox) {
					b.Fatalf("listing: %+v, %v", st, err)
				}
				list += time.Since(start)
				lists.Store(0)
				b.StartTimer()

				s := r.Run(ctx)

				b.StopTimer()
				run += s.Duration
				requests += lists.Load()
				if !s.OK() || s.Archived != len(inbox) {
					b.Fatalf("run did not archive the %d files: %s", len(inbox), s)
				}
				b.StartTimer()
			}
			n := time.Duration(b.N)
			b.ReportMetric(float64(requests)/float64(b.N), "LIST-requests/op")
			b.ReportMetric(float64(list/n)/float64(time.Millisecond), "list-ms/op")
			results[archived] = result{run / n, list / n, float64(requests) / float64(b.N)}
		})
	}
	if len(results) == len(cases) {
		line := "10-file inbox:"
		for _, archived := range cases {
			r := results[archived]
			line += fmt.Sprintf("  %d archived: run %s, %.1f LIST requests, listing %s;", archived,
				r.run.Round(100*time.Microsecond), r.requests, r.list.Round(100*time.Microsecond))
		}
		b.Log(line)
	}
}

// benchConnection is testConnection with a hook counting the connection's
// ListObjectsV2 requests in lists.
func benchConnection(b *testing.B, srv *miniotest.Server, bucket, base string, lists *atomic.Int64) *connector.Connection {
	b.Helper()
	c := config.Connection{
		Name: "bench", Status: config.StatusActive, AccountID: "123456789012",
		Bucket: bucket, Region: miniotest.Region, BasePath: base,
		RoleName: "s3connector-bench", ExternalID: "s3connector-test-external-id-0001",
		Workers: config.DefaultWorkers, Endpoint: srv.Endpoint, STSEndpoint: srv.Endpoint,
	}
	policy, err := json.Marshal(connector.PermissionsPolicyFor(c))
	if err != nil {
		b.Fatal(err)
	}
	user, secret := "bench-"+bucket, "bench-secret-"+bucket
	if err := srv.AddUser(context.Background(), user, secret, policy); err != nil {
		b.Fatal(err)
	}
	platform := aws.Config{
		Region:      miniotest.Region,
		Credentials: credentials.NewStaticCredentialsProvider(user, secret, ""),
		HTTPClient:  awshttp.NewBuildableClient(),
	}
	conn, err := connector.New(platform, "arn:aws:iam::049579744830:root", c, connector.WithHooks(connector.Hooks{
		S3Request: func(op string, _ error) {
			if op == "ListObjectsV2" {
				lists.Add(1)
			}
		},
	}))
	if err != nil {
		b.Fatal(err)
	}
	return conn
}

// seedArchive writes n one-byte objects under prefix: tar archives of 10,000
// entries uploaded 4 at a time with MinIO's Snowball-Auto-Extract, which
// stores each entry as an object. It checks the count with a listing.
func seedArchive(ctx context.Context, srv *miniotest.Server, bucket, prefix string, n int) error {
	const perTar = 10_000
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, 4)
	for first := 0; first < n; first += perTar {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := seedTar(ctx, srv, bucket, prefix, first, min(first+perTar, n)); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("seed %d archived files: %w", n, err)
	}
	keys, err := srv.Keys(ctx, bucket, prefix)
	if err != nil {
		return err
	}
	if len(keys) != n {
		return fmt.Errorf("seeded %d archived files, want %d (does this MinIO extract snowball uploads?)", len(keys), n)
	}
	return nil
}

// seedTar uploads files first to end-1 as one auto-extracted tar archive.
func seedTar(ctx context.Context, srv *miniotest.Server, bucket, prefix string, first, end int) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := first; i < end; i++ {
		// Folders by date, as years of archive look.
		name := fmt.Sprintf("%s%04d/%02d/%02d/file-%06d.csv", prefix, 2020+i%5, 1+i%12, 1+i%28, i)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: 1, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte("x")); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_, err := srv.Root().PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(fmt.Sprintf("%sseed-%06d.tar", prefix, first)),
		Body:          bytes.NewReader(buf.Bytes()),
		ContentLength: aws.Int64(int64(buf.Len())),
		Metadata:      map[string]string{"Snowball-Auto-Extract": "true"},
	})
	return err
}

// deleteArchivedRuns deletes what earlier Runs moved to base's archive/,
// leaving the seeded history (archive/history/) as it is.
func deleteArchivedRuns(ctx context.Context, tb testing.TB, srv *miniotest.Server, bucket, base string) {
	tb.Helper()
	out, err := srv.Root().ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(bucket), Prefix: aws.String(base + "archive/"), Delimiter: aws.String("/"),
	})
	if err != nil {
		tb.Fatal(err)
	}
	for _, cp := range out.CommonPrefixes {
		if p := aws.ToString(cp.Prefix); p != base+"archive/history/" {
			deleteUnder(ctx, tb, srv, bucket, p)
		}
	}
	for _, o := range out.Contents {
		if _, err := srv.Root().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: o.Key}); err != nil {
			tb.Fatal(err)
		}
	}
}

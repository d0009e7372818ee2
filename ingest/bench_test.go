package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3connector/s3connector/config"
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

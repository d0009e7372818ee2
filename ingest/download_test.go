package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3connector/s3connector/connector/miniotest"
)

// rangedGets returns the GETs of key the proxy saw, in order.
func rangedGets(p *miniotest.Proxy, key string) []miniotest.Request {
	var out []miniotest.Request
	for _, q := range p.Requests() {
		if q.Method == http.MethodGet && strings.HasSuffix(q.Path, "/"+key) {
			out = append(out, q)
		}
	}
	return out
}

func listedETag(t *testing.T, srv *miniotest.Server, bucket, key string) string {
	t.Helper()
	out, err := srv.Root().HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	return *out.ETag
}

func TestRunDownloadsLargeFilesInPinnedRanges(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	const size, part, concurrency = 40 << 20, 8 << 20, 2
	want := randomBody(size)
	put(t, srv, bucket, "big.bin", want)
	put(t, srv, bucket, "small.bin", []byte("small"))
	etag := listedETag(t, srv, bucket, "big.bin")
	proxy := srv.NewProxy(t)

	var got bytes.Buffer
	var early []miniotest.Request
	imp := importerFunc(func(_ context.Context, f File, body io.Reader) error {
		if f.RelKey != "big.bin" {
			_, err := io.Copy(io.Discard, body)
			return err
		}
		// Stop within the first range: the download must wait for the
		// importer with no more than concurrency ranges fetched ahead.
		if _, err := io.CopyN(&got, body, 1<<20); err != nil {
			return err
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(rangedGets(proxy, "big.bin")) < 1+concurrency && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		early = rangedGets(proxy, "big.bin")
		_, err := io.Copy(&got, body)
		return err
	})
	r, err := NewRunner(testConnection(t, srv, bucket, "", proxy.URL, nil), Options{
		Importer: imp, ParallelDownloadThreshold: 8 << 20, DownloadPartSize: part, DownloadConcurrency: concurrency,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Archived != 2 || !s.OK() {
		t.Fatalf("summary %+v, want both files archived", s)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("importer got %d bytes, not the object's %d", got.Len(), size)
	}
	if n := len(early); n != 1+concurrency {
		t.Errorf("while the importer waited in the first range, %d ranges were asked for, want 1 + %d ahead", n, concurrency)
	}
	gets := rangedGets(proxy, "big.bin")
	var ranges []string
	for _, q := range gets {
		if m := q.Header.Get("If-Match"); m != etag {
			t.Errorf("GET %s: If-Match %q, want the listed ETag %q", q.Header.Get("Range"), m, etag)
		}
		ranges = append(ranges, q.Header.Get("Range"))
	}
	wantRanges := []string{"bytes=0-8388607", "bytes=8388608-16777215", "bytes=16777216-25165823", "bytes=25165824-33554431", "bytes=33554432-41943039"}
	// Ranges ahead are fetched concurrently: they reach the proxy in any
	// order (the importer still gets them in order, checked above).
	slices.Sort(ranges)
	slices.Sort(wantRanges)
	if !slices.Equal(ranges, wantRanges) {
		t.Errorf("ranges %q, want %q", ranges, wantRanges)
	}
	if small := rangedGets(proxy, "small.bin"); len(small) != 1 || small[0].Header.Get("Range") != "" {
		t.Errorf("a file under the threshold was not read in one plain GET: %d GETs", len(small))
	}
	archived := keys(t, srv, bucket, "archive/")
	for _, k := range archived {
		if strings.Contains(k, "big") && !bytes.Equal(body(t, srv, bucket, k), want) {
			t.Errorf("archived %s differs from the original", k)
		}
	}
}

// A re-upload during the download fails the ranges still to come with 412
// (real MinIO, If-Match): the importer sees a read error, never the new
// version's bytes after the old one's, and the file stays in the inbox.
//
// The re-upload comes once the first range (the streamed answer) has been
// read: MinIO cuts an answer in flight when its object is overwritten
// (AWS keeps serving the old version), and a streamed range is not asked
// for again. A range fetched ahead that MinIO cuts is asked for again and
// then gets the 412.
func TestRunReuploadDuringParallelDownloadIsTransient(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	const size = 40 << 20
	old, updated := randomBody(size), randomBody(size)
	put(t, srv, bucket, "big.bin", old)
	var got bytes.Buffer
	var readErr error
	first := true
	imp := importerFunc(func(_ context.Context, _ File, body io.Reader) error {
		if !first {
			_, err := io.Copy(&got, body)
			return err
		}
		first = false
		if _, err := io.CopyN(&got, body, 8<<20); err != nil {
			return err
		}
		put(t, srv, bucket, "big.bin", updated)
		_, readErr = io.Copy(&got, body)
		return readErr
	})
	r, err := NewRunner(testConnection(t, srv, bucket, "", "", nil), Options{
		Importer: imp, ParallelDownloadThreshold: 8 << 20, DownloadPartSize: 8 << 20, DownloadConcurrency: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Archived != 0 || s.Retry != 1 {
		t.Fatalf("summary %+v, want the file left for the next run", s)
	}
	if readErr == nil || !strings.Contains(readErr.Error(), "PreconditionFailed") {
		t.Fatalf("read error %v, want a 412 on a later range", readErr)
	}
	if !bytes.HasPrefix(old, got.Bytes()) || got.Len() == size {
		t.Fatalf("importer got %d bytes that are not a strict prefix of the old version", got.Len())
	}
	if n := len(keys(t, srv, bucket, "archive/")); n != 0 {
		t.Fatalf("archive/ holds %d files after a failed download", n)
	}
	got.Reset()
	if s := r.Run(t.Context()); s.Archived != 1 {
		t.Fatalf("second run %+v", s)
	}
	if !bytes.Equal(got.Bytes(), updated) {
		t.Errorf("second run imported %d bytes, not the new version", got.Len())
	}
}

// A range fetched ahead whose body breaks off is asked for again (pinned
// to the ETag as before) and the download completes; the proxy stands in
// for a connection reset mid-answer.
func TestRunRetriesARangeWhoseBodyBreaks(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	const size, part = 24 << 20, 8 << 20
	want := randomBody(size)
	put(t, srv, bucket, "big.bin", want)
	etag := listedETag(t, srv, bucket, "big.bin")
	var mu sync.Mutex
	var ranges []string
	hs := cuttingProxy(t, srv, func(r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/big.bin") {
			return false
		}
		rng := r.Header.Get("Range")
		mu.Lock()
		defer mu.Unlock()
		ranges = append(ranges, rng+" If-Match "+r.Header.Get("If-Match"))
		// The first request for the second range only.
		return rng == "bytes=8388608-16777215" && slices.Index(ranges, ranges[len(ranges)-1]) == len(ranges)-1
	})
	var got bytes.Buffer
	imp := importerFunc(func(_ context.Context, _ File, body io.Reader) error {
		_, err := io.Copy(&got, body)
		return err
	})
	r, err := NewRunner(testConnection(t, srv, bucket, "", hs.URL, nil), Options{
		Importer: imp, ParallelDownloadThreshold: part, DownloadPartSize: part, DownloadConcurrency: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Run(t.Context()); s.Archived != 1 || !s.OK() {
		t.Fatalf("summary %+v, want the file archived after the range was asked for again", s)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("importer got %d bytes, not the object's %d", got.Len(), size)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(ranges)
	wantRanges := []string{"bytes=0-8388607", "bytes=16777216-25165823", "bytes=8388608-16777215", "bytes=8388608-16777215"}
	for i := range wantRanges {
		wantRanges[i] += " If-Match " + etag
	}
	slices.Sort(wantRanges)
	if !slices.Equal(ranges, wantRanges) {
		t.Errorf("requests %q, want %q (the cut range twice)", ranges, wantRanges)
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in                string
		start, end, total int64
		wantErr           bool
	}{
		{in: "bytes 0-9/10", start: 0, end: 9, total: 10},
		{in: "bytes 8388608-16777215/41943040", start: 8388608, end: 16777215, total: 41943040},
		{in: "bytes 0-9/*", wantErr: true},
		{in: "bytes 5-4/10", wantErr: true},
		{in: "bytes 0-10/10", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		s, e, n, err := parseContentRange(tt.in)
		if (err != nil) != tt.wantErr || s != tt.start || e != tt.end || n != tt.total {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v", tt.in, s, e, n, err)
		}
	}
}

// A range that fails mid-body is a read error at its place, after every
// byte before it was delivered, and Close waits for every fetch.
func TestRangedReaderStopsAtAFailedRange(t *testing.T) {
	data := randomBody(100)
	broken := errors.New("connection reset")
	fetch := func(ctx context.Context, buf []byte, start, end int64) ([]byte, error) {
		if start == 60 {
			return nil, broken
		}
		return data[start : end+1], nil
	}
	d := newRangedReader(context.Background(), io.NopCloser(bytes.NewReader(data[:20])), fetch, 20, 100, 2, nil)
	got, err := io.ReadAll(d)
	if !errors.Is(err, broken) || !bytes.Equal(got, data[:60]) {
		t.Fatalf("read %d bytes, err %v; want 60 bytes then the range's error", len(got), err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// Part buffers go back to the runner's pool when a download is closed,
// whether read to the end or not, and the next file's fetches get them
// instead of allocating; a Read after Close fails.
func TestRangedReaderRecyclesPartBuffers(t *testing.T) {
	data := randomBody(100)
	bufs := &partBuffers{size: 20}
	var mu sync.Mutex
	var allocated int
	fetch := func(ctx context.Context, buf []byte, start, end int64) ([]byte, error) {
		if buf == nil {
			mu.Lock()
			allocated++
			mu.Unlock()
			buf = make([]byte, 20)
		}
		buf = buf[:end-start+1]
		copy(buf, data[start:end+1])
		return buf, nil
	}
	open := func() *rangedReader {
		return newRangedReader(context.Background(), io.NopCloser(bytes.NewReader(data[:20])), fetch, 20, 100, 2, bufs)
	}
	d := open()
	got, err := io.ReadAll(d)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, err %v; want the 100 bytes", len(got), err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Read(make([]byte, 1)); err == nil {
		t.Error("Read after Close succeeded")
	}
	if allocated != 2 {
		t.Fatalf("first file allocated %d buffers, want concurrency (2)", allocated)
	}
	// More files, each left after its first range: their buffers come
	// from the pool and go back to it. sync.Pool may drop what it holds
	// (at a collection, and at random under the race detector, which
	// drops a quarter of its Puts), so one file proves nothing either
	// way; over ten, buffers must have been reused (without recycling
	// every file allocates its 2).
	const files = 10
	for range files {
		d = open()
		if _, err := io.ReadFull(d, make([]byte, 30)); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	more := allocated - 2
	mu.Unlock()
	t.Logf("%d files after the first allocated %d buffers", files, more)
	if more >= files*2 {
		t.Errorf("%d files after the first allocated %d buffers: none was recycled", files, more)
	}
	n := 0
	for bufs.get() != nil {
		n++
	}
	if n == 0 && more > files {
		t.Error("no buffer went back to the pool")
	}
}

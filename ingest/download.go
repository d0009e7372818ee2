package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3connector/s3connector/config"
)

// Defaults of the parallel download (Options.ParallelDownloadThreshold,
// DownloadPartSize, DownloadConcurrency): those of a connection's download
// block, so that a Runner built in code reads like one from the file. One
// large file holds at most DownloadConcurrency part buffers: 4 × 8 MiB =
// 32 MiB per worker reading a large file.
const (
	DefaultParallelDownloadThreshold = int64(config.DefaultDownloadParallelThreshold)
	DefaultDownloadPartSize          = int64(config.DefaultDownloadPartSize)
	DefaultDownloadConcurrency       = config.DefaultDownloadConcurrency
)

// downloadOptions decides how a file's body is fetched.
type downloadOptions struct {
	threshold   int64 // files of at least this size are fetched in ranges; 0 = never
	partSize    int64
	concurrency int
	bufs        *partBuffers // shared by the runner's files
}

func newDownloadOptions(o Options) downloadOptions {
	d := downloadOptions{threshold: o.ParallelDownloadThreshold, partSize: o.DownloadPartSize, concurrency: o.DownloadConcurrency, bufs: &partBuffers{}}
	switch {
	case d.threshold == 0:
		d.threshold = DefaultParallelDownloadThreshold
	case d.threshold < 0:
		d.threshold = 0
	}
	if d.partSize <= 0 {
		d.partSize = DefaultDownloadPartSize
	}
	if d.concurrency <= 0 {
		d.concurrency = DefaultDownloadConcurrency
	}
	d.bufs.size = int(d.partSize)
	return d
}

// partBuffers recycles part buffers from one large file to the next. Each
// file's download would otherwise allocate concurrency fresh buffers and
// drop them at its end: tens of MiB of garbage per file, which lets the
// heap (and the peak RSS) grow to about twice the buffers in use before
// the collector runs (GOGC=100). A nil *partBuffers recycles nothing.
type partBuffers struct {
	size int
	pool sync.Pool // of *[]byte with cap size
}

// get returns a recycled buffer, or nil (the fetch allocates one).
func (b *partBuffers) get() []byte {
	if b == nil {
		return nil
	}
	if p, ok := b.pool.Get().(*[]byte); ok {
		return *p
	}
	return nil
}

// put recycles buf if it is one of the pool's size; others (a test's
// fetch returning its own slices) are left to the collector.
func (b *partBuffers) put(buf []byte) {
	if b != nil && buf != nil && cap(buf) == b.size {
		buf = buf[:0]
		b.pool.Put(&buf)
	}
}

// getObject GETs f pinned to its listed ETag (If-Match). A file of at
// least the parallel download threshold is asked for in ranges: the first
// range's answer carries the object's attributes and is streamed as the
// start of the body, while the following ranges are fetched concurrently,
// each pinned to the same ETag, and handed out in order. A re-upload during
// the download fails the next range with 412, which the body returns as a
// read error: never a body mixed from two versions.
//
// The returned output's ContentLength is the whole object's; its Body must
// be closed (closeBody), which stops the download and waits for it.
func (r *Runner) getObject(ctx context.Context, f File) (*s3.GetObjectOutput, error) {
	in := &s3.GetObjectInput{Bucket: &r.bucket, Key: aws.String(f.Key), IfMatch: aws.String(f.ETag)}
	d := r.download
	if d.threshold <= 0 || f.Size < d.threshold || f.Size <= d.partSize {
		return r.s3.GetObject(ctx, in)
	}
	in.Range = aws.String(fmt.Sprintf("bytes=0-%d", d.partSize-1))
	obj, err := r.s3.GetObject(ctx, in)
	if err != nil {
		return nil, err
	}
	if obj.ContentRange == nil {
		return obj, nil // the whole object (a server that ignores Range)
	}
	start, end, total, err := parseContentRange(aws.ToString(obj.ContentRange))
	if err == nil && (start != 0 || end != min(d.partSize, total)-1) {
		err = fmt.Errorf("asked for bytes 0-%d, got %d-%d", d.partSize-1, start, end)
	}
	if err != nil {
		closeBody(obj.Body)
		return nil, fmt.Errorf("first range: %w", err)
	}
	obj.ContentLength = aws.Int64(total)
	obj.ContentRange = nil
	if total <= d.partSize {
		return obj, nil
	}
	fetch := func(ctx context.Context, buf []byte, start, end int64) ([]byte, error) {
		r.hook("range", f)
		return r.getRange(ctx, f, buf, start, end, total)
	}
	obj.Body = newRangedReader(ctx, obj.Body, fetch, d.partSize, total, d.concurrency, d.bufs)
	return obj, nil
}

// partBodyRetries is how many times a range whose body breaks off is asked
// for again, as feature/s3/manager's Downloader does (PartBodyMaxRetries,
// 3): the SDK retries a failed request but not a body that breaks after
// the answer's headers. Each retry is pinned to the listed ETag too, so a
// re-upload meanwhile ends the download with 412, never a mixed body.
const partBodyRetries = 3

// getRange reads bytes start-end (inclusive) of f, pinned to its listed
// ETag, into buf (grown when too small).
func (r *Runner) getRange(ctx context.Context, f File, buf []byte, start, end, total int64) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		out, broken, err := r.getRangeOnce(ctx, f, buf, start, end, total)
		if err == nil || !broken || attempt == partBodyRetries || ctx.Err() != nil {
			return out, err
		}
	}
}

// getRangeOnce is one request of getRange; broken says the answer's body
// broke off (worth asking again) rather than the request failing.
func (r *Runner) getRangeOnce(ctx context.Context, f File, buf []byte, start, end, total int64) (_ []byte, broken bool, _ error) {
	out, err := r.s3.GetObject(ctx, &s3.GetObjectInput{
		Bucket: &r.bucket, Key: aws.String(f.Key), IfMatch: aws.String(f.ETag),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", start, end)),
	})
	if err != nil {
		return nil, false, err
	}
	defer closeBody(out.Body)
	s, e, t, err := parseContentRange(aws.ToString(out.ContentRange))
	if err != nil {
		return nil, false, err
	}
	if s != start || e != end || t != total {
		return nil, false, fmt.Errorf("asked for bytes %d-%d/%d, got %d-%d/%d", start, end, total, s, e, t)
	}
	n := int(end - start + 1)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(out.Body, buf); err != nil {
		return nil, true, err
	}
	return buf, false, nil
}

// parseContentRange reads "bytes start-end/total".
func parseContentRange(v string) (start, end, total int64, err error) {
	rng, tot, ok := strings.Cut(strings.TrimPrefix(v, "bytes "), "/")
	s, e, ok2 := strings.Cut(rng, "-")
	if ok && ok2 {
		start, err = strconv.ParseInt(s, 10, 64)
		if err == nil {
			end, err = strconv.ParseInt(e, 10, 64)
		}
		if err == nil {
			total, err = strconv.ParseInt(tot, 10, 64)
		}
		if err == nil && start <= end && end < total {
			return start, end, total, nil
		}
	}
	return 0, 0, 0, fmt.Errorf("unexpected Content-Range %q", v)
}

// rangedReader delivers an object in order from its first range (a
// streaming body) and the ranges after it, fetched concurrently. A range
// is only asked for once it holds one of the reader's part buffers, so at
// most concurrency parts are in memory (or in flight) at any time, and a
// slow reader holds the download back instead of buffering the file.
type rangedReader struct {
	cur     io.Reader // what is being read: the first body, then a part's buffer
	curBuf  []byte    // cur's buffer, returned to free once read
	first   io.ReadCloser
	read    int64 // bytes delivered so far
	total   int64
	parts   chan *part  // dispatched parts, in order
	free    chan []byte // part buffers (nil until a part allocates it)
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	err     error
	closed  bool
	partLen int64
	bufs    *partBuffers // where Close returns the buffers; nil: nowhere
}

type part struct {
	start, end int64
	buf        []byte
	err        error
	done       chan struct{}
}

func newRangedReader(ctx context.Context, first io.ReadCloser, fetch func(ctx context.Context, buf []byte, start, end int64) ([]byte, error), partSize, total int64, concurrency int, bufs *partBuffers) *rangedReader {
	ctx, cancel := context.WithCancel(ctx)
	d := &rangedReader{
		cur: first, first: first, total: total, partLen: partSize, bufs: bufs,
		parts: make(chan *part, concurrency), free: make(chan []byte, concurrency), cancel: cancel,
	}
	for range concurrency {
		d.free <- nil
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer close(d.parts)
		for start := partSize; start < total; start += partSize {
			var buf []byte
			select {
			case buf = <-d.free:
			case <-ctx.Done():
				return
			}
			if buf == nil {
				buf = d.bufs.get()
			}
			p := &part{start: start, end: min(start+partSize, total) - 1, done: make(chan struct{})}
			d.parts <- p // never blocks: a part holds a buffer, and there are cap(parts) of them
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				defer close(p.done)
				p.buf, p.err = safeFetch(ctx, fetch, buf, p.start, p.end)
			}()
		}
	}()
	return d
}

// safeFetch is fetch that returns a panic as its error (a *panicError,
// with the stack): from a fetch goroutine, a panic would end the whole
// process. The reader returns it at the part's place in the body, and the
// worker treats the file as crashed (see run.crashed). The part's buffer
// is not handed back: the collector has it.
func safeFetch(ctx context.Context, fetch func(ctx context.Context, buf []byte, start, end int64) ([]byte, error), buf []byte, start, end int64) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, recovered(p)
		}
	}()
	return fetch(ctx, buf, start, end)
}

var errDownloadStopped = errors.New("download stopped")

// Read returns the object's bytes in order; a range that could not be
// fetched (412 after a re-upload, a broken connection) is a read error at
// its place in the body.
func (d *rangedReader) Read(p []byte) (int, error) {
	for d.err == nil {
		if d.read == d.total {
			return 0, io.EOF
		}
		if d.cur == nil {
			d.next()
			continue
		}
		n, err := d.cur.Read(p)
		d.read += int64(n)
		if err == io.EOF {
			err = nil
			if d.read%d.partLen != 0 && d.read != d.total {
				err = fmt.Errorf("range ended at byte %d: %w", d.read, io.ErrUnexpectedEOF)
			}
			d.cur = nil
			if d.curBuf != nil {
				d.free <- d.curBuf // never blocks: it came from free
				d.curBuf = nil
			}
		}
		if err != nil {
			d.err = err
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, d.err
}

// next waits for the next part in order and makes it current.
func (d *rangedReader) next() {
	p, ok := <-d.parts
	if !ok {
		d.err = errDownloadStopped
		return
	}
	<-p.done
	switch {
	case p.err != nil:
		d.err = fmt.Errorf("bytes %d-%d: %w", p.start, p.end, p.err)
	case p.start != d.read:
		d.err = fmt.Errorf("part at byte %d, expected %d", p.start, d.read)
	default:
		d.cur, d.curBuf = bytes.NewReader(p.buf), p.buf
	}
}

// Close stops the download, waits for its goroutines, recycles the part
// buffers and closes the first range's body. Read after Close fails.
func (d *rangedReader) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	d.cancel()
	d.wg.Wait()
	// No fetch runs any more and no Read may follow: every buffer is
	// free, current, or in a part never read (parts is closed by now).
	d.bufs.put(d.curBuf)
	d.cur, d.curBuf = nil, nil
	if d.err == nil {
		d.err = errDownloadStopped
	}
	for p := range d.parts {
		d.bufs.put(p.buf)
	}
	for {
		select {
		case buf := <-d.free:
			d.bufs.put(buf)
		default:
			return d.first.Close()
		}
	}
}

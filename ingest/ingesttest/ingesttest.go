// Package ingesttest is the conformance suite for ingest.Importer, as Go
// CDK's blob/drivertest is for blob drivers: every built-in importer runs
// it, and so should yours. Write a Harness that builds your importer on a
// sink of its own and can tell what reached that sink, then call Run from a
// test:
//
//	func TestConformance(t *testing.T) {
//		ingesttest.Run(t, func(t *testing.T) ingesttest.Harness { return newMySinkHarness(t) })
//	}
//
// Run checks the rules of the Importer contract (see ingest.Importer) under
// -race: bodies arrive byte for byte, from empty to several MiB; the same
// key imported again succeeds and leaves the latest body (delivery is at
// least once); concurrent imports; a body that fails mid-read is a
// transient failure that delivers nothing; a cancelled import returns
// promptly and is not permanent; the body is not read after Import
// returns; bad content is permanent (where the importer judges content);
// an importer that is an io.Closer is closed once, after its last Import.
package ingesttest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/s3connector/s3connector/ingest"
)

// Harness builds the importer under test and looks at its sink. Run makes
// a new Harness, with a sink of its own, for every check.
type Harness interface {
	// New returns the importer under test, delivering into this harness's
	// sink. Run calls it once per harness, and closes the importer (once,
	// after its last Import) if it implements io.Closer.
	New(t *testing.T) (ingest.Importer, error)
	// Delivered returns the body the sink holds for f.Key, the latest one
	// if the key was imported more than once, and false if it holds
	// nothing for the key. It is called after Import returned, never
	// concurrently with it, and only unless Features.NoDeliveries.
	Delivered(t *testing.T, f ingest.File) (body []byte, ok bool)
	// Features says what Run can check of this importer.
	Features() Features
}

// Features tells Run what an importer and its harness let it check.
type Features struct {
	// NoDeliveries: the sink keeps nothing Delivered could report
	// (discard, a counter): only Import's answers are checked.
	NoDeliveries bool
	// BadContent, when set, is a body the importer judges bad: Import must
	// fail with a permanent error (ingest.IsPermanent) and deliver
	// nothing. Leave it nil for an importer that takes any bytes (dir,
	// discard).
	BadContent []byte
	// EmptyIsBad: an empty file is bad content for this importer (one that
	// requires a header line, say): the empty-file check expects a
	// permanent error and no delivery instead of a success.
	EmptyIsBad bool
}

// HarnessMaker makes a Harness for one check; register the sink's cleanup
// with t.Cleanup.
type HarnessMaker func(t *testing.T) Harness

// CancelWithin is how soon Import must return once its context is
// cancelled mid-body.
const CancelWithin = 5 * time.Second

// Bucket is the bucket of every File Run imports; keys start with Prefix
// (the base path), RelKey is the rest.
const (
	Bucket = "conformance-bucket"
	Prefix = "inbox/"
)

// Run runs the conformance checks, each as a subtest with a harness of its
// own.
func Run(t *testing.T, newHarness HarnessMaker) {
	t.Helper()
	checks := []struct {
		name string
		fn   func(t *testing.T, c *check)
	}{
		{"Bodies", testBodies},
		{"Empty", testEmpty},
		{"SameKeyTwice", testSameKeyTwice},
		{"Concurrent", testConcurrent},
		{"BrokenBody", testBrokenBody},
		{"Cancel", testCancel},
		{"CancelledBeforeStart", testCancelledBeforeStart},
		{"BadContent", testBadContent},
	}
	for _, tt := range checks {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newCheck(t, newHarness))
		})
	}
}

// check is one subtest's importer and harness.
type check struct {
	t    *testing.T
	h    Harness
	feat Features
	imp  ingest.Importer

	mu     sync.Mutex
	bodies []*guardedBody
}

func newCheck(t *testing.T, newHarness HarnessMaker) *check {
	t.Helper()
	h := newHarness(t)
	imp, err := h.New(t)
	if err != nil {
		t.Fatalf("Harness.New: %v", err)
	}
	if imp == nil {
		t.Fatal("Harness.New returned a nil importer")
	}
	c := &check{t: t, h: h, feat: h.Features(), imp: imp}
	// Cleanups run last-in first-out: the late-read check first, then Close.
	if closer, ok := imp.(io.Closer); ok {
		t.Cleanup(func() {
			if err := closer.Close(); err != nil {
				t.Errorf("Close after the last Import: %v", err)
			}
		})
	}
	t.Cleanup(c.checkLateReads)
	return c
}

// checkLateReads gives stray goroutines of the importer a moment, then
// fails the test for every body read after its Import returned.
func (c *check) checkLateReads() {
	time.Sleep(100 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.bodies {
		for _, v := range g.violations() {
			c.t.Errorf("no read after return: %s (the daemon drains and closes the body as soon as Import returns)", v)
		}
	}
}

// importFile calls Import with body behind a guard against late reads. It
// is safe for concurrent use.
func (c *check) importFile(ctx context.Context, f ingest.File, body io.Reader) error {
	g := &guardedBody{r: body}
	c.mu.Lock()
	c.bodies = append(c.bodies, g)
	c.mu.Unlock()
	err := c.imp.Import(ctx, f, g)
	g.importReturned()
	return err
}

// wantImported requires a success and, where the harness can tell, the
// body delivered byte for byte.
func (c *check) wantImported(t *testing.T, f ingest.File, err error, want []byte) {
	t.Helper()
	if err != nil {
		t.Errorf("Import(%q, %d bytes) = %v (permanent: %t), want nil", f.Key, len(want), err, ingest.IsPermanent(err))
		return
	}
	c.wantDelivered(t, f, want)
}

func (c *check) wantDelivered(t *testing.T, f ingest.File, want []byte) {
	t.Helper()
	if c.feat.NoDeliveries {
		return
	}
	got, ok := c.h.Delivered(t, f)
	switch {
	case !ok:
		t.Errorf("%q: Import succeeded but nothing was delivered", f.Key)
	case !bytes.Equal(got, want):
		t.Errorf("%q: delivered %d bytes (%s), want %d bytes (%s)", f.Key, len(got), digest(got), len(want), digest(want))
	}
}

// wantNothingDelivered requires that the sink holds nothing for f.
func (c *check) wantNothingDelivered(t *testing.T, f ingest.File, why string) {
	t.Helper()
	if c.feat.NoDeliveries {
		return
	}
	if got, ok := c.h.Delivered(t, f); ok {
		t.Errorf("%q: %s, yet the sink holds %d bytes for it", f.Key, why, len(got))
	}
}

// wantTransient requires an error that is not permanent.
func wantTransient(t *testing.T, f ingest.File, err error, what string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("Import(%q) with %s = nil, want a transient error", f.Key, what)
	case ingest.IsPermanent(err):
		t.Errorf("Import(%q) with %s = %v, a permanent error: the file would go to error/ although its content is not at fault; want a transient one", f.Key, what, err)
	}
}

// NewFile describes an object at Prefix+relKey with body's size and an
// ETag, version-free; its IdempotencyKey is stable for the same relKey and
// body, as the daemon's is for one version.
func NewFile(relKey string, body []byte) ingest.File {
	sum := md5.Sum(body)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	key := Prefix + relKey
	return ingest.File{
		Bucket: Bucket, Key: key, RelKey: relKey, Size: int64(len(body)), ETag: etag,
		LastModified:   time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		ContentType:    "text/csv",
		Metadata:       map[string]string{"source": "ingesttest"},
		IdempotencyKey: Bucket + "/" + key + "/" + etag,
	}
}

// randomBody returns n reproducible random bytes (newlines among them).
func randomBody(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func digest(b []byte) string {
	sum := md5.Sum(b)
	return "md5 " + hex.EncodeToString(sum[:])
}

func testBodies(t *testing.T, c *check) {
	allBytes := make([]byte, 256*4)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	tests := []struct {
		name string
		rel  string
		body []byte
		// reader wraps the body as the network delivers it.
		reader func(io.Reader) io.Reader
	}{
		{"small", "orders.csv", []byte("id,total\n1,10\n2,20\n"), nil},
		{"every byte value", "2026/03/binary.dat", allBytes, iotest.OneByteReader},
		{"no final newline", "deep/er/still/notes.txt", []byte("a line\nand a last one without"), nil},
		{"3 MiB and 7 bytes in short reads", "big/export.csv", randomBody(3<<20+7, 1), iotest.HalfReader},
		{"8 MiB", "big/larger.bin", randomBody(8<<20, 2), nil},
	}
	for _, tt := range tests {
		f := NewFile(tt.rel, tt.body)
		var r io.Reader = bytes.NewReader(tt.body)
		if tt.reader != nil {
			r = tt.reader(r)
		}
		err := c.importFile(t.Context(), f, r)
		c.wantImported(t, f, err, tt.body)
	}
}

func testEmpty(t *testing.T, c *check) {
	f := NewFile("empty.csv", nil)
	err := c.importFile(t.Context(), f, bytes.NewReader(nil))
	if c.feat.EmptyIsBad {
		if !ingest.IsPermanent(err) {
			t.Errorf("Import(empty file) = %v, want a permanent error (Features.EmptyIsBad)", err)
		}
		c.wantNothingDelivered(t, f, "the empty file was rejected")
		return
	}
	c.wantImported(t, f, err, nil)
}

// testSameKeyTwice: the same version again (a crash between import and
// move re-imports it, with the same IdempotencyKey), then a new version
// under the same key: each succeeds, and the sink holds the latest body.
func testSameKeyTwice(t *testing.T, c *check) {
	first := []byte("id,total\n1,10\n")
	f := NewFile("again/orders.csv", first)
	for i := range 2 {
		err := c.importFile(t.Context(), f, bytes.NewReader(first))
		if err != nil {
			t.Fatalf("import %d of the same version: %v (permanent: %t); delivery is at least once, a re-import must succeed", i+1, err, ingest.IsPermanent(err))
		}
	}
	c.wantDelivered(t, f, first)
	second := []byte("id,total\n1,10\n2,20\n3,30\n")
	f2 := NewFile("again/orders.csv", second)
	if f2.IdempotencyKey == f.IdempotencyKey {
		t.Fatal("two versions with one idempotency key")
	}
	err := c.importFile(t.Context(), f2, bytes.NewReader(second))
	c.wantImported(t, f2, err, second)
	// A shorter body after a longer one: nothing of the old one is left.
	third := []byte("id\n")
	f3 := NewFile("again/orders.csv", third)
	err = c.importFile(t.Context(), f3, bytes.NewReader(third))
	c.wantImported(t, f3, err, third)
}

// testConcurrent imports files at once, as the connection's workers do.
func testConcurrent(t *testing.T, c *check) {
	const n = 16
	files := make([]ingest.File, n)
	bodies := make([][]byte, n)
	errs := make([]error, n)
	for i := range n {
		bodies[i] = randomBody(32<<10+i*4099, uint64(100+i))
		files[i] = NewFile(fmt.Sprintf("concurrent/%d/file-%02d.csv", i%4, i), bodies[i])
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = c.importFile(t.Context(), files[i], iotest.HalfReader(bytes.NewReader(bodies[i]))) })
	}
	wg.Wait()
	for i := range n {
		c.wantImported(t, files[i], errs[i], bodies[i])
	}
}

// testBrokenBody: the read fails after 96 KiB of a 1 MiB file. The
// content is not at fault, so the error is transient, and a sink holding
// a truncated file would be imported data the customer never sent.
func testBrokenBody(t *testing.T, c *check) {
	body := randomBody(1<<20, 3)
	f := NewFile("broken/export.csv", body)
	err := c.importFile(t.Context(), f, &brokenBody{head: body[:96<<10]})
	wantTransient(t, f, err, "a body failing mid-read")
	c.wantNothingDelivered(t, f, "the body broke after 96 KiB")
	// The file comes back on the next run, whole.
	err = c.importFile(t.Context(), f, bytes.NewReader(body))
	c.wantImported(t, f, err, body)
}

// testCancel cancels the context while Import waits for the rest of the
// body (the daemon stopping past its shutdown grace, a reload).
func testCancel(t *testing.T, c *check) {
	body := randomBody(1<<20, 4)
	f := NewFile("cancel/export.csv", body)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sb := &stallingBody{ctx: ctx, head: body[:64<<10], headRead: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- c.importFile(ctx, f, sb) }()
	select {
	case <-sb.headRead:
	case err := <-done:
		t.Fatalf("Import returned %v before reading the first 64 KiB of a 1 MiB body", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Import did not read the first 64 KiB of the body within 30 s")
	}
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if d := time.Since(start); d > CancelWithin {
			t.Errorf("Import returned %s after its context was cancelled, want within %s", d, CancelWithin)
		}
		wantTransient(t, f, err, "its context cancelled mid-body")
	case <-time.After(CancelWithin + 25*time.Second):
		t.Fatalf("Import had not returned %s after its context was cancelled (want within %s)", CancelWithin+25*time.Second, CancelWithin)
	}
	c.wantNothingDelivered(t, f, "the import was cancelled mid-body")
}

// testCancelledBeforeStart: a context cancelled before Import; the body is
// readable. Whatever the importer does, it returns promptly, and an error
// is not permanent.
func testCancelledBeforeStart(t *testing.T, c *check) {
	body := []byte("id,total\n1,10\n")
	f := NewFile("cancelled/orders.csv", body)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	err := c.importFile(ctx, f, bytes.NewReader(body))
	if d := time.Since(start); d > CancelWithin {
		t.Errorf("Import with a cancelled context took %s, want within %s", d, CancelWithin)
	}
	if ingest.IsPermanent(err) {
		t.Errorf("Import with a cancelled context = %v, a permanent error; want nil or a transient one", err)
	}
	if err == nil {
		c.wantDelivered(t, f, body)
	}
}

func testBadContent(t *testing.T, c *check) {
	if c.feat.BadContent == nil {
		t.Skip("the importer takes any content (Features.BadContent not set)")
	}
	f := NewFile("bad/orders.csv", c.feat.BadContent)
	err := c.importFile(t.Context(), f, bytes.NewReader(c.feat.BadContent))
	if !ingest.IsPermanent(err) {
		t.Errorf("Import(bad content) = %v, want a permanent error (ingest.Permanent or ingest.Rejected)", err)
	}
	c.wantNothingDelivered(t, f, "it was rejected as bad content")
}

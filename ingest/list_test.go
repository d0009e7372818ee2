package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/s3connector/s3connector/connector"
)

// listAll runs l.List with a reader draining out and returns what it sent.
func listAll(ctx context.Context, t *testing.T, l *Lister) ([]File, ListStats, error) {
	t.Helper()
	out := make(chan File)
	type result struct {
		st  ListStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := l.List(ctx, out)
		close(out) // List itself never closes out
		done <- result{st, err}
	}()
	var files []File
	for f := range out {
		files = append(files, f)
	}
	r := <-done
	return files, r.st, r.err
}

func relKeys(files []File) []string {
	keys := make([]string, len(files))
	for i, f := range files {
		keys[i] = f.RelKey
	}
	slices.Sort(keys)
	return keys
}

// countingS3 counts ListObjectsV2 calls and can act before each one.
type countingS3 struct {
	s3.ListObjectsV2APIClient
	calls  atomic.Int32
	before func(call int32)
}

func (c *countingS3) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, opts ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	n := c.calls.Add(1)
	if c.before != nil {
		c.before(n)
	}
	return c.ListObjectsV2APIClient.ListObjectsV2(ctx, in, opts...)
}

func TestListManyPagesNested(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	objects := map[string][]byte{}
	want := map[string]int64{} // RelKey → size
	var wantBytes int64
	for i := range 350 {
		rel := fmt.Sprintf("%d/%02d/file-%03d.csv", 2020+i%3, i%7, i)
		if i%10 == 0 {
			rel = fmt.Sprintf("top-%03d.csv", i)
		}
		body := []byte(strings.Repeat("x", i%50))
		objects["inbox/"+rel] = body
		want[rel] = int64(len(body))
		wantBytes += int64(len(body))
	}
	minioPut(t, srv, bucket, objects)

	l := &Lister{S3: srv.Root(), Bucket: bucket, BasePath: "inbox/", PageSize: 100}
	files, st, err := listAll(t.Context(), t, l)
	if err != nil {
		t.Fatal(err)
	}
	// One base-level page (35 files and 3 folders), then each folder of
	// 105 files in 2 pages.
	if st != (ListStats{Pages: 7, Seen: 350, Listed: 350, Bytes: wantBytes}) {
		t.Errorf("stats = %+v, want 7 pages, 350 seen and listed, %d bytes", st, wantBytes)
	}
	seen := map[string]bool{}
	for _, f := range files {
		if seen[f.Key] {
			t.Errorf("%s listed twice", f.Key)
		}
		seen[f.Key] = true
		size, ok := want[f.RelKey]
		switch {
		case !ok:
			t.Errorf("unexpected RelKey %q (key %q)", f.RelKey, f.Key)
		case f.Key != "inbox/"+f.RelKey:
			t.Errorf("Key %q does not match RelKey %q", f.Key, f.RelKey)
		case f.Size != size:
			t.Errorf("%s: size %d, want %d", f.Key, f.Size, size)
		}
		if f.Bucket != bucket || f.LastModified.IsZero() ||
			!strings.HasPrefix(f.ETag, `"`) || !strings.HasSuffix(f.ETag, `"`) {
			t.Errorf("%s: bucket %q, modified %v, etag %q", f.Key, f.Bucket, f.LastModified, f.ETag)
		}
		if f.IdempotencyKey != IdempotencyKey(bucket, f.Key, f.ETag, "") {
			t.Errorf("%s: idempotency key %q", f.Key, f.IdempotencyKey)
		}
		if f.VersionID != "" || f.ContentType != "" || f.Metadata != nil {
			t.Errorf("%s: version, content type or metadata filled by the lister: %+v", f.Key, f)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("listed %d distinct files, want %d", len(seen), len(want))
	}
}

func TestListKeysExact(t *testing.T) {
	srv := needMinIO(t)
	// Keys that break when a listing is URL-encoded and not decoded, or
	// decoded twice ('+' as space, "%20" as space), or when it is not
	// URL-encoded at all (control characters).
	objects := map[string][]byte{
		"dir with space/a+b.csv": []byte("a,b\n1,2\n"),
		"données/été.csv":        []byte("é\n"),
		"日本語/ファイル.txt":           []byte("こんにちは"),
		"pct%20sign.csv":         []byte("%"),
		"q?&=#;.csv":             []byte("?"),
		// Control characters: a plain XML listing cannot carry them.
		"ctl\x01char.csv":   []byte("\x01"),
		"tab\tcr\rlf\n.csv": []byte("\t"),
		"empty.csv":         {},
	}
	for _, base := range []string{"", "in box/données/"} {
		t.Run("base="+base, func(t *testing.T) {
			bucket := minioBucket(t, srv)
			put := map[string][]byte{}
			for k, v := range objects {
				put[base+k] = v
			}
			minioPut(t, srv, bucket, put)

			l := &Lister{S3: srv.Root(), Bucket: bucket, BasePath: base}
			files, st, err := listAll(t.Context(), t, l)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int64{}
			for _, f := range files {
				if f.Key != base+f.RelKey {
					t.Errorf("Key %q, RelKey %q", f.Key, f.RelKey)
				}
				got[f.RelKey] = f.Size
			}
			for k, body := range objects {
				if size, ok := got[k]; !ok {
					t.Errorf("%q not listed; got %q", k, relKeys(files))
				} else if size != int64(len(body)) {
					t.Errorf("%q: size %d, want %d", k, size, len(body))
				}
			}
			// The base level, then the 3 folders.
			if len(got) != len(objects) || st.Listed != len(objects) || st.Pages != 4 {
				t.Errorf("listed %q, stats %+v; want exactly %d files in 4 pages", relKeys(files), st, len(objects))
			}
		})
	}
}

func TestListSkipsProcessedMarkersAndOutside(t *testing.T) {
	srv := needMinIO(t)
	tests := []struct {
		name, base string
		keys       []string
		want       []string // RelKeys
		seen       int      // keys read: not those under archive/ and error/
	}{
		{
			name: "prefix",
			base: "inbox/",
			keys: []string{
				"inbox/a.csv", "inbox/sub/", "inbox/sub/b.csv",
				"inbox/archive/", "inbox/archive/x.csv", "inbox/archive/2024/x.csv",
				"inbox/error/y.csv", "inbox/error/y.csv.error.json",
				// Only the base path's own archive/ and error/ are processed.
				"inbox/sub/archive/z.csv", "inbox/archived.csv", "inbox/errors.csv",
				// Outside the base path.
				// (Not the key "inbox" itself: MinIO refuses a key that is
				// also a folder.)
				"other/c.csv", "inboxes/d.csv", "top.csv", "archive/t.csv",
			},
			want: []string{"a.csv", "archived.csv", "errors.csv", "sub/archive/z.csv", "sub/b.csv"},
			seen: 6,
		},
		{
			name: "whole bucket",
			base: "",
			keys: []string{
				"a.csv", "sub/", "sub/b.csv", "archive/x.csv", "error/y.csv",
				"error/y.csv.error.json", "inbox/archive/z.csv",
			},
			want: []string{"a.csv", "inbox/archive/z.csv", "sub/b.csv"},
			seen: 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bucket := minioBucket(t, srv)
			objects := map[string][]byte{}
			for _, k := range tt.keys {
				body := []byte("content of " + k)
				if strings.HasSuffix(k, "/") {
					body = nil // folder markers are empty, as the console makes them
				}
				objects[k] = body
			}
			minioPut(t, srv, bucket, objects)

			l := &Lister{S3: srv.Root(), Bucket: bucket, BasePath: tt.base, PageSize: 3}
			files, st, err := listAll(t.Context(), t, l)
			if err != nil {
				t.Fatal(err)
			}
			if got := relKeys(files); !slices.Equal(got, tt.want) {
				t.Errorf("listed %q, want %q", got, tt.want)
			}
			if st.Seen != tt.seen || st.Listed != len(tt.want) || st.Filtered != 0 {
				t.Errorf("stats %+v, want %d seen, %d listed, 0 filtered", st, tt.seen, len(tt.want))
			}
		})
	}
}

func TestListFilter(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	minioPut(t, srv, bucket, map[string][]byte{
		"inbox/a.csv":          []byte("a"),
		"inbox/b.txt":          []byte("bb"),
		"inbox/2024/05/c.csv":  []byte("ccc"),
		"inbox/2024/05/d.json": []byte("dddd"),
		"inbox/tmp/e.csv":      []byte("eeeee"),
		"inbox/archive/f.csv":  []byte("f"),
	})
	all, _, err := listAll(t.Context(), t, &Lister{S3: srv.Root(), Bucket: bucket, BasePath: "inbox/"})
	if err != nil {
		t.Fatal(err)
	}
	oldest, newest := all[0].LastModified, all[0].LastModified
	for _, f := range all {
		if f.LastModified.Before(oldest) {
			oldest = f.LastModified
		}
		if f.LastModified.After(newest) {
			newest = f.LastModified
		}
	}
	at := func(t time.Time) func() time.Time { return func() time.Time { return t } }
	everything := []string{"2024/05/c.csv", "2024/05/d.json", "a.csv", "b.txt", "tmp/e.csv"}

	tests := []struct {
		name   string
		filter Filter
		want   []string
	}{
		{"no filter", Filter{}, everything},
		{"include **/*.csv", Filter{Include: []string{"**/*.csv"}}, []string{"2024/05/c.csv", "a.csv", "tmp/e.csv"}},
		{"include *.csv stays in the base folder", Filter{Include: []string{"*.csv"}}, []string{"a.csv"}},
		{"include and exclude", Filter{Include: []string{"**/*.csv"}, Exclude: []string{"tmp/**"}}, []string{"2024/05/c.csv", "a.csv"}},
		{"several includes", Filter{Include: []string{"*.txt", "**/*.json"}}, []string{"2024/05/d.json", "b.txt"}},
		{"alternatives", Filter{Include: []string{"**/*.{txt,json}"}}, []string{"2024/05/d.json", "b.txt"}},
		{"exclude only", Filter{Exclude: []string{"2024/**", "*.txt"}}, []string{"a.csv", "tmp/e.csv"}},
		{"exclude everything", Filter{Exclude: []string{"**"}}, nil},
		{"min age passed", Filter{MinAge: time.Hour, Now: at(newest.Add(2 * time.Hour))}, everything},
		{"min age not passed", Filter{MinAge: time.Hour, Now: at(newest.Add(30 * time.Minute))}, nil},
		{"modified after now", Filter{MinAge: time.Minute, Now: at(oldest.Add(-time.Hour))}, nil},
		{"no min age takes files from the future", Filter{Now: at(oldest.Add(-time.Hour))}, everything},
		{"min age and include", Filter{Include: []string{"**/*.csv"}, MinAge: time.Hour, Now: at(newest.Add(2 * time.Hour))}, []string{"2024/05/c.csv", "a.csv", "tmp/e.csv"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Lister{S3: srv.Root(), Bucket: bucket, BasePath: "inbox/", Filter: tt.filter}
			files, st, err := listAll(t.Context(), t, l)
			if err != nil {
				t.Fatal(err)
			}
			got := relKeys(files)
			if !slices.Equal(got, tt.want) {
				t.Errorf("listed %q, want %q", got, tt.want)
			}
			// archive/f.csv is never read.
			if st.Seen != 5 || st.Listed != len(tt.want) || st.Filtered != len(everything)-len(tt.want) {
				t.Errorf("stats %+v, want 5 seen, %d listed, %d filtered", st, len(tt.want), len(everything)-len(tt.want))
			}
		})
	}
}

func TestListMaxFiles(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	objects := map[string][]byte{}
	for i := range 49 {
		objects[fmt.Sprintf("in/f-%02d.csv", i)] = []byte("x")
		if i%2 == 0 {
			objects[fmt.Sprintf("in/f-%02d.tmp", i)] = []byte("x")
		}
	}
	// 74 keys in 15 pages of 5: f-00.csv f-00.tmp f-01.csv f-02.csv f-02.tmp |
	// f-03.csv f-04.csv f-04.tmp f-05.csv f-06.csv | f-06.tmp f-07.csv ...
	// (A count that is a multiple of the page size would let MinIO end with
	// an empty page, as S3 may.)
	minioPut(t, srv, bucket, objects)

	tests := []struct {
		name                       string
		filter                     Filter
		listed, pages              int
		seenAtMost, filteredAtMost int
	}{
		{"mid page", Filter{MaxFiles: 7}, 7, 2, 10, 0},
		{"page boundary", Filter{MaxFiles: 10}, 10, 2, 10, 0},
		{"filtered files do not count", Filter{MaxFiles: 8, Exclude: []string{"*.tmp"}}, 8, 3, 15, 5},
		{"more than there are", Filter{MaxFiles: 1000}, 74, 15, 74, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Lister{S3: srv.Root(), Bucket: bucket, BasePath: "in/", PageSize: 5, Filter: tt.filter}
			files, st, err := listAll(t.Context(), t, l)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != tt.listed || st.Listed != tt.listed || st.Pages != tt.pages || st.Seen > tt.seenAtMost {
				t.Errorf("got %d files, stats %+v; want %d listed in %d pages, at most %d seen", len(files), st, tt.listed, tt.pages, tt.seenAtMost)
			}
			if st.Filtered > tt.filteredAtMost {
				t.Errorf("filtered %d, want at most %d", st.Filtered, tt.filteredAtMost)
			}
		})
	}
}

// seed100 fills a bucket with 100 small files under "in/".
func seed100(t *testing.T) string {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	objects := map[string][]byte{}
	for i := range 100 {
		objects[fmt.Sprintf("in/%03d.csv", i)] = []byte("x")
	}
	minioPut(t, srv, bucket, objects)
	return bucket
}

type listResult struct {
	st  ListStats
	err error
}

func startList(ctx context.Context, l *Lister, out chan<- File) <-chan listResult {
	done := make(chan listResult, 1)
	go func() {
		st, err := l.List(ctx, out)
		done <- listResult{st, err}
	}()
	return done
}

// TestListStreams shows the listing is a stream paced by its consumer: the
// first file arrives while List runs, List cannot finish while nobody reads
// (an unbuffered out has no room), and it fetches the next page only when
// the consumer has taken the previous one.
func TestListStreams(t *testing.T) {
	srv := needMinIO(t)
	bucket := seed100(t)
	client := &countingS3{ListObjectsV2APIClient: srv.Root()}
	l := &Lister{S3: client, Bucket: bucket, BasePath: "in/", PageSize: 10}
	out := make(chan File)
	done := startList(t.Context(), l, out)

	first := <-out
	if first.RelKey != "000.csv" {
		t.Errorf("first file %q, want 000.csv", first.RelKey)
	}
	// 99 files are still to be sent and nobody reads: List cannot have
	// returned unless it failed.
	select {
	case r := <-done:
		t.Fatalf("List returned after one file was read: %+v, %v", r.st, r.err)
	default:
	}
	// The other 9 files of page 1 are not taken yet, so page 2 is not fetched.
	if n := client.calls.Load(); n != 1 {
		t.Errorf("%d pages requested after the first file was read, want 1", n)
	}
	got := []File{first}
	for len(got) < 10 {
		got = append(got, <-out)
	}
	// Page 2 may be in flight now, but not page 3.
	if n := client.calls.Load(); n > 2 {
		t.Errorf("%d pages requested after page 1 was read, want at most 2", n)
	}
	for len(got) < 100 {
		select {
		case f := <-out:
			got = append(got, f)
		case r := <-done:
			t.Fatalf("List returned after %d files: %+v, %v", len(got), r.st, r.err)
		}
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	// S3 may end a listing whose size is a multiple of the page size with an
	// empty page (MinIO does).
	if calls := client.calls.Load(); r.st.Pages < 10 || r.st.Pages > 11 || r.st.Listed != 100 || int(calls) != r.st.Pages {
		t.Errorf("stats %+v, %d requests; want 10 pages (11 with an empty last one), 100 files", r.st, calls)
	}
	for i, f := range got {
		if want := fmt.Sprintf("%03d.csv", i); f.RelKey != want {
			t.Fatalf("file %d is %q, want %q (S3 lists in key order)", i, f.RelKey, want)
		}
	}
}

func TestListCancel(t *testing.T) {
	srv := needMinIO(t)
	bucket := seed100(t)

	t.Run("while blocked on a slow consumer", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		l := &Lister{S3: srv.Root(), Bucket: bucket, BasePath: "in/", PageSize: 10}
		out := make(chan File)
		done := startList(ctx, l, out)
		for range 3 {
			<-out
		}
		cancel()
		// Nobody reads any more: List must return on its own.
		r := <-done
		if !errors.Is(r.err, context.Canceled) || r.err != ctx.Err() {
			t.Errorf("List returned %v, want ctx.Err() (%v)", r.err, ctx.Err())
		}
		if r.st.Listed != 3 {
			t.Errorf("stats %+v, want 3 listed", r.st)
		}
		select {
		case f := <-out:
			t.Errorf("%s sent after List returned", f.Key)
		default:
		}
	})

	t.Run("during a page request", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		client := &countingS3{ListObjectsV2APIClient: srv.Root(), before: func(call int32) {
			if call == 2 {
				cancel()
			}
		}}
		l := &Lister{S3: client, Bucket: bucket, BasePath: "in/", PageSize: 10}
		out := make(chan File, 100) // room for everything: only ctx can stop List
		st, err := l.List(ctx, out)
		close(out)
		if err != ctx.Err() || !errors.Is(err, context.Canceled) {
			t.Errorf("List returned %v, want ctx.Err() (%v)", err, ctx.Err())
		}
		if st.Pages != 1 || st.Listed != 10 || len(out) != 10 || client.calls.Load() != 2 {
			t.Errorf("stats %+v, %d sent, %d requests; want page 1 only", st, len(out), client.calls.Load())
		}
	})

	t.Run("before the first page", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		client := &countingS3{ListObjectsV2APIClient: srv.Root()}
		l := &Lister{S3: client, Bucket: bucket, BasePath: "in/"}
		out := make(chan File, 100)
		st, err := l.List(ctx, out)
		if !errors.Is(err, context.Canceled) || st != (ListStats{}) || len(out) != 0 || client.calls.Load() != 0 {
			t.Errorf("List = %+v, %v with %d sent, %d requests; want nothing done", st, err, len(out), client.calls.Load())
		}
	})
}

func TestListErrors(t *testing.T) {
	t.Run("missing bucket", func(t *testing.T) {
		srv := needMinIO(t)
		l := &Lister{S3: srv.Root(), Bucket: "s3connector-no-such-bucket", BasePath: "in/"}
		st, err := l.List(t.Context(), make(chan File, 1))
		if !errors.Is(err, connector.ErrNotFound) || !strings.Contains(err.Error(), "s3://s3connector-no-such-bucket/in/") {
			t.Errorf("List = %+v, %v; want not found naming s3://s3connector-no-such-bucket/in/", st, err)
		}
	})
	// The rest is refused before any request, so needs no server.
	tests := []struct {
		name string
		l    Lister
		want string
	}{
		{"base path without slash", Lister{Bucket: "b", BasePath: "inbox"}, `base path must be empty or end in "/"`},
		{"bad include", Lister{Bucket: "b", Filter: Filter{Include: []string{"[a-"}}}, `include pattern "[a-"`},
		{"bad exclude", Lister{Bucket: "b", Filter: Filter{Exclude: []string{"ok/**", "{a,b"}}}, `exclude pattern "{a,b"`},
		{"negative max files", Lister{Bucket: "b", Filter: Filter{MaxFiles: -1}}, "max files must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.l.List(t.Context(), make(chan File, 1))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("List error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestNewFilter(t *testing.T) {
	f, err := NewFilter([]string{"**/*.csv", "data/*.{json,ndjson}"}, []string{"tmp/**"}, time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if f.MinAge != time.Minute || f.MaxFiles != 10 || len(f.Include) != 2 || len(f.Exclude) != 1 {
		t.Errorf("NewFilter = %+v", f)
	}
	_, err = NewFilter([]string{"ok/*", "bad[/*"}, []string{"also{bad"}, 0, 0)
	for _, want := range []string{`include pattern "bad[/*"`, `exclude pattern "also{bad"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewFilter error %v, want it to name %s", err, want)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	const b, k, e = "bucket", "inbox/a.csv", `"9b2cf535f27731c974343645a3985328"`
	base := IdempotencyKey(b, k, e, "")
	// Pinned (sha256 of "bucket\x00inbox/a.csv\x00etag:9b2c…", first 16
	// bytes): changing the derivation would make every sink re-import.
	if want := "aac3493747d000645c14165ca781aa52"; base != want {
		t.Fatalf("IdempotencyKey = %q, want %q", base, want)
	}
	if again := IdempotencyKey(b, k, e, ""); again != base {
		t.Errorf("not stable: %q then %q", base, again)
	}
	if bare := IdempotencyKey(b, k, strings.Trim(e, `"`), ""); bare != base {
		t.Errorf("quoted and bare ETag differ: %q, %q", base, bare)
	}
	v1 := IdempotencyKey(b, k, e, "v1")
	if other := IdempotencyKey(b, k, `"other"`, "v1"); other != v1 {
		t.Errorf("a version id identifies the object version by itself: %q, %q", v1, other)
	}
	differ := map[string]string{
		"etag":            IdempotencyKey(b, k, `"0b2cf535f27731c974343645a3985328"`, ""),
		"key":             IdempotencyKey(b, "inbox/b.csv", e, ""),
		"bucket":          IdempotencyKey("bucket2", k, e, ""),
		"version":         v1,
		"other version":   IdempotencyKey(b, k, e, "v2"),
		"field split":     IdempotencyKey(b+"\x00inbox", "a.csv", e, ""),
		"etag as version": IdempotencyKey(b, k, "", strings.Trim(e, `"`)),
	}
	seen := map[string]string{base: "base"}
	for name, got := range differ {
		if prev, dup := seen[got]; dup {
			t.Errorf("%s gives the same key as %s: %q", name, prev, got)
		}
		seen[got] = name
	}
}

// countLists returns a copy of c that counts its ListObjectsV2 requests in
// n: a middleware after the retryer, so every attempt sent counts.
func countLists(c *s3.Client, n *atomic.Int64) *s3.Client {
	o := c.Options()
	o.APIOptions = append(slices.Clone(o.APIOptions), func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("countListRequests",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if awsmiddleware.GetOperationName(ctx) == "ListObjectsV2" {
					n.Add(1)
				}
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	})
	return s3.New(o)
}

// TestListSkipsHistory shows a run's listing never reads archive/ and
// error/: with 2,500 processed files in them it sends the same LIST
// requests as with none, and lists each inbox file once. The inbox's names
// sit next to archive/ and error/ in key order or need their CommonPrefix
// URL-decoded. (The keys "archive" and "error" themselves are covered by
// connector's TestInboxListingBareFolderNames: MinIO does not list the keys
// under a key that is also an object, so they would hide the history.)
func TestListSkipsHistory(t *testing.T) {
	srv := needMinIO(t)
	inbox := []string{
		"archive0", "archive.csv", "archive~", "archives/x", "errors/x", "error.csv",
		"a/b/c.csv", "dir with space+plus/f 1+2.csv", "données/été.csv", "ctl\x01dir/x.csv",
	}
	for _, base := range []string{"inbox/", ""} {
		t.Run("base="+base, func(t *testing.T) {
			bucket := minioBucket(t, srv)
			objects := map[string][]byte{base + "a/": nil, base + "archives/": nil}
			for _, k := range inbox {
				objects[base+k] = []byte("content of " + k)
			}
			minioPut(t, srv, bucket, objects)
			want := slices.Sorted(slices.Values(inbox))

			var requests atomic.Int64
			l := &Lister{S3: countLists(srv.Root(), &requests), Bucket: bucket, BasePath: base, PageSize: 1000}
			list := func() (int64, ListStats) {
				t.Helper()
				requests.Store(0)
				files, st, err := listAll(t.Context(), t, l)
				if err != nil {
					t.Fatal(err)
				}
				if got := relKeys(files); !slices.Equal(got, want) {
					t.Errorf("listed %q, want each of %q once", got, want)
				}
				return requests.Load(), st
			}
			freshRequests, freshStats := list()

			history := map[string][]byte{base + "archive/": nil, base + "error/": nil}
			for i := range 1500 {
				history[fmt.Sprintf("%sarchive/2026/%02d/f-%04d.csv", base, i%12, i)] = []byte("x")
			}
			for i := range 500 {
				k := fmt.Sprintf("%serror/bad-%04d.csv", base, i)
				history[k], history[k+".error.json"] = []byte("x"), []byte("{}")
			}
			minioPut(t, srv, bucket, history)
			agedRequests, agedStats := list()

			// The base level, then a/, archives/, ctl\x01dir/,
			// dir with space+plus/, données/ and errors/.
			if freshRequests != 7 || agedRequests != freshRequests || agedStats != freshStats || int64(agedStats.Pages) != agedRequests {
				t.Errorf("empty archive: %d LIST requests, stats %+v; 2,500 archived: %d, %+v; want 7 requests and the same stats both times",
					freshRequests, freshStats, agedRequests, agedStats)
			}
		})
	}
}

// TestListStreamsNested: with every file in subfolders, the first file is
// sent as soon as the base level and the first subfolder's first page have
// arrived, and nothing more is requested while nobody reads.
func TestListStreamsNested(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	objects := map[string][]byte{}
	for i := range 30 {
		objects[fmt.Sprintf("in/%c/%02d.csv", 'a'+i%3, i)] = []byte("x")
	}
	minioPut(t, srv, bucket, objects)
	client := &countingS3{ListObjectsV2APIClient: srv.Root()}
	l := &Lister{S3: client, Bucket: bucket, BasePath: "in/", PageSize: 4}
	out := make(chan File)
	done := startList(t.Context(), l, out)
	if first := <-out; first.RelKey != "a/00.csv" {
		t.Errorf("first file %q, want a/00.csv", first.RelKey)
	}
	if n := client.calls.Load(); n != 2 {
		t.Errorf("%d pages requested when the first file was read, want 2", n)
	}
	got := 1
	for range out {
		if got++; got == 30 {
			break
		}
	}
	r := <-done
	// 1 base-level page (a/ b/ c/), then 3 pages of 4, 4, 2 per folder.
	if r.err != nil || r.st.Listed != 30 || r.st.Pages != 10 || client.calls.Load() != 10 {
		t.Errorf("List = %+v, %v after %d requests; want 30 files in 10 pages", r.st, r.err, client.calls.Load())
	}
}

// TestListSkip shows the Skip hook: declined files are not sent, are counted,
// and leave room under MaxFiles for the files after them; filtered files
// never reach it; its error ends the listing.
func TestListSkip(t *testing.T) {
	srv := needMinIO(t)
	bucket := minioBucket(t, srv)
	objects := map[string][]byte{}
	for i := range 20 {
		objects[fmt.Sprintf("in/f-%02d.csv", i)] = []byte("xx")
		objects[fmt.Sprintf("in/sub/g-%02d.csv", i)] = []byte("xx")
	}
	objects["in/f.tmp"] = []byte("x")
	minioPut(t, srv, bucket, objects)

	type ctxKey struct{}
	ctx := context.WithValue(t.Context(), ctxKey{}, "run")
	boom := errors.New("attempt store unavailable")
	var asked []string
	tests := []struct {
		name     string
		maxFiles int
		skip     func(f File) (bool, error)
		listed   []string // RelKeys
		skipped  int
		asked    int
		err      error
	}{
		{
			name:     "stuck files do not starve the others",
			maxFiles: 5,
			skip:     func(f File) (bool, error) { return f.RelKey < "f-05.csv", nil },
			listed:   []string{"f-05.csv", "f-06.csv", "f-07.csv", "f-08.csv", "f-09.csv"},
			skipped:  5, asked: 10,
		},
		{
			name:    "skipped in the base level and a subfolder",
			skip:    func(f File) (bool, error) { return !strings.HasSuffix(f.RelKey, "-19.csv"), nil },
			listed:  []string{"f-19.csv", "sub/g-19.csv"},
			skipped: 38, asked: 40,
		},
		{
			name: "error",
			skip: func(f File) (bool, error) {
				if f.RelKey == "f-03.csv" {
					return false, boom
				}
				return false, nil
			},
			listed:   []string{"f-00.csv", "f-01.csv", "f-02.csv"},
			asked:    4,
			err:      boom,
			maxFiles: 10,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked = nil
			l := &Lister{
				S3: srv.Root(), Bucket: bucket, BasePath: "in/", PageSize: 7,
				Filter: Filter{Exclude: []string{"*.tmp"}, MaxFiles: tt.maxFiles},
				Skip: func(c context.Context, f File) (bool, error) {
					if c.Value(ctxKey{}) != "run" {
						t.Error("Skip called without the listing's context")
					}
					if f.Key != "in/"+f.RelKey || f.ETag == "" || f.IdempotencyKey == "" {
						t.Errorf("Skip got an incomplete file: %+v", f)
					}
					asked = append(asked, f.RelKey)
					return tt.skip(f)
				},
			}
			files, st, err := listAll(ctx, t, l)
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Errorf("List error %v, want %v", err, tt.err)
			}
			if got := relKeys(files); !slices.Equal(got, tt.listed) {
				t.Errorf("listed %q, want %q", got, tt.listed)
			}
			if st.Skipped != tt.skipped || st.Listed != len(tt.listed) || len(asked) != tt.asked || st.Bytes != int64(2*len(tt.listed)) {
				t.Errorf("stats %+v, Skip asked about %d files; want %d skipped, %d listed, %d asked", st, len(asked), tt.skipped, len(tt.listed), tt.asked)
			}
			if slices.Contains(asked, "f.tmp") {
				t.Error("Skip asked about a filtered file")
			}
		})
	}
}

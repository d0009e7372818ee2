package connector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/s3connector/s3connector/connector/miniotest"
)

// historyInbox is an inbox whose names sit next to archive/ and error/ in
// key order (before and after them), or would be lost if a CommonPrefix
// were not URL-decoded (a space, '+', unicode, a control character XML
// cannot carry). The keys "archive" and "error" themselves are in
// TestInboxListingBareFolderNames: MinIO stores objects as directories and
// does not list the keys under a key that is also an object, so they would
// hide the history this test needs.
var historyInbox = []string{
	"archive0", "archive.csv", "archive~", "archives/x", "errors/x", "error.csv",
	"a/b/c.csv", "dir with space+plus/f 1+2.csv", "données/été.csv", "ctl\x01dir/x.csv",
}

// historyKeys are 2,500 processed files under archive/ and error/, nested
// as a move names them, plus the folders' own markers.
func historyKeys(base string) []string {
	keys := []string{base + ArchiveFolder, base + ErrorFolder}
	for i := range 1500 {
		keys = append(keys, fmt.Sprintf("%s%s2026/%02d/file-%04d.csv", base, ArchiveFolder, i%12, i))
	}
	for i := range 500 {
		k := fmt.Sprintf("%s%sbad-%04d.csv", base, ErrorFolder, i)
		keys = append(keys, k, k+".error.json")
	}
	return keys
}

// putKeys writes a small object under every key, 32 at a time.
func putKeys(t *testing.T, srv *miniotest.Server, bucket string, keys []string) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, 32)
	for _, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var body []byte
			if !strings.HasSuffix(k, "/") { // folder markers are empty
				body = []byte("content of " + k)
			}
			if err := srv.Put(context.Background(), bucket, k, body); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
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

// walkKeys walks l and returns the keys visited, in order.
func walkKeys(t *testing.T, l InboxListing) ([]string, InboxStats) {
	t.Helper()
	var keys []string
	st, err := l.Walk(t.Context(), func(o InboxObject) error {
		keys = append(keys, o.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys, st
}

// TestInboxListingSkipsHistory shows the listing never reads archive/ and
// error/: 2,500 processed files cost no LIST request, at S3's page size,
// for the listing and for the validation's count alike.
func TestInboxListingSkipsHistory(t *testing.T) {
	srv := needMinIO(t)
	for i, base := range []string{"in box/", ""} {
		t.Run(fmt.Sprintf("base=%q", base), func(t *testing.T) {
			bucket := fmt.Sprintf("listing-history-%d", i)
			if err := srv.CreateBucket(t.Context(), bucket); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, k := range historyInbox {
				want = append(want, base+k)
			}
			// Folder markers are not files.
			markers := []string{base + "a/", base + "a/b/", base + "archives/"}
			if base != "" {
				markers = append(markers, base)
			}
			putKeys(t, srv, bucket, append(slices.Clone(want), markers...))
			slices.Sort(want)

			var requests atomic.Int64
			l := InboxListing{S3: countLists(srv.Root(), &requests), Bucket: bucket, BasePath: base, PageSize: 1000}
			user, secret := newUser(t, srv, bucketPolicy(bucket, "s3:GetObject"))
			conn, err := New(platformConfig(user, secret), platformPrincipal,
				minioConnection(srv.Endpoint, fmt.Sprintf("history-%d", i), bucket, base),
				WithHooks(Hooks{S3Request: func(op string, _ error) {
					if op == "ListObjectsV2" {
						requests.Add(1)
					}
				}}))
			if err != nil {
				t.Fatal(err)
			}

			type result struct {
				keys            []string
				st              InboxStats
				requests        int64
				count           int
				countRequests   int64
				smallPageReqs   int64
				smallPageListed []string
			}
			measure := func() result {
				var r result
				requests.Store(0)
				r.keys, r.st = walkKeys(t, l)
				r.requests = requests.Swap(0)
				if r.count, _, err = conn.CountWaiting(t.Context(), 0); err != nil {
					t.Fatal(err)
				}
				r.countRequests = requests.Swap(0)
				small := l
				small.PageSize = 2
				r.smallPageListed, _ = walkKeys(t, small)
				r.smallPageReqs = requests.Swap(0)
				return r
			}
			fresh := measure()
			history := historyKeys(base)
			// The folders with one file each, then with all 2,500.
			putKeys(t, srv, bucket, []string{history[0], history[1], history[2], history[len(history)-1]})
			folders := measure()
			putKeys(t, srv, bucket, history)
			// The history is there for whoever reads it.
			archived, err := srv.Keys(t.Context(), bucket, base+ArchiveFolder)
			if err != nil {
				t.Fatal(err)
			}
			errored, err := srv.Keys(t.Context(), bucket, base+ErrorFolder)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(archived) + len(errored); n != len(history) {
				t.Fatalf("%d keys under archive/ and error/, want %d", n, len(history))
			}
			aged := measure()

			for name, r := range map[string]result{"empty archive": fresh, "one file each": folders, "2,500 archived": aged} {
				for _, keys := range [][]string{r.keys, r.smallPageListed} {
					got := slices.Sorted(slices.Values(keys))
					if !slices.Equal(got, want) {
						t.Errorf("%s: listed %q, want each of %q once", name, got, want)
					}
				}
				if r.st.Pages != int(r.requests) || r.st.Seen != len(want)+len(markers) {
					t.Errorf("%s: stats %+v after %d requests; want a page per request, %d keys seen", name, r.st, r.requests, len(want)+len(markers))
				}
				if r.count != len(want) {
					t.Errorf("%s: CountWaiting = %d, want %d", name, r.count, len(want))
				}
			}
			// One base-level page, one listing per non-empty subfolder:
			// a/, archives/, ctl\x01dir/, dir with space+plus/, données/, errors/.
			if fresh.requests != 7 || aged.requests != fresh.requests {
				t.Errorf("LIST requests: %d with an empty archive, %d with 2,500 archived; want 7 both times", fresh.requests, aged.requests)
			}
			if aged.countRequests != fresh.countRequests || aged.countRequests != fresh.requests {
				t.Errorf("CountWaiting's LIST requests: %d with an empty archive, %d with 2,500 archived; want %d", fresh.countRequests, aged.countRequests, fresh.requests)
			}
			// At two keys a page, archive/ and error/ are two more entries of
			// the base level (MinIO then cuts some pages short, a page more
			// each), but how many files they hold costs nothing.
			if aged.smallPageReqs != folders.smallPageReqs {
				t.Errorf("LIST requests at 2 keys a page: %d with one file in archive/ and error/ each, %d with 2,500 archived", folders.smallPageReqs, aged.smallPageReqs)
			}
		})
	}
}

// TestInboxListingBareFolderNames: the keys "archive" and "error" are
// files like any other (MinIO cannot hold them next to an archive/ with
// files in it; see historyInbox), and the folders' markers are not.
func TestInboxListingBareFolderNames(t *testing.T) {
	srv := needMinIO(t)
	for i, base := range []string{"in/", ""} {
		t.Run(fmt.Sprintf("base=%q", base), func(t *testing.T) {
			bucket := fmt.Sprintf("listing-bare-%d", i)
			if err := srv.CreateBucket(t.Context(), bucket); err != nil {
				t.Fatal(err)
			}
			putKeys(t, srv, bucket, []string{base + "archive", base + "error", base + ArchiveFolder, base + ErrorFolder})
			var requests atomic.Int64
			keys, st := walkKeys(t, InboxListing{S3: countLists(srv.Root(), &requests), Bucket: bucket, BasePath: base})
			if want := []string{base + "archive", base + "error"}; !slices.Equal(keys, want) || st.Pages != 1 || requests.Load() != 1 {
				t.Errorf("listed %q with stats %+v, %d requests; want %q in one page", keys, st, requests.Load(), want)
			}
		})
	}
}

// TestInboxListingStops shows a visit error ends the walk with that error
// (ErrStopWalk with none) and no further request, and a done ctx wins.
func TestInboxListingStops(t *testing.T) {
	srv := needMinIO(t)
	const bucket = "listing-stops"
	if err := srv.CreateBucket(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
	putKeys(t, srv, bucket, []string{"in/a", "in/b", "in/sub/c", "in/sub/d", "in/sub/e", "in/z"})
	var requests atomic.Int64
	l := InboxListing{S3: countLists(srv.Root(), &requests), Bucket: bucket, BasePath: "in/", PageSize: 2}
	boom := errors.New("boom")
	tests := []struct {
		name     string
		stopAt   string
		err      error
		want     error
		requests int64 // when it stops: [a b] | [sub/ z] | [c d] ...
	}{
		{"stop in the base level", "in/b", ErrStopWalk, nil, 1},
		{"error in a subfolder", "in/sub/d", boom, boom, 3},
		{"no stop", "", nil, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requests.Store(0)
			st, err := l.Walk(t.Context(), func(o InboxObject) error {
				if o.Key == tt.stopAt {
					return tt.err
				}
				return nil
			})
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Walk error %v, want %v", err, tt.want)
			}
			if (tt.stopAt != "" && requests.Load() != tt.requests) || st.Pages != int(requests.Load()) {
				t.Errorf("%d requests, stats %+v; want %d", requests.Load(), st, tt.requests)
			}
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		requests.Store(0)
		var visited int
		_, err := l.Walk(ctx, func(InboxObject) error {
			visited++
			cancel()
			return nil
		})
		if err != ctx.Err() || !errors.Is(err, context.Canceled) || requests.Load() != 1 || visited != 2 {
			t.Errorf("Walk = %v after %d requests, %d visits; want ctx.Err() after the first page", err, requests.Load(), visited)
		}
	})
	t.Run("base path without slash", func(t *testing.T) {
		_, err := InboxListing{Bucket: "b", BasePath: "in"}.Walk(t.Context(), nil)
		if err == nil || !strings.Contains(err.Error(), `base path must be empty or end in "/"`) {
			t.Errorf("Walk error %v", err)
		}
	})
}

// flatS3 plays a server that ignores Prefix and Delimiter, answering every
// request with the whole bucket as one page: no server here behaves so, and
// the prefix guard (I8) and the archive/ and error/ skip are only
// client-side in that case. It records the prefixes it was asked for.
type flatS3 struct {
	keys     []string
	prefixes []string // CommonPrefixes to answer, URL-encoded
	asked    []string
}

func (f *flatS3) ListObjectsV2(_ context.Context, in *s3.ListObjectsV2Input, _ ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	f.asked = append(f.asked, aws.ToString(in.Prefix))
	out := &s3.ListObjectsV2Output{EncodingType: types.EncodingTypeUrl}
	for _, k := range f.keys {
		out.Contents = append(out.Contents, types.Object{Key: aws.String(k), ETag: aws.String(`"e"`)})
	}
	if aws.ToString(in.Delimiter) != "" {
		for _, p := range f.prefixes {
			out.CommonPrefixes = append(out.CommonPrefixes, types.CommonPrefix{Prefix: aws.String(p)})
		}
	}
	return out, nil
}

func TestInboxListingGuards(t *testing.T) {
	f := &flatS3{
		keys: []string{
			"in/a.csv", "in/sub/b.csv", "in/sub/", "in/archive/x.csv", "in/error/y.csv",
			"other/c.csv", "in", "inbox/d.csv", "archive/e.csv",
		},
		// Outside the base path, the base path itself, and archive/ (encoded).
		prefixes: []string{"other/", "in/", "in%2Farchive%2F", "in/error/"},
	}
	keys, st := walkKeys(t, InboxListing{S3: f, Bucket: "b", BasePath: "in/"})
	if want := []string{"in/a.csv", "in/sub/b.csv"}; !slices.Equal(keys, want) {
		t.Errorf("visited %q, want %q", keys, want)
	}
	if want := []string{"in/"}; !slices.Equal(f.asked, want) || st.Pages != 1 || st.Seen != len(f.keys) {
		t.Errorf("asked for %q, stats %+v; want only the base level, every key seen", f.asked, st)
	}
}

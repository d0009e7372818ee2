package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/connector/miniotest"
)

// million is the state of one invocation of the million-key case.
type million struct {
	st       millionSettings
	srv      *keptMinIO
	out      io.Writer
	admin    *s3.Client // root: seeding, emptying, checking
	requests *serverRequests

	patternOnce sync.Once
	pattern     []byte
}

// millionKey is the inbox key of object i.
func millionKey(i int) string { return fmt.Sprintf("%s%s%07d.bin", basePath, millionFolder, i) }

// keyIndex is the object number of a key relative to folder (the inbox,
// or its archive/ folder, whose names are <stem>.<time>-<tag>.bin), or -1
// for a key the case did not make.
func keyIndex(rel string) int {
	stem, _, _ := strings.Cut(rel, ".")
	if len(stem) != 7 {
		return -1
	}
	i, err := strconv.Atoi(stem)
	if err != nil || i < 0 {
		return -1
	}
	return i
}

// body is object i's content: the shared random pattern from an offset of
// its own (MinIO neither compresses nor deduplicates by default).
func (m *million) body(i int) *patternReader {
	m.patternOnce.Do(func() {
		m.pattern = make([]byte, 1<<20)
		fill(rand.New(rand.NewChaCha8([32]byte{'s', '3', 'c', 'm'})), m.pattern)
	})
	return &patternReader{pattern: m.pattern, start: int64(i) * int64(m.st.size), size: int64(m.st.size)}
}

func (m *million) createBucket(ctx context.Context, bucket string) error {
	_, err := m.admin.CreateBucket(ctx, &s3.CreateBucketInput{
		Bucket:                    aws.String(bucket),
		CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(miniotest.Region)},
	})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode() == "BucketAlreadyOwnedByYou" || apiErr.ErrorCode() == "BucketAlreadyExists") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return nil
}

// bitset marks object numbers.
type bitset []uint64

func newBitset(n int) bitset          { return make(bitset, (n+63)/64) }
func (b bitset) has(i int) bool       { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) set(i int)            { b[i/64] |= 1 << (i % 64) }
func (b bitset) inRange(i int) bool   { return i >= 0 && i < len(b)*64 }
func (b bitset) within(i, n int) bool { return b.inRange(i) && i < n }

// prepare makes the bucket's inbox hold exactly objects 0..n-1 and nothing
// else under the base path: what a kept directory already holds of them
// stays, everything else (archive/, error/, other keys) is deleted, MinIO's
// trash purged, and the missing objects are put with -seed-parallel
// concurrent PutObject calls. It returns how many it put and how long that
// took.
func (m *million) prepare(ctx context.Context, bucket string, n int) (int, time.Duration, error) {
	t0 := time.Now()
	have := newBitset(n)
	present, removed, err := m.sweep(ctx, bucket, func(key string) bool {
		rel, ok := strings.CutPrefix(key, basePath+millionFolder)
		if !ok {
			return false
		}
		i := keyIndex(rel)
		if i < 0 || i >= n || millionKey(i) != key {
			return false
		}
		have.set(i)
		return true
	})
	if err != nil {
		return 0, 0, err
	}
	if err := m.srv.purgeTrash(); err != nil {
		return 0, 0, err
	}
	if present > 0 || removed > 0 {
		fmt.Fprintf(m.out, "%s: kept %d inbox objects, deleted %d others in %s\n", bucket, present, removed, time.Since(t0).Round(time.Millisecond))
	}
	missing := make([]int32, 0, n-present)
	for i := range n {
		if !have.has(i) {
			missing = append(missing, int32(i))
		}
	}
	if len(missing) == 0 {
		return 0, 0, nil
	}
	took, err := m.seed(ctx, bucket, missing)
	return len(missing), took, err
}

// sweep lists everything under the base path and deletes every key keep
// declines, in DeleteObjects batches of 1,000 sent by 8 goroutines while
// the listing goes on. It returns the keys kept and deleted.
func (m *million) sweep(ctx context.Context, bucket string, keep func(string) bool) (kept, deleted int, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan []types.ObjectIdentifier, 8)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		delErr  error
		deleteN atomic.Int64
	)
	for range 8 {
		wg.Go(func() {
			for ids := range batches {
				out, err := m.admin.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &bucket, Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
				if err == nil && len(out.Errors) > 0 {
					err = fmt.Errorf("%d keys not deleted, first %s: %s", len(out.Errors), aws.ToString(out.Errors[0].Key), aws.ToString(out.Errors[0].Message))
				}
				if err != nil {
					mu.Lock()
					delErr = errors.Join(delErr, fmt.Errorf("empty %s: %w", bucket, err))
					mu.Unlock()
					cancel()
					continue
				}
				deleteN.Add(int64(len(ids)))
			}
		})
	}
	var batch []types.ObjectIdentifier
	var listErr error
	p := s3.NewListObjectsV2Paginator(m.admin, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(basePath)})
	for p.HasMorePages() && listErr == nil {
		page, err := p.NextPage(ctx)
		if err != nil {
			listErr = fmt.Errorf("list %s: %w", bucket, err)
			break
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			if keep(k) {
				kept++
				continue
			}
			batch = append(batch, types.ObjectIdentifier{Key: aws.String(k)})
			if len(batch) == 1000 {
				batches <- batch
				batch = nil
			}
		}
	}
	if len(batch) > 0 && listErr == nil {
		batches <- batch
	}
	close(batches)
	wg.Wait()
	if err := errors.Join(delErr, listErr); err != nil {
		return kept, int(deleteN.Load()), err
	}
	return kept, int(deleteN.Load()), nil
}

// seed puts the objects of these numbers with -seed-parallel concurrent
// PutObject calls, printing the rate every 30 seconds on long seedings.
func (m *million) seed(ctx context.Context, bucket string, which []int32) (time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, done atomic.Int64
	errs := make([]error, m.st.seedParallel)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := range m.st.seedParallel {
		wg.Go(func() {
			for {
				j := int(next.Add(1) - 1)
				if j >= len(which) || ctx.Err() != nil {
					return
				}
				i := int(which[j])
				_, err := m.admin.PutObject(ctx, &s3.PutObjectInput{
					Bucket: &bucket, Key: aws.String(millionKey(i)),
					Body: m.body(i), ContentLength: aws.Int64(int64(m.st.size)),
				})
				if err != nil {
					errs[w] = fmt.Errorf("seed %s: %w", millionKey(i), err)
					cancel()
					return
				}
				done.Add(1)
			}
		})
	}
	stopReport := make(chan struct{})
	var reporter sync.WaitGroup
	reporter.Go(func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stopReport:
				return
			case <-tick.C:
				d := done.Load()
				fmt.Fprintf(m.out, "  seeding %s: %d/%d, %.0f PUT/s, load average %s\n", bucket, d, len(which), float64(d)/time.Since(t0).Seconds(), loadAverage())
			}
		}
	})
	wg.Wait()
	close(stopReport)
	reporter.Wait()
	took := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return took, err
	}
	return took, nil
}

// probeListPage times one bare ListObjectsV2 page (1,000 keys) of the
// inbox folder: what the server alone takes to answer the first page.
func (m *million) probeListPage(ctx context.Context, bucket string) (time.Duration, error) {
	t0 := time.Now()
	_, err := m.admin.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(basePath + millionFolder), MaxKeys: aws.Int32(1000)})
	if err != nil {
		return 0, fmt.Errorf("probe list %s: %w", bucket, err)
	}
	return time.Since(t0), nil
}

// check lists the whole base path and fails unless each of objects
// 0..n-1 is in exactly one place, archived of them in archive/ (with its
// size) and the rest still in the inbox, and error/ holds nothing but the
// connector's own state folder (validation markers counted apart). After
// a complete run archived is n and the inbox empty.
func (m *million) check(ctx context.Context, bucket string, n, archivedWant int) (string, error) {
	t0 := time.Now()
	inArchive, inInbox := newBitset(n), newBitset(n)
	archivePrefix := basePath + string(archive.Archive) + millionFolder
	var inbox, archived, dups, strange, errored, state, markers, wrongSize int
	p := s3.NewListObjectsV2Paginator(m.admin, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(basePath)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("check %s: %w", bucket, err)
		}
		for _, o := range page.Contents {
			k := aws.ToString(o.Key)
			switch {
			case strings.HasPrefix(k, archivePrefix):
				i := keyIndex(strings.TrimPrefix(k, archivePrefix))
				switch {
				case !inArchive.within(i, n):
					strange++
				case inArchive.has(i):
					dups++
				default:
					inArchive.set(i)
					archived++
					if aws.ToInt64(o.Size) != int64(m.st.size) {
						wrongSize++
					}
				}
			case strings.HasPrefix(k, basePath+string(archive.Archive)):
				if strings.Contains(k, ".s3connector-validate-") {
					markers++
				} else {
					strange++
				}
			case strings.HasPrefix(k, basePath+string(archive.Error)+".s3connector/"):
				state++
			case strings.HasPrefix(k, basePath+string(archive.Error)):
				errored++
			default:
				i := keyIndex(strings.TrimPrefix(k, basePath+millionFolder))
				if !inInbox.within(i, n) || millionKey(i) != k {
					strange++
					continue
				}
				inInbox.set(i)
				inbox++
			}
		}
	}
	// Lost: in neither place; twice: in both (copied, not deleted).
	lost, twice := 0, 0
	for i := range n {
		a, b := inArchive.has(i), inInbox.has(i)
		if !a && !b {
			lost++
		}
		if a && b {
			twice++
		}
	}
	desc := fmt.Sprintf("%d in archive/ (%d duplicates, %d of the wrong size), %d left in the inbox, %d lost, %d in both, %d unknown keys, %d in error/, %d state records, %d validation markers; listed in %s",
		archived, dups, wrongSize, inbox, lost, twice, strange, errored, state, markers, time.Since(t0).Round(time.Millisecond))
	if archived != archivedWant || inbox != n-archivedWant || dups+wrongSize+lost+twice+strange+errored+state != 0 {
		return desc, fmt.Errorf("check %s: want %d of the %d files in archive/, the others in the inbox, each exactly once, and nothing else: %s", bucket, archivedWant, n, desc)
	}
	return desc, nil
}

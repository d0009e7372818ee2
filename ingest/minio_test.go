package ingest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/s3connector/s3connector/connector/miniotest"
)

// The MinIO server is shared by the package's tests, started on first use
// and stopped by TestMain; tests isolate themselves with their own buckets
// (minioBucket).
func TestMain(m *testing.M) {
	code := m.Run()
	miniotest.CloseShared()
	os.Exit(code)
}

// needMinIO returns the test binary's shared MinIO server, started on first
// use (miniotest.Shared).
func needMinIO(t testing.TB) *miniotest.Server {
	t.Helper()
	return miniotest.Shared(t)
}

var bucketSeq atomic.Int64

// minioBucket creates an empty bucket whose name is derived from the test's
// name and unique within the test binary (subtests, -count=N), and returns
// the name.
func minioBucket(t testing.TB, srv *miniotest.Server) string {
	t.Helper()
	name := bucketName(t.Name(), bucketSeq.Add(1))
	if err := srv.CreateBucket(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

// bucketName turns a test name into a valid S3 bucket name: lowercase
// letters, digits and single hyphens, 3 to 63 characters, ending in the
// sequence number.
func bucketName(testName string, seq int64) string {
	var b strings.Builder
	hyphen := true // no leading hyphen
	for _, r := range strings.ToLower(testName) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			hyphen = false
		} else if !hyphen {
			b.WriteByte('-')
			hyphen = true
		}
	}
	suffix := fmt.Sprintf("%d", seq)
	name := strings.TrimSuffix(b.String(), "-")
	if limit := 63 - len(suffix) - 1; len(name) > limit {
		name = strings.TrimSuffix(name[:limit], "-")
	}
	if name == "" {
		name = "t"
	}
	return name + "-" + suffix
}

// minioPut writes objects (key → body) into bucket with the root
// credentials, a few at a time.
func minioPut(t testing.TB, srv *miniotest.Server, bucket string, objects map[string][]byte) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, 16)
	for k, body := range objects {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := srv.Put(context.Background(), bucket, k, body); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

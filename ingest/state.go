package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/connector"
)

// AttemptsFolder holds the transient-failure counts of max_attempts, under
// the connection's base path. It lives under error/, which the lister
// skips, and inside the prefix the generated IAM policy grants, so counts
// survive restarts and `run --once` without any local state.
const AttemptsFolder = connector.ErrorFolder + ".s3connector/attempts/"

// attemptRecord is one file's count; it applies to one ETag only: a new
// upload under the same key starts again from zero.
type attemptRecord struct {
	ETag      string    `json:"etag"`
	Attempts  int       `json:"attempts"`
	First     time.Time `json:"first_failure"`
	Last      time.Time `json:"last_failure"`
	LastError string    `json:"last_error"`
}

// attemptStore keeps counts as small JSON objects
// <base>error/.s3connector/attempts/<relative key>.json (a hash for keys
// too long for that, see name). One listing at
// the start of a run tells which files have a count, so files without one
// (nearly all) cost no extra request.
type attemptStore struct {
	s3                     *s3.Client
	bucket, prefix, region string

	mu    sync.Mutex
	known map[string]bool // record names (see name) that exist
}

func newAttemptStore(client *s3.Client, bucket, base, region string) *attemptStore {
	return &attemptStore{s3: client, bucket: bucket, prefix: base + AttemptsFolder, region: region, known: map[string]bool{}}
}

func (a *attemptStore) key(relKey string) string { return a.prefix + a.name(relKey) + ".json" }

// name is the record name of a relative key: the key itself, or, when the
// record's key would pass S3's key limit, "~long/" and the key's SHA-256.
func (a *attemptStore) name(relKey string) string {
	if len(a.prefix)+len(relKey)+len(".json") <= archive.MaxKeyLength {
		return relKey
	}
	sum := sha256.Sum256([]byte(relKey))
	return "~long/" + hex.EncodeToString(sum[:])
}

func (a *attemptStore) load(ctx context.Context) error {
	p := s3.NewListObjectsV2Paginator(a.s3, &s3.ListObjectsV2Input{Bucket: &a.bucket, Prefix: &a.prefix, EncodingType: connector.ListEncoding})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list attempt counts under %s: %w", a.prefix, connector.Classify(err, a.region))
		}
		for _, o := range page.Contents {
			key, err := connector.ListedKey(page.EncodingType, aws.ToString(o.Key))
			if err != nil {
				return fmt.Errorf("list attempt counts under %s: %w", a.prefix, err)
			}
			name, ok := strings.CutSuffix(strings.TrimPrefix(key, a.prefix), ".json")
			if ok {
				a.known[name] = true
			}
		}
	}
	return nil
}

func (a *attemptStore) has(rel string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.known[a.name(rel)]
}

// fail counts one more failed attempt of f and returns the count and the
// time of the first failure.
func (a *attemptStore) fail(ctx context.Context, f File, now time.Time, cause error) (int, time.Time, error) {
	rec := attemptRecord{ETag: f.ETag, First: now.UTC()}
	if a.has(f.RelKey) {
		old, err := a.get(ctx, f.RelKey)
		if err != nil {
			return 1, rec.First, err
		}
		if old.ETag == f.ETag {
			rec = old
		}
	}
	rec.Attempts++
	rec.Last = now.UTC()
	rec.LastError = cause.Error()
	body, _ := json.Marshal(rec)
	_, err := a.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &a.bucket, Key: aws.String(a.key(f.RelKey)),
		Body: bytes.NewReader(body), ContentType: aws.String("application/json"),
	})
	if err != nil {
		return rec.Attempts, rec.First, fmt.Errorf("record attempt: %w", connector.Classify(err, a.region))
	}
	a.mu.Lock()
	a.known[a.name(f.RelKey)] = true
	a.mu.Unlock()
	return rec.Attempts, rec.First, nil
}

func (a *attemptStore) get(ctx context.Context, rel string) (attemptRecord, error) {
	var rec attemptRecord
	out, err := a.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &a.bucket, Key: aws.String(a.key(rel))})
	if err != nil {
		if errors.Is(connector.Classify(err, a.region), connector.ErrNotFound) {
			return rec, nil
		}
		return rec, fmt.Errorf("read attempt count: %w", connector.Classify(err, a.region))
	}
	defer out.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(out.Body, 64<<10))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		// A damaged record counts from zero again; never block the file.
		return attemptRecord{}, nil
	}
	return rec, nil
}

// clear forgets f's count once the file has been moved.
func (a *attemptStore) clear(ctx context.Context, f File) error {
	if !a.has(f.RelKey) {
		return nil
	}
	_, err := a.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &a.bucket, Key: aws.String(a.key(f.RelKey))})
	if err != nil {
		return fmt.Errorf("clear attempt count: %w", connector.Classify(err, a.region))
	}
	a.mu.Lock()
	delete(a.known, a.name(f.RelKey))
	a.mu.Unlock()
	return nil
}

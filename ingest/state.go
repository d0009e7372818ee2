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
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3connector/s3connector/archive"
	"github.com/s3connector/s3connector/connector"
)

// AttemptsFolder holds the per-file state records under the connection's
// base path: transient-failure counts (max_attempts), imports whose move is
// pending, and files that cannot be read or moved at all. It lives under
// error/, which the lister skips, and inside the prefix the generated IAM
// policy grants, so the state survives restarts and `run --once` without
// any local storage.
const AttemptsFolder = connector.ErrorFolder + ".s3connector/attempts/"

// Verdicts of a record whose move is pending.
const (
	verdictArchive = "archive"
	verdictError   = "error"
)

// fileRecord is the state of one version of one inbox file, kept only
// while that version needs one: a record applies to that version alone
// (see matches), so a new upload under the same key starts afresh, even
// one with the same bytes.
type fileRecord struct {
	ETag string `json:"etag"`
	// Modified is the version's LastModified as listed, and VersionID its
	// version id once a GET or HEAD told it (never "null", see
	// archive.Version.Versioned). The ETag alone does not tell versions
	// apart: a re-upload of the same bytes has the same ETag. Records
	// written before these fields existed have neither (see matches).
	Modified  time.Time `json:"last_modified,omitzero"`
	VersionID string    `json:"version_id,omitempty"`
	// Attempts counts failed attempts (imports or moves) toward
	// max_attempts; First, Last and LastError describe them. LastError is
	// customer-safe (see publicReason): records live in the customer's
	// bucket.
	Attempts  int       `json:"attempts,omitempty"`
	First     time.Time `json:"first_failure,omitzero"`
	Last      time.Time `json:"last_failure,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	// Verdict is set once the importer has decided (archive or error):
	// the version is never imported again, only its move is retried.
	// Reason is the error/ report's reason.
	Verdict    string `json:"verdict,omitempty"`
	ReasonCode string `json:"reason_code,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// Copied is the destination key once the copy exists: only the
	// delete is left.
	Copied string `json:"copied,omitempty"`
	// Skipped (a metrics.Skip* reason) marks a version that cannot be read
	// or copied at all; Blocked (metrics.OpCopy or OpDelete) a move step
	// denied by permissions or a lock. Either way the file is not tried
	// again before NextTry.
	Skipped string    `json:"skipped,omitempty"`
	Blocked string    `json:"blocked,omitempty"`
	NextTry time.Time `json:"next_try,omitzero"`
	// Uploads are the multipart uploads the file's moves started
	// (archive.UploadJournal): a move killed mid-copy leaves one, and the
	// next move of the file aborts it by this id. They are the key's, not
	// the version's: a record started afresh for a newer version keeps
	// them (update), and a record removed with its file aborts them first
	// (removeOrphans).
	Uploads []archive.Upload `json:"uploads,omitempty"`
}

// matches reports whether the record is about f's version: same ETag,
// same LastModified, and the same version id when both are known.
//
// A listing gives no version id, so LastModified is what tells a re-upload
// of the same bytes from the version the record is about: S3 sets it when
// the version is written, and it is "system controlled, meaning that only
// Amazon S3 can modify the value" (System-defined object metadata, Working
// with object metadata, Amazon S3 User Guide); placing a retention or a
// legal hold "doesn't overwrite the object version or reset its
// Last-Modified timestamp" (S3 Object Lock overview, same guide). Two
// uploads of the same bytes within one second can still look alike, as
// AWS lists whole seconds; on a versioned bucket the version id then tells
// them apart wherever f has one (after its GET or HEAD: update's lookup),
// but a listing has none.
//
// A record written by an older release has no LastModified: it matches on
// its ETag alone, as it did when it was written. Calling it stale instead
// would import again every file whose move was pending at the upgrade and
// reset every max_attempts count and skipped or blocked state, which is
// what records are there to prevent; matching on the ETag keeps the old
// behaviour only for records written before the upgrade, and the next write
// of such a record (update) adds the LastModified.
func (r *fileRecord) matches(f File) bool {
	if r.ETag != f.ETag {
		return false
	}
	if !r.Modified.IsZero() && !r.Modified.Equal(f.LastModified) {
		return false
	}
	if r.VersionID != "" && realVersion(f.VersionID) && r.VersionID != f.VersionID {
		return false
	}
	return true
}

// realVersion reports whether id is a version id of its own: "" is an
// unversioned bucket (or a listing, which has none) and "null" a
// versioning-suspended one, whose next upload replaces it.
func realVersion(id string) bool { return archive.Version{ID: id}.Versioned() }

// stuck reports whether the record keeps its file out of runs until NextTry.
func (r *fileRecord) stuck(now time.Time) bool {
	return (r.Skipped != "" || r.Blocked != "") && now.Before(r.NextTry)
}

// stateStore keeps records as small JSON objects
// <base>error/.s3connector/attempts/<relative key>.json (a hash for keys
// too long for that, see name). One listing at the start of a run tells
// which files have a record, so files without one (nearly all) cost no
// extra request; a record is read at most once per run.
type stateStore struct {
	s3                     *s3.Client
	bucket, prefix, region string

	mu    sync.Mutex
	known map[string]bool        // record names (see name) that exist
	cache map[string]*fileRecord // records read or written this run
	seen  map[string]bool        // known names whose file the listing showed
}

func newStateStore(client *s3.Client, bucket, base, region string) *stateStore {
	return &stateStore{s3: client, bucket: bucket, prefix: base + AttemptsFolder, region: region,
		known: map[string]bool{}, cache: map[string]*fileRecord{}, seen: map[string]bool{}}
}

func (a *stateStore) key(relKey string) string { return a.prefix + a.name(relKey) + ".json" }

// name is the record name of a relative key: the key itself, or, when the
// record's key would pass S3's key limit, "~long/" and the key's SHA-256.
func (a *stateStore) name(relKey string) string {
	if len(a.prefix)+len(relKey)+len(".json") <= archive.MaxKeyLength {
		return relKey
	}
	sum := sha256.Sum256([]byte(relKey))
	return "~long/" + hex.EncodeToString(sum[:])
}

func (a *stateStore) load(ctx context.Context) error {
	p := s3.NewListObjectsV2Paginator(a.s3, &s3.ListObjectsV2Input{Bucket: &a.bucket, Prefix: &a.prefix, EncodingType: connector.ListEncoding})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list file state under %s: %w", a.prefix, connector.Classify(err, a.region))
		}
		for _, o := range page.Contents {
			key, err := connector.ListedKey(page.EncodingType, aws.ToString(o.Key))
			if err != nil {
				return fmt.Errorf("list file state under %s: %w", a.prefix, err)
			}
			name, ok := strings.CutSuffix(strings.TrimPrefix(key, a.prefix), ".json")
			if ok {
				a.known[name] = true
			}
		}
	}
	return nil
}

// lookup returns f's record when it has one for f's version (matches),
// else nil.
func (a *stateStore) lookup(ctx context.Context, f File) (*fileRecord, error) {
	rec, err := a.lookupAny(ctx, f)
	if err != nil || rec == nil || !rec.matches(f) {
		return nil, err
	}
	return rec, nil
}

// lookupAny is lookup whatever version the record is about; either way the
// record counts as seen by the listing (removeOrphans).
func (a *stateStore) lookupAny(ctx context.Context, f File) (*fileRecord, error) {
	rec, err := a.raw(ctx, f.RelKey)
	if err != nil || rec == nil {
		return nil, err
	}
	a.mu.Lock()
	a.seen[a.name(f.RelKey)] = true
	a.mu.Unlock()
	return rec, nil
}

// raw returns a copy of the record under relKey whatever version it is
// about, or nil when there is none; it is read at most once per run.
func (a *stateStore) raw(ctx context.Context, relKey string) (*fileRecord, error) {
	name := a.name(relKey)
	a.mu.Lock()
	known, rec := a.known[name], a.cache[name]
	a.mu.Unlock()
	if !known {
		return nil, nil
	}
	if rec == nil {
		var err error
		if rec, err = a.get(ctx, relKey); err != nil {
			return nil, err
		}
		a.mu.Lock()
		a.cache[name] = rec
		a.mu.Unlock()
	}
	c := *rec
	c.Uploads = slices.Clone(rec.Uploads)
	return &c, nil
}

// uploads returns the multipart uploads recorded under f's key, whatever
// version the record is about: an upload a killed move of an older version
// left is as much an orphan as one of f's.
func (a *stateStore) uploads(ctx context.Context, f File) ([]archive.Upload, error) {
	rec, err := a.raw(ctx, f.RelKey)
	if err != nil || rec == nil {
		return nil, err
	}
	return rec.Uploads, nil
}

// update applies change to f's record (a fresh one when f has none for its
// version) and writes it. The record is stamped with f's LastModified and
// real version id, which also upgrades a record an older release wrote.
func (a *stateStore) update(ctx context.Context, f File, change func(*fileRecord)) (fileRecord, error) {
	old, err := a.lookupAny(ctx, f)
	if err != nil {
		old = nil // unreadable: start again rather than block the file
	}
	rec := old
	if rec == nil || !rec.matches(f) {
		rec = &fileRecord{ETag: f.ETag}
		// An older version's record: its uploads are still to abort.
		if old != nil {
			rec.Uploads = old.Uploads
		}
	}
	if rec.Modified.IsZero() {
		rec.Modified = f.LastModified
	}
	if rec.VersionID == "" && realVersion(f.VersionID) {
		rec.VersionID = f.VersionID
	}
	change(rec)
	body, _ := json.Marshal(rec)
	_, err = a.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &a.bucket, Key: aws.String(a.key(f.RelKey)),
		Body: bytes.NewReader(body), ContentType: aws.String("application/json"),
		// A record is a new object version: Content-MD5 for buckets with a
		// default Object Lock retention (see connector.ContentMD5).
		ContentMD5: aws.String(connector.ContentMD5(body)),
	})
	if err != nil {
		return *rec, fmt.Errorf("record file state: %w", connector.Classify(err, a.region))
	}
	name := a.name(f.RelKey)
	a.mu.Lock()
	a.known[name] = true
	a.cache[name] = rec
	a.mu.Unlock()
	return *rec, nil
}

// fail counts one more failed attempt of f, described by lastError (a
// customer-safe sentence), and returns the record.
func (a *stateStore) fail(ctx context.Context, f File, now time.Time, lastError string, change func(*fileRecord)) (fileRecord, error) {
	return a.update(ctx, f, func(r *fileRecord) {
		if r.Attempts == 0 {
			r.First = now.UTC()
		}
		r.Attempts++
		r.Last = now.UTC()
		r.LastError = lastError
		if change != nil {
			change(r)
		}
	})
}

func (a *stateStore) get(ctx context.Context, rel string) (*fileRecord, error) {
	rec := &fileRecord{}
	out, err := a.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &a.bucket, Key: aws.String(a.key(rel))})
	if err != nil {
		if errors.Is(connector.Classify(err, a.region), connector.ErrNotFound) {
			return rec, nil
		}
		return nil, fmt.Errorf("read file state: %w", connector.Classify(err, a.region))
	}
	defer out.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(out.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("read file state: %w", err)
	}
	if err := json.Unmarshal(raw, rec); err != nil {
		// A damaged record counts from zero again; never block the file.
		return &fileRecord{}, nil
	}
	return rec, nil
}

// clear forgets f's record once the file has left the inbox.
func (a *stateStore) clear(ctx context.Context, f File) error {
	name := a.name(f.RelKey)
	a.mu.Lock()
	known := a.known[name]
	a.mu.Unlock()
	if !known {
		return nil
	}
	_, err := a.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &a.bucket, Key: aws.String(a.key(f.RelKey))})
	if err != nil {
		return fmt.Errorf("clear file state: %w", connector.Classify(err, a.region))
	}
	a.mu.Lock()
	delete(a.known, name)
	delete(a.cache, name)
	a.mu.Unlock()
	return nil
}

// maxOrphanChecks bounds how many records one run checks in removeOrphans.
const maxOrphanChecks = 100

// removeOrphans deletes the records of files gone from the inbox (deleted
// by the customer while stuck or failing), which no run would clear,
// aborting the multipart uploads a record holds first. It is
// called after a run whose listing went through the whole inbox, with
// every record the listing did not show (see lookup) as a candidate; as a
// file may be unlisted yet present (a changed include pattern, a key
// uploaded since), a record goes only when HeadObject finds no object at
// its key. Records under a hashed name (keys too long for a record's key)
// are left: their key cannot be told from the name. It returns how many it
// removed.
//
// On a versioned bucket a file the customer deleted is hidden by a delete
// marker, and "if the current version of the object is a delete marker,
// Amazon S3 behaves as if the object was deleted" (HeadObject answers 404;
// Working with delete markers, Amazon S3 User Guide), so its record goes
// too. The record's own DeleteObject leaves a marker there in turn: no
// version is ever removed (I11).
func (a *stateStore) removeOrphans(ctx context.Context, base string) (int, error) {
	a.mu.Lock()
	var names []string
	for name := range a.known {
		if !a.seen[name] && !strings.HasPrefix(name, "~long/") && len(names) < maxOrphanChecks {
			names = append(names, name)
		}
	}
	a.mu.Unlock()
	removed := 0
	for _, name := range names {
		_, err := a.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &a.bucket, Key: aws.String(base + name)})
		switch err = connector.Classify(err, a.region); {
		case err == nil:
			continue // still there: its record stays
		case !errors.Is(err, connector.ErrNotFound):
			return removed, fmt.Errorf("check the file of state record %s: %w", a.key(name), err)
		}
		// The uploads a killed move of the file left go with it: once its
		// record is gone, nothing would know their ids.
		rec, err := a.raw(ctx, name)
		if err != nil {
			return removed, fmt.Errorf("read the state record %s of a file gone from the inbox: %w", a.key(name), err)
		}
		if rec != nil && len(rec.Uploads) > 0 {
			if _, err := archive.AbortUploads(ctx, a.s3, a.bucket, rec.Uploads); err != nil {
				return removed, fmt.Errorf("abort the multipart uploads recorded in %s: %w", a.key(name), connector.Classify(err, a.region))
			}
		}
		if _, err := a.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &a.bucket, Key: aws.String(a.key(name))}); err != nil {
			return removed, fmt.Errorf("remove the state record %s of a file gone from the inbox: %w", a.key(name), connector.Classify(err, a.region))
		}
		a.mu.Lock()
		delete(a.known, name)
		delete(a.cache, name)
		a.mu.Unlock()
		removed++
	}
	return removed, nil
}

package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/bmatcuk/doublestar/v4"

	"github.com/s3connector/s3connector/connector"
)

// Filter selects which inbox objects a run takes.
type Filter struct {
	// Include and Exclude are doublestar globs on the key relative to the
	// base path ("*" stays within a folder, "**/" spans any number of them,
	// none included: "**/*.csv" matches "a.csv" and "2024/05/a.csv"). A file
	// is taken when it matches any Include (or Include is empty) and no
	// Exclude.
	Include, Exclude []string
	// MinAge skips objects modified less than MinAge before Now: files that
	// may still be being written. 0 takes every file.
	MinAge time.Duration
	// MaxFiles stops the listing after this many files; 0 = no limit.
	MaxFiles int
	// Now is the clock MinAge is measured against; nil = time.Now. It is read
	// once per listing.
	Now func() time.Time
}

// NewFilter returns a Filter after checking every glob, so that a bad pattern
// is reported once instead of silently matching nothing. The error names the
// pattern.
func NewFilter(include, exclude []string, minAge time.Duration, maxFiles int) (Filter, error) {
	f := Filter{Include: include, Exclude: exclude, MinAge: minAge, MaxFiles: maxFiles}
	return f, f.validate()
}

func (f Filter) validate() error {
	var errs []error
	for _, p := range f.Include {
		if !doublestar.ValidatePattern(p) {
			errs = append(errs, fmt.Errorf("include pattern %q: invalid glob", p))
		}
	}
	for _, p := range f.Exclude {
		if !doublestar.ValidatePattern(p) {
			errs = append(errs, fmt.Errorf("exclude pattern %q: invalid glob", p))
		}
	}
	if f.MinAge < 0 {
		errs = append(errs, fmt.Errorf("min age must not be negative, got %s", f.MinAge))
	}
	if f.MaxFiles < 0 {
		errs = append(errs, fmt.Errorf("max files must not be negative, got %d", f.MaxFiles))
	}
	return errors.Join(errs...)
}

// selects reports whether relKey passes Include and Exclude.
func (f Filter) selects(relKey string) bool {
	if len(f.Include) > 0 && !matchAny(f.Include, relKey) {
		return false
	}
	return !matchAny(f.Exclude, relKey)
}

func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		// Validated by NewFilter and again at the start of List.
		if doublestar.MatchUnvalidated(p, name) {
			return true
		}
	}
	return false
}

// ListStats counts what one listing saw.
type ListStats struct {
	// Pages is the number of ListObjectsV2 pages fetched (one per LIST
	// request answered), at the base level and in its subfolders.
	Pages int
	Seen  int // every key S3 returned, skipped or not
	// Listed files were sent to out.
	Listed int
	// Filtered files were skipped by Include, Exclude or MinAge; folder
	// markers are not counted (nor archive/ and error/, which are not read).
	Filtered int
	// Skipped files passed the filter but Lister.Skip declined them.
	Skipped int
	Bytes   int64 // sum of the listed files' sizes
}

// Lister streams the inbox of one connection: every object under BasePath
// except folder markers (keys ending in "/") and the processed files under
// <BasePath>archive/ and <BasePath>error/, which it never reads
// (connector.InboxListing): a run costs the same LIST requests however many
// files the connection has archived.
type Lister struct {
	S3     s3.ListObjectsV2APIClient
	Bucket string
	// BasePath is "" (the whole bucket) or a prefix ending in "/"; List
	// refuses anything else, since a bare "inbox" prefix would also list
	// "inbox2/".
	BasePath string
	// Region is the connection's region, used only to classify errors
	// (connector.Classify); may be empty.
	Region   string
	Filter   Filter
	PageSize int32 // MaxKeys per page; 0 = the S3 default (1000)
	// Skip, if set, is asked about every file the Filter takes, before it
	// is sent. A file for which it returns true is not sent, is counted in
	// ListStats.Skipped and does not count toward Filter.MaxFiles, so files
	// that cannot be processed at the start of the listing do not starve
	// the files after them. An error from Skip ends the listing with that
	// error. It is called from List's goroutine, one file at a time.
	Skip func(ctx context.Context, f File) (bool, error)
}

// List sends every inbox file to out, page by page as ListObjectsV2 returns
// them, and returns when the listing ends, Filter.MaxFiles files were sent,
// or ctx is done (then with ctx.Err(), sending nothing more). It never holds
// more than two pages in memory (a base-level page and a subfolder's): a
// slow consumer blocks the listing, out being the bounded queue. It does
// not close out.
//
// Files carry Bucket, Key, RelKey, Size, ETag (as S3 returns it, with
// quotes), LastModified and IdempotencyKey (from the ETag: a listing has no
// version ids). ContentType, Metadata and VersionID are left for the worker
// to fill from GetObject.
//
// Keys are requested URL-encoded (connector.ListEncoding), so a key with a
// control character cannot make a page unreadable, and decoded here:
// unicode, spaces, '+' and '%' arrive exactly as stored.
func (l *Lister) List(ctx context.Context, out chan<- File) (ListStats, error) {
	var st ListStats
	base := l.BasePath
	if err := l.Filter.validate(); err != nil {
		return st, fmt.Errorf("list s3://%s/%s: %w", l.Bucket, base, err)
	}
	now := time.Now
	if l.Filter.Now != nil {
		now = l.Filter.Now
	}
	// One cutoff per listing, so a long listing does not take files that
	// were too young when it started.
	cutoff := now().Add(-l.Filter.MinAge)

	inbox := connector.InboxListing{S3: l.S3, Bucket: l.Bucket, BasePath: base, Region: l.Region, PageSize: l.PageSize}
	ist, err := inbox.Walk(ctx, func(o connector.InboxObject) error {
		rel := o.Key[len(base):]
		if !l.Filter.selects(rel) || (l.Filter.MinAge > 0 && o.LastModified.After(cutoff)) {
			st.Filtered++
			return nil
		}
		f := File{
			Bucket:         l.Bucket,
			Key:            o.Key,
			RelKey:         rel,
			Size:           o.Size,
			ETag:           o.ETag,
			LastModified:   o.LastModified,
			IdempotencyKey: IdempotencyKey(l.Bucket, o.Key, o.ETag, ""),
		}
		if l.Skip != nil {
			skip, err := l.Skip(ctx, f)
			if err != nil {
				return err
			}
			if skip {
				st.Skipped++
				return nil
			}
		}
		// Checked first because select picks at random among ready cases:
		// once ctx is done, nothing more is sent.
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case out <- f:
		case <-ctx.Done():
			return ctx.Err()
		}
		st.Listed++
		st.Bytes += f.Size
		if l.Filter.MaxFiles > 0 && st.Listed >= l.Filter.MaxFiles {
			return connector.ErrStopWalk
		}
		return nil
	})
	st.Pages, st.Seen = ist.Pages, ist.Seen
	return st, err
}

// IdempotencyKey returns the stable key for one version of one object, which
// importers use to deduplicate at-least-once deliveries (I5). It is the
// lowercase hex SHA-256 of
//
//	bucket NUL key NUL "etag:" ETag     (versionID empty)
//	bucket NUL key NUL "version:" versionID
//
// truncated to its first 32 hex digits (128 bits). The ETag's surrounding
// double quotes are dropped first, so the quoted form S3 returns and the bare
// form give the same key. The same bucket, key and ETag (or version) always
// give the same key, across runs and releases: changing this derivation
// would make every sink re-import what it has already seen.
func IdempotencyKey(bucket, key, etag, versionID string) string {
	tag := "etag:" + strings.Trim(etag, `"`)
	if versionID != "" {
		tag = "version:" + versionID
	}
	sum := sha256.Sum256([]byte(bucket + "\x00" + key + "\x00" + tag))
	return hex.EncodeToString(sum[:16])
}

package connector

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// ListEncoding is the EncodingType every listing asks for. Without it S3
// writes keys into the XML response as they are, and a key holding a
// character XML 1.0 cannot carry (a control character such as U+0001, which
// S3 allows in keys) makes the whole page unreadable: one oddly named file
// would stop every file of the connection. The SDK does not decode the
// keys it asked to be encoded; ListedKey does.
const ListEncoding = types.EncodingTypeUrl

// ListedKey returns the key of a listing entry as stored: URL-decoded when
// the response says it is encoded (enc, the response's EncodingType), as
// given otherwise (a server that ignores the request answers in plain text,
// and decoding that would turn '+' into a space).
func ListedKey(enc types.EncodingType, key string) (string, error) {
	if enc != types.EncodingTypeUrl {
		return key, nil
	}
	k, err := url.QueryUnescape(key)
	if err != nil {
		return "", fmt.Errorf("listing returned a key that is not URL-encoded although it says so: %q: %w", key, err)
	}
	return k, nil
}

// InboxObject is one file waiting under a base path, as a listing returned
// it: Key decoded (see ListedKey) and always under the base path.
type InboxObject struct {
	Key          string
	Size         int64
	ETag         string // as S3 returns it, with quotes
	LastModified time.Time
}

// InboxStats counts the requests and keys of one Walk.
type InboxStats struct {
	// Pages is the number of ListObjectsV2 pages fetched, at the base level
	// and in its subfolders together: one per LIST request answered.
	Pages int
	// Seen is every key the pages returned, folder markers included.
	Seen int
}

// ErrStopWalk, returned by a Walk's visit function, ends the walk early
// without an error (as fs.SkipAll does for fs.WalkDir).
var ErrStopWalk = errors.New("stop walking the inbox")

// InboxListing lists the files waiting under one base path: every object
// except folder markers (keys ending in "/") and the processed files under
// <BasePath>archive/ and <BasePath>error/.
//
// It never reads those two folders, so its cost does not grow with the
// connection's history. The base level is listed with Delimiter "/": S3
// returns the keys directly under the base path in Contents and rolls every
// deeper key up into one CommonPrefixes entry per subfolder ("Causes keys
// that contain the same string between the prefix and the first occurrence
// of the delimiter to be rolled up into a single result element in the
// CommonPrefixes collection. These rolled-up keys are not returned elsewhere
// in the response. Each rolled-up result counts as only one return against
// the MaxKeys value." — ListObjectsV2, Amazon S3 API Reference,
// https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html;
// "skipping over and summarizing the (possibly millions of) keys nested at
// deeper levels", https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-prefixes.html).
// Each subfolder other than archive/ and error/ is then listed in full,
// without a delimiter. However large archive/ grows, it costs one entry of
// one base-level page.
type InboxListing struct {
	S3     s3.ListObjectsV2APIClient
	Bucket string
	// BasePath is "" (the whole bucket) or a prefix ending in "/"; Walk
	// refuses anything else, since a bare "inbox" prefix would also list
	// "inbox2/".
	BasePath string
	// Region is only used to classify errors (Classify); may be empty.
	Region   string
	PageSize int32 // MaxKeys per request; 0 = the S3 default (1000)
}

// Walk calls visit for every inbox file, in the order the pages return
// them, and returns when the listing ends, visit returns an error (returned
// as is; ErrStopWalk ends the walk with nil), or ctx is done (then with
// ctx.Err()). It holds at most one base-level page and one subfolder page
// at a time, and calls visit for the first files as soon as the first page
// has arrived, so a slow visit paces the listing.
//
// Keys are requested URL-encoded (ListEncoding) and decoded, CommonPrefixes
// included. A key outside the base path (from a server that ignores Prefix)
// is never visited (I8); nor is a key under archive/ or error/ (from a
// server that ignores Delimiter).
func (l InboxListing) Walk(ctx context.Context, visit func(InboxObject) error) (InboxStats, error) {
	var st InboxStats
	base := l.BasePath
	if base != "" && !strings.HasSuffix(base, "/") {
		return st, fmt.Errorf("list s3://%s/%s: base path must be empty or end in \"/\"", l.Bucket, base)
	}
	err := l.walk(ctx, &st, visit)
	if errors.Is(err, ErrStopWalk) {
		err = nil
	}
	return st, err
}

func (l InboxListing) walk(ctx context.Context, st *InboxStats, visit func(InboxObject) error) error {
	base := l.BasePath
	top := s3.NewListObjectsV2Paginator(l.S3, l.input(base, "/"))
	for top.HasMorePages() {
		page, err := l.next(ctx, top, base, st)
		if err != nil {
			return err
		}
		if err := l.visitPage(page, base, st, visit); err != nil {
			return err
		}
		for _, cp := range page.CommonPrefixes {
			prefix, err := ListedKey(page.EncodingType, aws.ToString(cp.Prefix))
			if err != nil {
				return fmt.Errorf("list s3://%s/%s: %w", l.Bucket, base, err)
			}
			// prefix == base only from a server that ignores the request;
			// listing it in full would read archive/ and visit twice.
			if !strings.HasPrefix(prefix, base) || prefix == base || l.processed(prefix) {
				continue
			}
			sub := s3.NewListObjectsV2Paginator(l.S3, l.input(prefix, ""))
			for sub.HasMorePages() {
				page, err := l.next(ctx, sub, prefix, st)
				if err != nil {
					return err
				}
				if err := l.visitPage(page, prefix, st, visit); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (l InboxListing) input(prefix, delimiter string) *s3.ListObjectsV2Input {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(l.Bucket), Prefix: aws.String(prefix), EncodingType: ListEncoding}
	if delimiter != "" {
		in.Delimiter = aws.String(delimiter)
	}
	if l.PageSize > 0 {
		in.MaxKeys = aws.Int32(l.PageSize)
	}
	return in
}

// next fetches the next page of p. A done ctx wins over any other error, and
// is returned as is.
func (l InboxListing) next(ctx context.Context, p *s3.ListObjectsV2Paginator, prefix string, st *InboxStats) (*s3.ListObjectsV2Output, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	page, err := p.NextPage(ctx)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("list s3://%s/%s: %w", l.Bucket, prefix, Classify(err, l.Region))
	}
	st.Pages++
	return page, nil
}

// visitPage visits the files of one page requested with prefix.
func (l InboxListing) visitPage(page *s3.ListObjectsV2Output, prefix string, st *InboxStats, visit func(InboxObject) error) error {
	for _, o := range page.Contents {
		st.Seen++
		key, err := ListedKey(page.EncodingType, aws.ToString(o.Key))
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", l.Bucket, prefix, err)
		}
		// prefix starts with the base path: the check guards I8 against a
		// server that ignores Prefix.
		if !strings.HasPrefix(key, prefix) || strings.HasSuffix(key, "/") || l.processed(key) {
			continue
		}
		if err := visit(InboxObject{
			Key:          key,
			Size:         aws.ToInt64(o.Size),
			ETag:         aws.ToString(o.ETag),
			LastModified: aws.ToTime(o.LastModified),
		}); err != nil {
			return err
		}
	}
	return nil
}

// processed reports whether key (or a folder prefix) is under the base
// path's archive/ or error/ folder.
func (l InboxListing) processed(key string) bool {
	return strings.HasPrefix(key, l.BasePath+ArchiveFolder) || strings.HasPrefix(key, l.BasePath+ErrorFolder)
}

// Inbox returns the listing of the connection's base path.
func (c *Connection) Inbox() InboxListing {
	return InboxListing{S3: c.s3, Bucket: c.cfg.Bucket, BasePath: c.cfg.BasePath, Region: c.cfg.Region}
}

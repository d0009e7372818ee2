package archive

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3connector/s3connector/connector"
)

// Upload is a multipart upload a move started: its key and upload id.
type Upload struct {
	Key string `json:"key"`
	ID  string `json:"id"`
}

// UploadJournal keeps the multipart uploads the moves of one inbox file
// start, where they outlive the process: the runner keeps them in the
// file's state record (ingest). A move killed mid multipart copy (SIGKILL,
// a lost node) leaves its upload behind; nothing else ever completes or
// aborts it, and S3 bills its parts until a lifecycle rule
// (AbortIncompleteMultipartUpload), if the bucket has one, removes them.
// With a journal the next move of the file finds the upload's id there and
// aborts it.
//
// Why a journal, and not ListMultipartUploads at the destination: that
// listing needs s3:ListBucketMultipartUploads, whose only condition keys
// are the access point, authentication and signature ones -- no s3:prefix,
// which only ListBucket and ListBucketVersions take ("Actions, resources,
// and condition keys for Amazon S3", Service Authorization Reference) --
// so it can only be granted on the whole bucket, and the connection's
// policy grants nothing outside its base path (I10).
// AbortMultipartUpload, by upload id, needs s3:AbortMultipartUpload on the
// object only, which the policy grants under the base path.
//
// What no journal can know: an upload whose CreateMultipartUpload answer
// never reached the process (killed while the request was in flight, or
// the answer lost and the request sent again), or one created just before
// a kill that came ahead of its Record. The README tells customers to add
// an AbortIncompleteMultipartUpload lifecycle rule for those.
type UploadJournal interface {
	// Uploads returns the uploads recorded for the file and not yet
	// forgotten (the file's record is removed once it has left the inbox).
	Uploads(ctx context.Context) ([]Upload, error)
	// Record keeps ups (what Uploads returned, and the new upload last).
	// The move calls it after CreateMultipartUpload answers and before any
	// part is copied; an error aborts the new upload and fails the move,
	// so no part is ever copied into an upload the journal does not hold.
	Record(ctx context.Context, ups []Upload) error
}

// AbortUploads aborts ups and returns how many it aborted (NoSuchUpload
// counts: "The specified multipart upload does not exist. The upload ID
// may be invalid, or the upload may have been aborted or completed",
// Amazon S3 API Reference, Error codes). An abort that fails does not stop
// the others; the errors are joined.
//
// AbortMultipartUpload frees the parts; "if any part uploads are currently
// in progress, those part uploads might or might not succeed. As a result,
// it might be necessary to abort a given multipart upload multiple times"
// (AbortMultipartUpload, Amazon S3 API Reference): the move calls this
// before its own copy and again after it (Mover.copy).
func AbortUploads(ctx context.Context, api interface {
	AbortMultipartUpload(context.Context, *s3.AbortMultipartUploadInput, ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
}, bucket string, ups []Upload) (int, error) {
	aborted := 0
	var errs []error
	for _, u := range ups {
		_, err := api.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: &bucket, Key: &u.Key, UploadId: &u.ID,
		})
		if err != nil && !errors.Is(connector.Classify(err, ""), connector.ErrNotFound) {
			errs = append(errs, fmt.Errorf("abort multipart upload %s at %q: %w", u.ID, u.Key, err))
			continue
		}
		aborted++
	}
	return aborted, errors.Join(errs...)
}

// maxRecordedUploads bounds what a journal is asked to keep: the uploads
// of the latest moves of one file. Each move aborts every recorded upload
// twice before it records a new one, so the oldest have long been aborted
// when they are dropped.
const maxRecordedUploads = 32

// recordedUploads returns the uploads src's journal holds (none without a
// journal, or when it cannot be read: the cleanup is best effort).
func recordedUploads(ctx context.Context, src Source) []Upload {
	if src.Uploads == nil {
		return nil
	}
	ups, err := src.Uploads.Uploads(ctx)
	if err != nil {
		return nil
	}
	return ups
}

// withUpload is ups with u added last, the oldest dropped beyond
// maxRecordedUploads.
func withUpload(ups []Upload, u Upload) []Upload {
	out := append(append(make([]Upload, 0, len(ups)+1), ups...), u)
	if len(out) > maxRecordedUploads {
		out = out[len(out)-maxRecordedUploads:]
	}
	return out
}

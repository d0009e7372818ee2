package archive

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// maxUploadPages bounds the listing of abortUploadsAt: with the
// destination key as the prefix it is one short page (S3 answers up to
// 1,000 uploads a page); the bound only keeps a store whose markers do not
// advance from looping.
const maxUploadPages = 10

// abortUploadsAt aborts the multipart uploads in progress at dest and
// returns how many it aborted; an abort that fails does not stop the
// others (the errors are joined).
//
// A move killed mid multipart copy (SIGKILL, a lost node) leaves its
// upload behind: nothing else ever completes or aborts it, and S3 bills
// its parts until a lifecycle rule (AbortIncompleteMultipartUpload), if
// the bucket has one, removes them. dest is a function of the source
// version (DestKey, I2), so the next move of that version targets the same
// key, and the upload can be found there: ListMultipartUploads "Lists
// in-progress uploads only for those keys that begin with the specified
// prefix" (ListMultipartUploads, Amazon S3 API Reference), and keys that
// merely start with dest are skipped. The lease (I12) keeps any other
// process off the connection, and the caller starts its own upload only
// after this returns, so every upload found is a dead move's.
//
// AbortMultipartUpload frees the parts; "if any part uploads are currently
// in progress, those part uploads might or might not succeed. As a result,
// it might be necessary to abort a given multipart upload multiple times"
// (AbortMultipartUpload, Amazon S3 API Reference): the move calls this
// again once its own copy is done (Mover.copy).
//
// Permissions ("Multipart upload API and permissions", Amazon S3 User
// Guide; "Actions, resources, and condition keys for Amazon S3", Service
// Authorization Reference): s3:ListBucketMultipartUploads on the bucket,
// s3:AbortMultipartUpload on the object. The listing's action takes no
// s3:prefix condition key (ListBucket's does), so it cannot be limited to
// the base path: connector's permissions policy grants it on the bucket
// (connector.SidListUploads).
func (m *Mover) abortUploadsAt(ctx context.Context, dest string) (int, error) {
	in := &s3.ListMultipartUploadsInput{Bucket: &m.Bucket, Prefix: &dest}
	aborted := 0
	var errs []error
	for range maxUploadPages {
		out, err := m.S3.ListMultipartUploads(ctx, in)
		if err != nil {
			return aborted, errors.Join(append(errs, fmt.Errorf("list the multipart uploads at %q: %w", dest, err))...)
		}
		for _, u := range out.Uploads {
			if aws.ToString(u.Key) != dest {
				continue
			}
			if _, err := m.S3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: &m.Bucket, Key: &dest, UploadId: u.UploadId,
			}); err != nil {
				errs = append(errs, fmt.Errorf("abort multipart upload %s at %q: %w", aws.ToString(u.UploadId), dest, err))
				continue
			}
			aborted++
		}
		if !aws.ToBool(out.IsTruncated) || aws.ToString(out.NextKeyMarker) == aws.ToString(in.KeyMarker) &&
			aws.ToString(out.NextUploadIdMarker) == aws.ToString(in.UploadIdMarker) {
			break
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
	return aborted, errors.Join(errs...)
}

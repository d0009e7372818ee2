package archive

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3connector/s3connector/connector"
	"github.com/s3connector/s3connector/connector/miniotest"
)

// newLockedBucket creates a bucket with Object Lock enabled (which turns
// versioning on for good, on AWS and on MinIO).
func newLockedBucket(t *testing.T, srv *miniotest.Server) string {
	t.Helper()
	name := newBucketName(t)
	if _, err := srv.Root().CreateBucket(t.Context(), &s3.CreateBucketInput{
		Bucket:                     aws.String(name),
		ObjectLockEnabledForBucket: aws.Bool(true),
		CreateBucketConfiguration:  &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(miniotest.Region)},
	}); err != nil {
		t.Fatalf("create an Object Lock bucket: %v", err)
	}
	return name
}

// newBucketName names a fresh bucket after the test, as newBucket does.
func newBucketName(t *testing.T) string {
	name := strings.Trim(bucketName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 50 {
		name = name[:50]
	}
	return strings.Trim(name, "-") + fmt.Sprintf("-%d", time.Now().UnixNano()%100000)
}

// A move's delete on an object version under Object Lock (a legal hold, a
// GOVERNANCE or a COMPLIANCE retention) completes: it leaves a delete
// marker and the locked version stays. AWS documents exactly this:
//   - "Object Lock works only in versioned buckets, and retention periods
//     and legal holds apply to individual object versions" ("Locking
//     objects with Object Lock", Amazon S3 User Guide, object-lock.html);
//     a legal hold "prevents an object version from being overwritten or
//     deleted";
//   - "Although you can't delete a protected object version, you can still
//     create a delete marker for that object. Placing a delete marker on an
//     object doesn't delete any object version" and "delete markers are not
//     WORM-protected, regardless of any retention period or legal hold in
//     place on the underlying object" ("Object Lock considerations",
//     Managing delete markers with Object Lock, object-lock-managing.html);
//   - a DELETE without a version id on a versioning-enabled bucket only
//     inserts a delete marker ("Working with delete markers",
//     DeleteMarker.html).
//
// Mover.Delete sends exactly such a delete (no version id, pinned to the
// ETag), in a DeleteObjects batch or alone (SingleDeletes); both paths
// run here, through a client that computes request checksums only when
// required, as the connection's does. The test also checks that the lock
// is real (deleting the version by id is refused), so a store that
// ignored Object Lock could not pass it.
//
// Checked on the pinned MinIO: Object Lock buckets, legal holds and both
// retention modes behave as AWS documents for a delete without a version
// id; MinIO does not refuse the If-Match of DeleteObject or the ETag of a
// DeleteObjects entry on a lock-enabled bucket (it ignores both on every
// bucket, see ARCHITECTURE.md: the condition is AWS's to check, and
// TestMoveDeleteIsConditional checks we send it).
func TestMoveOfLockedObjectLeavesADeleteMarker(t *testing.T) {
	srv := miniotest.Shared(t)
	root := srv.Root()
	client := s3.New(root.Options(), func(o *s3.Options) {
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	})
	bucket := newLockedBucket(t, srv)
	until := time.Now().Add(time.Hour).UTC()
	locks := []struct {
		name string
		in   s3.PutObjectInput
	}{
		{"legal-hold", s3.PutObjectInput{ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn}},
		{"governance", s3.PutObjectInput{ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: &until}},
		{"compliance", s3.PutObjectInput{ObjectLockMode: types.ObjectLockModeCompliance, ObjectLockRetainUntilDate: &until}},
	}
	for _, single := range []bool{false, true} {
		path := "batched"
		if single {
			path = "single"
		}
		for _, lock := range locks {
			t.Run(path+"/"+lock.name, func(t *testing.T) {
				rel := path + "/" + lock.name + ".csv"
				body := randomBytes(t, 1000)
				// Uploaded with the root client: a PUT with lock
				// parameters needs a checksum (Content-MD5 or
				// x-amz-checksum-*), which it computes.
				src := putObject(t, root, bucket, "in/", rel, body, lock.in)
				if src.VersionID == "" {
					t.Fatal("no version id on an Object Lock bucket")
				}
				mover := &Mover{S3: client, Bucket: bucket, BasePath: "in/", SingleDeletes: single}
				res, err := mover.Move(t.Context(), src, Archive, nil)
				if err != nil {
					t.Fatalf("move of a locked object: %v", err)
				}
				if got, _ := readObject(t, client, bucket, res.Key); !bytes.Equal(got, body) {
					t.Error("archived copy differs from the original")
				}
				if exists(t, client, bucket, src.Key) {
					t.Error("the locked file is still current in the inbox: the delete left no delete marker")
				}

				versions, err := root.ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: &bucket, Prefix: &src.Key})
				if err != nil {
					t.Fatal(err)
				}
				var kept bool
				for _, v := range versions.Versions {
					if aws.ToString(v.Key) == src.Key && aws.ToString(v.VersionId) == src.VersionID {
						kept = !aws.ToBool(v.IsLatest)
					}
				}
				if !kept || len(versions.Versions) != 1 {
					t.Errorf("versions of %s: %+v, want the locked version %s kept as a non-current version", src.Key, versions.Versions, src.VersionID)
				}
				if len(versions.DeleteMarkers) != 1 || !aws.ToBool(versions.DeleteMarkers[0].IsLatest) {
					t.Errorf("delete markers of %s: %+v, want one, current", src.Key, versions.DeleteMarkers)
				}
				if got, _ := readVersion(t, root, bucket, src.Key, src.VersionID); !bytes.Equal(got, body) {
					t.Error("the locked version's body changed")
				}

				// The lock holds: the version itself cannot be deleted
				// (so the delete above really met a locked object). AWS
				// refuses it with 403 AccessDenied; MinIO with 400
				// InvalidRequest "Object is WORM protected and cannot be
				// overwritten".
				_, err = root.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: &bucket, Key: &src.Key, VersionId: &src.VersionID})
				var apiErr smithy.APIError
				if !errors.Is(connector.Classify(err, miniotest.Region), connector.ErrAccessDenied) &&
					(!errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidRequest" || !strings.Contains(apiErr.ErrorMessage(), "WORM")) {
					t.Errorf("delete of the locked version by id: %v, want it refused", err)
				}
			})
		}
	}
}

func readVersion(t *testing.T, client *s3.Client, bucket, key, version string) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: &key, VersionId: &version})
	if err != nil {
		t.Fatalf("get %s version %s: %v", key, version, err)
	}
	defer out.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(out.Body); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), out
}

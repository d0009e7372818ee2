package connector

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Check names, in the order Validate runs them.
const (
	CheckAssumeRole = "assume role"
	// CheckTrustPolicy assumes the role with a wrong External ID and
	// requires STS to refuse it (see checkTrustPolicy).
	CheckTrustPolicy = "wrong External ID refused"
	CheckBucket      = "bucket exists in region"
	CheckList        = "list prefix"
	CheckReadWrite   = "write/read/copy/delete marker"
)

// ArchiveFolder and ErrorFolder are the subfolders of the base path that
// receive processed files. Files under them are not waiting for import.
const (
	ArchiveFolder = "archive/"
	ErrorFolder   = "error/"
)

// CheckResult is the outcome of one validation check: passed (Err nil,
// Skipped empty), failed (Err set) or skipped (Skipped set: the check could
// not mean anything here, e.g. the trust-policy check against an STS that
// ignores External IDs). A skipped check does not fail the report.
type CheckResult struct {
	Name    string
	Detail  string // what was checked, e.g. the role ARN or the marker key
	Err     error  // nil when the check passed or was skipped
	Skipped string // why the check did not run; "" when it ran
}

// States of a check, as CheckResult.State names them.
const (
	CheckPassed  = "ok"
	CheckFailed  = "FAIL"
	CheckSkipped = "SKIP"
)

// State is CheckPassed, CheckFailed or CheckSkipped.
func (c CheckResult) State() string {
	switch {
	case c.Err != nil:
		return CheckFailed
	case c.Skipped != "":
		return CheckSkipped
	}
	return CheckPassed
}

// Report is the outcome of Validate: the checks that ran, in order, and the
// number of files waiting under the base path when the listing succeeded.
type Report struct {
	Checks []CheckResult
	Files  int
	// FilesAtLeast: the count stopped at CountCap; there are at least
	// Files files waiting.
	FilesAtLeast bool
}

// OK reports whether no check failed (a skipped check does not fail it) and
// the report has any check at all.
func (r *Report) OK() bool {
	for _, c := range r.Checks {
		if c.Err != nil {
			return false
		}
	}
	return len(r.Checks) > 0
}

// SuccessLine is the message users see when every check passed.
func (r *Report) SuccessLine() string {
	if r.FilesAtLeast {
		return fmt.Sprintf("Connection successful. Found at least %d files in bucket.", r.Files)
	}
	return fmt.Sprintf("Connection successful. Found %d files in bucket.", r.Files)
}

// Failure classes of a validation, each with its own troubleshooting advice.
type FailureClass int

const (
	// FailureAssumeRole: the role could not be assumed.
	FailureAssumeRole FailureClass = iota + 1
	// FailureS3Access: the role was assumed but S3 operations fail.
	FailureS3Access
	// FailureBucketRegion: the bucket does not exist in the configured region.
	FailureBucketRegion
	// FailureExternalID: the External ID is invalid.
	FailureExternalID
	// FailureOther: network trouble, cancellation, throttling, ...
	FailureOther
	// FailureCopyAccess: the role writes and reads under the base path, but
	// S3 refused the server-side copy every move makes (tags, versions).
	FailureCopyAccess
	// FailureTrustPolicy: the role can be assumed with a wrong External ID;
	// its trust policy lacks the sts:ExternalId condition.
	FailureTrustPolicy
)

// ValidationError is returned by Validate when a check fails.
type ValidationError struct {
	Check string
	Class FailureClass
	Err   error
}

func (e *ValidationError) Error() string { return e.Check + ": " + e.Err.Error() }
func (e *ValidationError) Unwrap() error { return e.Err }

// Validate runs the connection checks in order and stops at the first
// failure: assume the role; assume it again with a random wrong External ID,
// which STS must refuse (checkTrustPolicy; skipped against an STS that is
// not AWS's, and without WithPlatform, so callers pass it); the bucket
// exists in the configured region; list
// the base path (counting files waiting, not those under archive/ or error/);
// move a small tagged marker under <base_path>archive/ the way ingestion
// moves a file (checkReadWrite), which proves every object permission a run
// needs and, on SSE-KMS buckets, the KMS key policy.
//
// The report lists every check that ran. The error, if any, is a
// *ValidationError whose Class selects the troubleshooting advice.
func (c *Connection) Validate(ctx context.Context, opts ...ValidateOption) (*Report, error) {
	var o validateOptions
	for _, opt := range opts {
		opt(&o)
	}
	r := &Report{}
	run := func(name, detail string, check func() (string, error)) error {
		d, err := check()
		if d != "" {
			detail = d
		}
		var skip *skippedCheck
		if errors.As(err, &skip) {
			r.Checks = append(r.Checks, CheckResult{Name: name, Detail: detail, Skipped: skip.reason})
			return nil
		}
		r.Checks = append(r.Checks, CheckResult{Name: name, Detail: detail, Err: err})
		if err != nil {
			return &ValidationError{Check: name, Class: classifyFailure(name, err), Err: err}
		}
		return nil
	}
	if err := run(CheckAssumeRole, c.cfg.RoleARN(), func() (string, error) {
		_, err := c.AssumeRole(ctx)
		return "", err
	}); err != nil {
		return r, err
	}
	if err := run(CheckTrustPolicy, c.cfg.RoleARN(), func() (string, error) {
		return c.checkTrustPolicy(ctx, o)
	}); err != nil {
		return r, err
	}
	if err := run(CheckBucket, c.cfg.Bucket+" in "+c.cfg.Region, func() (string, error) {
		return "", c.checkBucket(ctx)
	}); err != nil {
		return r, err
	}
	if err := run(CheckList, "s3://"+c.cfg.Bucket+"/"+c.cfg.BasePath, func() (string, error) {
		limit := CountCap
		if o.countLimit > 0 {
			limit = o.countLimit
		}
		n, more, err := c.CountWaiting(ctx, limit)
		r.Files, r.FilesAtLeast = n, more
		atLeast := ""
		if more {
			atLeast = "at least "
		}
		return fmt.Sprintf("s3://%s/%s (%s%d files waiting)", c.cfg.Bucket, c.cfg.BasePath, atLeast, n), err
	}); err != nil {
		return r, err
	}
	if err := run(CheckReadWrite, "", func() (string, error) {
		return c.checkReadWrite(ctx)
	}); err != nil {
		return r, err
	}
	return r, nil
}

func classifyFailure(check string, err error) FailureClass {
	switch {
	case errors.Is(err, ErrTrustPolicyOpen):
		return FailureTrustPolicy
	case check == CheckTrustPolicy:
		// No AccessDenied and no credentials: unproven, not a permission
		// problem of the customer's.
		return FailureOther
	case errors.Is(err, ErrInvalidExternalID):
		return FailureExternalID
	case check == CheckAssumeRole:
		if errors.Is(err, ErrAccessDenied) || errors.Is(err, ErrNotFound) {
			return FailureAssumeRole
		}
		return FailureOther
	case errors.Is(err, ErrWrongRegion) || errors.Is(err, ErrNotFound):
		return FailureBucketRegion
	case errors.Is(err, ErrAccessDenied):
		if step, ok := MarkerStep(err); ok && step == MarkerCopy {
			return FailureCopyAccess
		}
		return FailureS3Access
	}
	return FailureOther
}

// checkBucket confirms the bucket exists and answers in the configured
// region. HeadBucket is the natural call, but the prefix-scoped ListBucket
// statement denies it (no s3:prefix key), and a HEAD error has no body to say
// why; in those cases a one-key listing of the base path decides.
func (c *Connection) checkBucket(ctx context.Context) error {
	region := c.cfg.Region
	out, err := c.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(c.cfg.Bucket)})
	if err == nil {
		if actual := aws.ToString(out.BucketRegion); actual != "" && actual != region {
			return &RegionError{Configured: region, Actual: actual, Err: errors.New("HeadBucket answered from another region")}
		}
		return nil
	}
	if err := Classify(err, region); errors.Is(err, ErrNotFound) {
		return fmt.Errorf("bucket %q: %w", c.cfg.Bucket, err)
	}
	_, err = c.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket:       aws.String(c.cfg.Bucket),
		Prefix:       aws.String(c.cfg.BasePath),
		MaxKeys:      aws.Int32(1),
		EncodingType: ListEncoding,
	})
	if err != nil {
		return fmt.Errorf("bucket %q: %w", c.cfg.Bucket, Classify(err, region))
	}
	return nil
}

// CountWaiting lists the base path and counts the files waiting for import:
// every key except folder markers and those under archive/ and error/,
// which it never reads (InboxListing), so validating a connection with
// years of archive costs what validating a new one does.
//
// It stops at limit files (0: no limit) and then reports more: validation
// runs at every start and reload, and counting millions of waiting files
// each time would cost thousands of LIST requests for a number nobody
// needs exactly.
func (c *Connection) CountWaiting(ctx context.Context, limit int) (n int, more bool, err error) {
	_, err = c.Inbox().Walk(ctx, func(InboxObject) error {
		if limit > 0 && n == limit {
			more = true
			return errEnough
		}
		n++
		return nil
	})
	if errors.Is(err, errEnough) {
		err = nil
	}
	return n, more, err
}

// CountCap is where validation stops counting waiting files (ten LIST
// pages).
const CountCap = 10000

var errEnough = errors.New("counted enough")

// markerPrefix names validation markers; they live under archive/ so they
// are never mistaken for files to import.
const markerPrefix = ".s3connector-validate-"

// markerTagging is the marker's tag-set (URL query encoded, as x-amz-tagging
// wants it): a tagged marker makes the copy carry tags, as many customers'
// files do (services such as GuardDuty Malware Protection tag on upload).
const markerTagging = "s3connector=validation-marker"

// Steps of the marker check, as MarkerStep reports them.
const (
	MarkerPut    = "put"
	MarkerGet    = "get"
	MarkerCopy   = "copy"
	MarkerDelete = "delete"
)

// markerError is a failed step of the marker check.
type markerError struct {
	step, key string
	err       error
}

func (e *markerError) Error() string { return fmt.Sprintf("%s %q: %v", e.step, e.key, e.err) }
func (e *markerError) Unwrap() error { return e.err }

// MarkerStep reports which step of the marker check err comes from
// (MarkerPut, MarkerGet, MarkerCopy or MarkerDelete), so that advice can name
// the permission the step needs.
func MarkerStep(err error) (string, bool) {
	var me *markerError
	if errors.As(err, &me) {
		return me.step, true
	}
	return "", false
}

// checkReadWrite moves a marker the way ingestion moves a file, so that a
// passing validation means files will really be moved, not only read:
//
//  1. PutObject a tagged marker (If-None-Match: *, the name is random);
//  2. GetObject it with If-Match on its ETag and compare the bytes;
//  3. CopyObject it to a second marker name as archive.Move copies: the
//     source pinned to the version written (?versionId=, unless the bucket
//     is unversioned or answers the version id "null"), CopySourceIfMatch,
//     If-None-Match: *, MetadataDirective and TaggingDirective COPY;
//  4. DeleteObject both with If-Match on their ETags and no version id.
//
// The bucket's default encryption applies, so on an SSE-KMS bucket this also
// proves the KMS key policy (GenerateDataKey to write, Decrypt to read and
// copy). Like a move it never deletes a version: on a versioned bucket both
// markers stay as noncurrent versions behind delete markers, which the
// detail says. It returns the check's detail, naming both keys.
func (c *Connection) checkReadWrite(ctx context.Context) (string, error) {
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", err
	}
	bucket, region := c.cfg.Bucket, c.cfg.Region
	key := c.cfg.BasePath + ArchiveFolder + markerPrefix + hex.EncodeToString(nonce[:])
	copyKey := key + "-copy"
	detail := "s3://" + bucket + "/" + key + " copied to " + copyKey
	body := []byte("s3connector validation marker, safe to delete; written " + time.Now().UTC().Format(time.RFC3339) + "\n")

	put, err := c.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("text/plain"),
		Tagging:       aws.String(markerTagging),
		// The name is random; this only guards against ever replacing an
		// object we did not write.
		IfNoneMatch: aws.String("*"),
		// As every upload of the connector's: see ContentMD5. Without it
		// validation would fail on a bucket with a default retention,
		// where ingestion's own uploads succeed.
		ContentMD5: aws.String(ContentMD5(body)),
	})
	if err != nil {
		return detail, &markerError{MarkerPut, key, Classify(err, region)}
	}
	etag, version := aws.ToString(put.ETag), aws.ToString(put.VersionId)
	left := []markerObject{{key, etag}}
	fail := func(step, k string, err error) (string, error) {
		return detail, &markerError{step, k, c.removeMarkers(ctx, Classify(err, region), left)}
	}

	got, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), IfMatch: aws.String(etag)})
	if err == nil {
		var read []byte
		read, err = io.ReadAll(got.Body)
		got.Body.Close()
		if err == nil && !bytes.Equal(read, body) {
			err = fmt.Errorf("marker read back differs from what was written (%d bytes, want %d)", len(read), len(body))
		}
	}
	if err != nil {
		return fail(MarkerGet, key, err)
	}

	cp, err := c.s3.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket:            aws.String(bucket),
		Key:               aws.String(copyKey),
		CopySource:        aws.String(copySource(bucket, key, version)),
		CopySourceIfMatch: aws.String(etag),
		IfNoneMatch:       aws.String("*"),
		MetadataDirective: types.MetadataDirectiveCopy,
		TaggingDirective:  types.TaggingDirectiveCopy,
	})
	if err != nil {
		return fail(MarkerCopy, copyKey, err)
	}
	copyETag := etag
	if cp.CopyObjectResult != nil && aws.ToString(cp.CopyObjectResult.ETag) != "" {
		copyETag = aws.ToString(cp.CopyObjectResult.ETag)
	}
	left = append(left, markerObject{copyKey, copyETag})

	// As a move: the original first, once its copy exists.
	for len(left) > 0 {
		m := left[0]
		if err := c.deleteMarker(ctx, m); err != nil {
			return detail, &markerError{MarkerDelete, m.key, c.removeMarkers(ctx, Classify(err, region), left[1:], m.key)}
		}
		left = left[1:]
	}
	if n := c.removeStaleMarkers(ctx); n > 0 {
		detail += fmt.Sprintf("; removed %d marker(s) an earlier validation left behind", n)
	}
	switch {
	case version == "null":
		detail += "; versioning is suspended: a delete marker stays at each key"
	case version != "":
		detail += "; versioned bucket: both markers stay as noncurrent versions behind delete markers (nothing is ever deleted by version)"
	}
	return detail, nil
}

// ContentMD5 is the Content-MD5 header of an upload of body: the base64 of
// its MD5 (RFC 1864). Every PutObject the connector sends carries it (the
// lease, state records, error/ reports, the validation marker). On a bucket
// with a default Object Lock retention every new object gets a retention
// period, and "The Content-MD5 or x-amz-sdk-checksum-algorithm header is
// required for any request to upload an object with a retention period
// configured using Amazon S3 Object Lock" (PutObject, Amazon S3 API
// Reference); without it AWS answers 400 InvalidRequest "Content-MD5 HTTP
// header is required for Put Object requests with Object Lock parameters".
// The connection's client computes request checksums only where the API
// model requires them (RequestChecksumCalculation WhenRequired), which
// PutObject does not declare, so nothing else would be sent. Content-MD5
// is the integrity header every S3-compatible store understands (MinIO
// checks one it is given, and does not require it).
func ContentMD5(body []byte) string {
	sum := md5.Sum(body)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// markerObject is a marker written by checkReadWrite and not yet deleted.
type markerObject struct{ key, etag string }

// deleteMarker deletes a marker as a move deletes the original: If-Match on
// its ETag, never a version id.
func (c *Connection) deleteMarker(ctx context.Context, m markerObject) error {
	_, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket:  aws.String(c.cfg.Bucket),
		Key:     aws.String(m.key),
		IfMatch: aws.String(m.etag),
	})
	return err
}

// removeMarkers deletes, best effort, the markers a failed check leaves, and
// returns err saying which are left behind: stuck and those it could not
// remove.
func (c *Connection) removeMarkers(ctx context.Context, err error, left []markerObject, stuck ...string) error {
	// A validation cancelled part-way (the daemon stopping, a client gone)
	// still removes its markers: they are ours, in the customer's archive/.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, m := range left {
		if c.deleteMarker(ctx, m) != nil {
			stuck = append(stuck, m.key)
		}
	}
	if len(stuck) > 0 {
		return fmt.Errorf("%w (left behind, safe to delete: %s)", err, strings.Join(stuck, ", "))
	}
	return err
}

// copySource is the x-amz-copy-source of bucket/key, URL-encoded per path
// segment ('+' too, which S3 would read as a space), pinned to versionID
// unless it is empty or "null": AWS answers "null" for objects written while
// versioning was suspended, and that id names whatever the null version is
// by the time the request arrives.
func copySource(bucket, key, versionID string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(url.PathEscape(s), "+", "%2B")
	}
	src := bucket + "/" + strings.Join(segs, "/")
	if versionID != "" && versionID != "null" {
		src += "?versionId=" + url.QueryEscape(versionID)
	}
	return src
}

// staleMarkerAge is how old a marker must be before a later validation
// removes it: older than any validation still under way (one takes
// seconds), so a concurrent one elsewhere keeps its own.
var staleMarkerAge = 10 * time.Minute

// removeStaleMarkers deletes, best effort, the markers earlier validations
// could not remove (their delete failed, say under throttling): they are
// ours, named markerPrefix under archive/, and nothing else would ever
// remove them. It lists only that prefix and returns how many it removed.
func (c *Connection) removeStaleMarkers(ctx context.Context) int {
	prefix := c.cfg.BasePath + ArchiveFolder + markerPrefix
	out, err := c.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(c.cfg.Bucket), Prefix: aws.String(prefix), EncodingType: ListEncoding, MaxKeys: aws.Int32(100),
	})
	if err != nil {
		return 0
	}
	cutoff := time.Now().Add(-staleMarkerAge)
	n := 0
	for _, o := range out.Contents {
		key, err := ListedKey(out.EncodingType, aws.ToString(o.Key))
		if err != nil || !strings.HasPrefix(key, prefix) || !aws.ToTime(o.LastModified).Before(cutoff) {
			continue
		}
		if c.deleteMarker(ctx, markerObject{key, aws.ToString(o.ETag)}) == nil {
			n++
		}
	}
	return n
}

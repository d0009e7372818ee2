package connector

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Check names, in the order Validate runs them.
const (
	CheckAssumeRole = "assume role"
	CheckBucket     = "bucket exists in region"
	CheckList       = "list prefix"
	CheckReadWrite  = "write, read and delete marker"
)

// ArchiveFolder and ErrorFolder are the subfolders of the base path that
// receive processed files. Files under them are not waiting for import.
const (
	ArchiveFolder = "archive/"
	ErrorFolder   = "error/"
)

// CheckResult is the outcome of one validation check.
type CheckResult struct {
	Name   string
	Detail string // what was checked, e.g. the role ARN or the marker key
	Err    error  // nil when the check passed
}

// Report is the outcome of Validate: the checks that ran, in order, and the
// number of files waiting under the base path when the listing succeeded.
type Report struct {
	Checks []CheckResult
	Files  int
}

// OK reports whether every check passed.
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
// failure: assume the role; the bucket exists in the configured region; list
// the base path (counting files waiting, not those under archive/ or error/);
// write, read back and delete a small marker under <base_path>archive/ (which
// proves Put/Get/Delete and, on SSE-KMS buckets, the KMS key policy).
//
// The report lists every check that ran. The error, if any, is a
// *ValidationError whose Class selects the troubleshooting advice.
func (c *Connection) Validate(ctx context.Context) (*Report, error) {
	r := &Report{}
	run := func(name, detail string, check func() (string, error)) error {
		d, err := check()
		if d != "" {
			detail = d
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
	if err := run(CheckBucket, c.cfg.Bucket+" in "+c.cfg.Region, func() (string, error) {
		return "", c.checkBucket(ctx)
	}); err != nil {
		return r, err
	}
	if err := run(CheckList, "s3://"+c.cfg.Bucket+"/"+c.cfg.BasePath, func() (string, error) {
		n, err := c.CountWaiting(ctx)
		r.Files = n
		return fmt.Sprintf("s3://%s/%s (%d files waiting)", c.cfg.Bucket, c.cfg.BasePath, n), err
	}); err != nil {
		return r, err
	}
	if err := run(CheckReadWrite, "", func() (string, error) {
		key, err := c.checkReadWrite(ctx)
		return "s3://" + c.cfg.Bucket + "/" + key, err
	}); err != nil {
		return r, err
	}
	return r, nil
}

func classifyFailure(check string, err error) FailureClass {
	switch {
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
// every key except folder markers and those under archive/ and error/.
func (c *Connection) CountWaiting(ctx context.Context) (int, error) {
	base := c.cfg.BasePath
	archive, errDir := base+ArchiveFolder, base+ErrorFolder
	p := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{
		Bucket:       aws.String(c.cfg.Bucket),
		Prefix:       aws.String(base),
		EncodingType: ListEncoding,
	})
	n := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, fmt.Errorf("list s3://%s/%s: %w", c.cfg.Bucket, base, Classify(err, c.cfg.Region))
		}
		for _, o := range page.Contents {
			k, err := ListedKey(page.EncodingType, aws.ToString(o.Key))
			if err != nil {
				return n, fmt.Errorf("list s3://%s/%s: %w", c.cfg.Bucket, base, err)
			}
			if strings.HasSuffix(k, "/") || strings.HasPrefix(k, archive) || strings.HasPrefix(k, errDir) {
				continue
			}
			n++
		}
	}
	return n, nil
}

// markerPrefix names validation markers; they live under archive/ so they
// are never mistaken for files to import.
const markerPrefix = ".s3connector-validate-"

// checkReadWrite writes, reads back and deletes a marker object. The bucket's
// default encryption applies to it, so on an SSE-KMS bucket it also proves the
// KMS key policy (GenerateDataKey to write, Decrypt to read).
func (c *Connection) checkReadWrite(ctx context.Context) (string, error) {
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", err
	}
	key := c.cfg.BasePath + ArchiveFolder + markerPrefix + hex.EncodeToString(nonce[:])
	body := []byte("s3connector validation marker, safe to delete; written " + time.Now().UTC().Format(time.RFC3339) + "\n")
	region := c.cfg.Region

	_, err := c.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(c.cfg.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String("text/plain"),
		// The name is random; this only guards against ever replacing an
		// object we did not write.
		IfNoneMatch: aws.String("*"),
	})
	if err != nil {
		return key, fmt.Errorf("put %q: %w", key, Classify(err, region))
	}
	got, err := c.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(key)})
	if err == nil {
		var read []byte
		read, err = io.ReadAll(got.Body)
		got.Body.Close()
		if err == nil && !bytes.Equal(read, body) {
			err = fmt.Errorf("marker read back differs from what was written (%d bytes, want %d)", len(read), len(body))
		}
	}
	if err != nil {
		// Best effort: do not leave the marker behind.
		_, _ = c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(key)})
		return key, fmt.Errorf("get %q: %w", key, Classify(err, region))
	}
	if _, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(c.cfg.Bucket), Key: aws.String(key)}); err != nil {
		return key, fmt.Errorf("delete %q (the marker is left behind and safe to delete): %w", key, Classify(err, region))
	}
	return key, nil
}

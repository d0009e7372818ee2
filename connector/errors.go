package connector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// Error classes. Every AWS error that leaves this package is wrapped by
// Classify so that callers check it with errors.Is against one of these and
// never look at AWS error types themselves.
var (
	// ErrAccessDenied: the credentials were rejected or the policy does not
	// allow the operation (403, AccessDenied, InvalidAccessKeyId, ...).
	ErrAccessDenied = errors.New("access denied")
	// ErrNotFound: the bucket or key does not exist (404, NoSuchBucket, ...).
	ErrNotFound = errors.New("not found")
	// ErrWrongRegion: the bucket lives in another region than the request
	// was signed for (301 PermanentRedirect, AuthorizationHeaderMalformed).
	ErrWrongRegion = errors.New("wrong region")
	// ErrThrottled: the service asked us to slow down (503 SlowDown, 429).
	ErrThrottled = errors.New("throttled")
	// ErrInvalidExternalID: the External ID is malformed, either by our own
	// check or by STS's parameter validation.
	ErrInvalidExternalID = errors.New("invalid external id")
	// ErrPreconditionFailed: a conditional request (If-Match,
	// CopySourceIfMatch, If-None-Match) did not hold: the object changed or
	// already exists (412 PreconditionFailed, 409 ConditionalRequestConflict).
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrSSECUnsupported: the object is encrypted with a customer-provided
	// key (SSE-C), which the connector cannot read.
	ErrSSECUnsupported = errors.New("object is encrypted with a customer-provided key (SSE-C), which s3connector does not support; re-upload it with SSE-S3 or SSE-KMS")
	// ErrArchivedObject: the object is in S3 Glacier Flexible Retrieval,
	// Glacier Deep Archive or an Intelligent-Tiering archive tier and must
	// be restored before it can be read (403 InvalidObjectState). It is not
	// an access problem.
	ErrArchivedObject = errors.New("object is in an archive storage class (S3 Glacier Flexible Retrieval, Deep Archive or an Intelligent-Tiering archive tier) and cannot be read until it is restored; restore it (RestoreObject) or copy it to a readable storage class")
)

// classified wraps an AWS error with its class; errors.Is matches both the
// class and anything in the wrapped chain.
type classified struct {
	class error
	err   error
}

func (e *classified) Error() string        { return e.class.Error() + ": " + e.err.Error() }
func (e *classified) Unwrap() error        { return e.err }
func (e *classified) Is(target error) bool { return target == e.class }

// RegionError reports a request that reached the bucket in the wrong region.
// Actual is the bucket's region when the service told us, else "".
type RegionError struct {
	Configured string
	Actual     string
	Err        error
}

func (e *RegionError) Error() string {
	if e.Actual != "" {
		return fmt.Sprintf("wrong region: bucket is in %s, connection is configured for %s", e.Actual, e.Configured)
	}
	return fmt.Sprintf("wrong region: bucket is not in %s: %v", e.Configured, e.Err)
}
func (e *RegionError) Unwrap() error        { return e.Err }
func (e *RegionError) Is(target error) bool { return target == ErrWrongRegion }

var (
	accessDeniedCodes = map[string]bool{
		"AccessDenied": true, "AccessDeniedException": true, "AllAccessDisabled": true,
		"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "InvalidClientTokenId": true,
		"ExpiredToken": true, "ExpiredTokenException": true, "Forbidden": true,
		"AccountProblem": true, "InvalidToken": true, "KMS.AccessDeniedException": true,
		"KMS.DisabledException": true, "UnrecognizedClientException": true,
	}
	notFoundCodes = map[string]bool{
		"NoSuchBucket": true, "NoSuchKey": true, "NotFound": true, "NoSuchEntity": true,
	}
	wrongRegionCodes = map[string]bool{
		"PermanentRedirect": true, "IllegalLocationConstraintException": true,
		"AuthorizationQueryParametersError": true, "IncorrectEndpoint": true,
	}
	throttledCodes = map[string]bool{
		"SlowDown": true, "Throttling": true, "ThrottlingException": true, "RequestLimitExceeded": true,
		"TooManyRequests": true, "TooManyRequestsException": true, "ThrottledException": true,
		"RequestThrottled": true, "RequestThrottledException": true, "ProvisionedThroughputExceededException": true,
	}
	expectingRegion = regexp.MustCompile(`expecting '([a-z0-9-]+)'`)
)

// sseCKeyMissing is how S3 says that an object was written with a
// customer-provided key (SSE-C) that the request did not carry.
const sseCKeyMissing = "stored using a form of server side encryption"

// isSSECKeyMissing reports whether an error answer means "this object is
// encrypted with SSE-C and the request has no key". A GetObject, a
// CopyObject (or UploadPartCopy) of such an object without the key is
// answered 400 Bad Request, code InvalidRequest, "The object was stored
// using a form of Server Side Encryption. The correct parameters must be
// provided to retrieve the object." (AWS's and MinIO's wording alike); the
// key headers are required to read or copy the object ("If you encrypt an
// object by using server-side encryption with customer-provided encryption
// keys (SSE-C) when you store the object in Amazon S3, then when you GET
// the object, you must use the following headers", GetObject, and
// CopySourceSSECustomerKey, CopyObject, Amazon S3 API Reference).
//
// All three must hold. The code alone is not enough: InvalidRequest is
// S3's 400 for many unrelated refusals (a copy source too large, a missing
// Content-MD5 on an Object Lock bucket, MinIO's "Object is WORM
// protected"), and a text match under any code misread, say, a 403
// AccessDenied for an upload that names SSE-C on a bucket blocking it
// ("rejected with an HTTP 403 AccessDenied error", Blocking or unblocking
// SSE-C for a general purpose bucket, Amazon S3 User Guide), or the 400
// "Requests specifying Server Side Encryption with Customer provided keys
// must be made over a secure connection" of a request that sent a key.
//
// A HeadObject of an SSE-C object without the key is not recognised: "if
// the HEAD request generates an error, it returns a generic code, such as
// 400 Bad Request ... It's not possible to retrieve the exact exception"
// (HeadObject, Amazon S3 API Reference), and the SDK names a bodiless 400
// "BadRequest". A HEAD is also answered 400 for other reasons (a request
// signed for another region, a malformed header), so calling every bare
// 400 SSE-C would skip good files and tell the customer to re-encrypt
// them; it stays unclassified (retried). A caller that needs the reason
// must ask with a GET.
func isSSECKeyMissing(status int, code, msg string) bool {
	return status == http.StatusBadRequest && code == "InvalidRequest" &&
		strings.Contains(strings.ToLower(msg), sseCKeyMissing)
}

// Classify wraps err with its class (ErrAccessDenied, ErrNotFound,
// ErrWrongRegion, ErrThrottled, ErrInvalidExternalID) when it recognises it,
// and returns err unchanged otherwise (network errors, cancellations, ...).
// region is the region the request was signed for; it fills RegionError.
func Classify(err error, region string) error {
	if err == nil {
		return nil
	}
	var (
		ce *classified
		re *RegionError
	)
	if errors.As(err, &ce) || errors.As(err, &re) {
		return err
	}
	code, msg := "", ""
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code, msg = apiErr.ErrorCode(), apiErr.ErrorMessage()
	}
	status := 0
	var header http.Header
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
		if respErr.Response != nil {
			header = respErr.Response.Header
		}
	}
	switch {
	case code == "ValidationError" && strings.Contains(strings.ToLower(msg), "externalid"):
		return &classified{ErrInvalidExternalID, err}
	case wrongRegionCodes[code] || status == http.StatusMovedPermanently ||
		(code == "AuthorizationHeaderMalformed" && strings.Contains(msg, "region")):
		actual := header.Get("X-Amz-Bucket-Region")
		if m := expectingRegion.FindStringSubmatch(msg); actual == "" && m != nil {
			actual = m[1]
		}
		return &RegionError{Configured: region, Actual: actual, Err: err}
	case code == "PreconditionFailed" || code == "ConditionalRequestConflict" || status == http.StatusPreconditionFailed:
		return &classified{ErrPreconditionFailed, err}
	case isSSECKeyMissing(status, code, msg):
		return &classified{ErrSSECUnsupported, err}
	case code == "InvalidObjectState":
		// By code, before the 403 it comes with: "Object is archived and
		// inaccessible until restored" (GetObject, Amazon S3 API Reference).
		return &classified{ErrArchivedObject, err}
	case accessDeniedCodes[code] || status == http.StatusForbidden:
		return &classified{ErrAccessDenied, err}
	case notFoundCodes[code] || status == http.StatusNotFound:
		return &classified{ErrNotFound, err}
	case throttledCodes[code] || status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		return &classified{ErrThrottled, err}
	}
	return err
}

// ResultLabel names the outcome of one S3 request for metrics: ok,
// access_denied, not_found, precondition_failed, throttled, wrong_region,
// canceled or error. The set is fixed, so it is a safe label value.
func ResultLabel(err error, region string) string {
	if err == nil {
		return "ok"
	}
	err = Classify(err, region)
	switch {
	case errors.Is(err, ErrAccessDenied):
		return "access_denied"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrPreconditionFailed):
		return "precondition_failed"
	case errors.Is(err, ErrThrottled):
		return "throttled"
	case errors.Is(err, ErrWrongRegion):
		return "wrong_region"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}

package connector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// apiError builds the error shape the SDK returns for an S3 error response:
// an OperationError wrapping a ResponseError wrapping the API error. The
// messages are AWS's own; classes MinIO cannot produce on demand (SSE-C
// needs TLS there, throttling is not injectable) are covered this way.
func apiError(status int, code, msg string) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: http.Header{}}},
			Err:      &smithy.GenericAPIError{Code: code, Message: msg},
		},
	}}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err    error
		class  error
		result string
	}{
		{apiError(403, "AccessDenied", "Access Denied"), ErrAccessDenied, "access_denied"},
		{apiError(404, "NoSuchKey", "The specified key does not exist."), ErrNotFound, "not_found"},
		{apiError(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold"), ErrPreconditionFailed, "precondition_failed"},
		{apiError(503, "SlowDown", "Please reduce your request rate."), ErrThrottled, "throttled"},
		// SSE-C: GetObject or CopyObject of an SSE-C object without its
		// key, AWS's answer (and MinIO's, which gives it only over TLS).
		{apiError(400, "InvalidRequest", "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object."), ErrSSECUnsupported, "error"},
		// Not SSE-C, although the text names it: a 403 for an upload that
		// names SSE-C on a bucket blocking SSE-C (AWS documents the status
		// and code; the message here is ours), and the 400 for a request
		// that sent a key over plain HTTP. Neither says the object is
		// encrypted with a key we lack.
		{apiError(403, "AccessDenied", "Requests specifying SSE-C (customer-provided keys) are blocked for this bucket"), ErrAccessDenied, "access_denied"},
		{apiError(400, "InvalidRequest", "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection."), nil, "error"},
		// The right text under another status or code is not S3's SSE-C
		// answer either.
		{apiError(403, "InvalidRequest", "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object."), ErrAccessDenied, "access_denied"},
		{apiError(400, "InvalidArgument", "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object."), nil, "error"},
		// Other 400 InvalidRequest answers are not SSE-C: MinIO's refusal
		// to delete a locked version, AWS's missing checksum on an Object
		// Lock bucket.
		{apiError(400, "InvalidRequest", "Object is WORM protected and cannot be overwritten"), nil, "error"},
		{apiError(400, "InvalidRequest", "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters"), nil, "error"},
		// HeadObject of an SSE-C object without its key: a bodiless 400,
		// which the SDK names BadRequest. It cannot be told from other
		// bare 400s, so it stays unclassified (see isSSECKeyMissing).
		{apiError(400, "BadRequest", "Bad Request"), nil, "error"},
		// AWS only (MinIO has no archive storage classes): a 403 that is not
		// an access problem, recognised by its code.
		{apiError(403, "InvalidObjectState", "The operation is not valid for the object's storage class"), ErrArchivedObject, "error"},
		{apiError(301, "PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified endpoint."), ErrWrongRegion, "wrong_region"},
		{fmt.Errorf("list: %w", context.Canceled), nil, "canceled"},
		{errors.New("connection reset by peer"), nil, "error"},
	} {
		got := Classify(tc.err, "eu-west-1")
		if tc.class != nil && !errors.Is(got, tc.class) {
			t.Errorf("Classify(%v) = %v, want class %v", tc.err, got, tc.class)
		}
		if tc.class == nil && got != tc.err {
			t.Errorf("Classify(%v) changed an unknown error to %v", tc.err, got)
		}
		if r := ResultLabel(tc.err, "eu-west-1"); r != tc.result {
			t.Errorf("ResultLabel(%v) = %q, want %q", tc.err, r, tc.result)
		}
	}
	if msg := ErrSSECUnsupported.Error(); !strings.Contains(msg, "SSE-C") || !strings.Contains(msg, "SSE-KMS") {
		t.Errorf("SSE-C message does not say what to do: %q", msg)
	}
}

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
		{apiError(400, "InvalidRequest", "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object."), ErrSSECUnsupported, "error"},
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

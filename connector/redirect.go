package connector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go/middleware"
)

// newHTTPClient returns the HTTP client of a connection's S3 and STS
// clients: base's transport (with its TLS settings, such as the
// AWS_CA_BUNDLE roots LoadPlatformConfig installed) with a pool of conns
// idle connections, and no redirect ever followed.
//
// The SDK's BuildableClient follows 307 and 308 redirects to any host (only
// dropping X-Amz-Security-Token on the way): an endpoint could send a
// GetObject to an internal address and we would import its answer, or an
// AssumeRole to a host that reads the request. No AWS API needs a redirect
// followed (S3 re-signs nothing on a redirect, so the signature would not
// match anyway), so every 3xx goes back to the SDK, which reports it as the
// operation's error: a 301 PermanentRedirect still reaches Classify as the
// wrong-region answer it is, and annotateRedirect names the others.
//
// base is normally the platform's *awshttp.BuildableClient; any other client
// is replaced by a default one, as its redirect policy cannot be changed.
func newHTTPClient(base aws.HTTPClient, conns int) *http.Client {
	b, ok := base.(*awshttp.BuildableClient)
	if !ok {
		b = awshttp.NewBuildableClient()
	}
	b = b.WithTransportOptions(func(t *http.Transport) {
		// The SDK default keeps 10 idle connections per host; with more
		// workers than that connections churn.
		t.MaxIdleConns = conns
		t.MaxIdleConnsPerHost = conns
	})
	return &http.Client{
		Transport: b.GetTransport(),
		Timeout:   b.GetTimeout(),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// RedirectError is the error of an S3 or STS request answered with a
// redirect (a 3xx with a Location), which the connector never follows.
// Location shows only the scheme and host of the target: its path or query
// may carry a token.
type RedirectError struct {
	StatusCode int
	Location   string
	Err        error
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("endpoint answered %d redirecting to %s; s3connector never follows redirects from S3 or STS, check the connection's endpoint or sts_endpoint setting: %v",
		e.StatusCode, e.Location, e.Err)
}

func (e *RedirectError) Unwrap() error { return e.Err }

// addRedirectError is an API option: the outermost middleware wraps an
// error answered with a redirect in a *RedirectError. Classify still sees
// the AWS error through it.
func addRedirectError(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("s3connector.RedirectError",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			return out, md, annotateRedirect(err)
		}), middleware.Before)
}

// annotateRedirect wraps err in a *RedirectError when it carries a 3xx
// response with a Location header. S3's 301 PermanentRedirect (wrong region)
// has none and is left to Classify.
func annotateRedirect(err error) error {
	var respErr *awshttp.ResponseError
	if !errors.As(err, &respErr) || respErr.Response == nil {
		return err
	}
	status := respErr.HTTPStatusCode()
	loc := respErr.Response.Header.Get("Location")
	if status < 300 || status > 399 || loc == "" {
		return err
	}
	target := "an unparsable location"
	if u, perr := url.Parse(loc); perr == nil {
		if respErr.Response.Request != nil {
			u = respErr.Response.Request.URL.ResolveReference(u)
		}
		target = u.Scheme + "://" + u.Host
	}
	return &RedirectError{StatusCode: status, Location: target, Err: err}
}

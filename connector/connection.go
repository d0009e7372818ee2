// Package connector is everything about reaching a customer's bucket: the
// platform identity, the assumed-role credentials, one tuned S3 client per
// connection, the validation checks and the IAM policy documents the customer
// pastes into AWS. AWS error types stay inside: see Classify.
package connector

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/s3connector/s3connector/config"
)

const (
	// SessionDuration is how long one set of assumed-role credentials lives;
	// one hour is IAM's default maximum session duration for a role.
	SessionDuration = time.Hour
	// refreshWindow makes the cache renew credentials this long before they
	// expire, so no request is signed with credentials about to lapse.
	refreshWindow = 5 * time.Minute
	// maxAttempts bounds the SDK's own retries of one request (throttling,
	// 5xx, network). Runs retry whole files on top of that.
	maxAttempts = 5
	maxBackoff  = 20 * time.Second
	// assumeRoleTimeout bounds one AssumeRole call, its retries included.
	assumeRoleTimeout = 30 * time.Second
)

// LoadPlatformConfig loads the platform's own identity from the default AWS
// credential chain (environment, web identity/IRSA, container or instance
// role) and the standard AWS environment (AWS_REGION, AWS_ENDPOINT_URL_*).
// Its HTTP client is built with awshttp.NewBuildableClient, which the SDK
// needs when AWS_CA_BUNDLE is set.
func LoadPlatformConfig(ctx context.Context, optFns ...func(*awsconfig.LoadOptions) error) (aws.Config, error) {
	opts := append([]func(*awsconfig.LoadOptions) error{
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient()),
	}, optFns...)
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load platform AWS configuration: %w", err)
	}
	return cfg, nil
}

// Connection is a live handle on one customer bucket: assumed-role
// credentials, cached and refreshed before expiry, and an S3 client whose
// connection pool is sized to what the connection's workers can have in
// flight (poolSize). It is safe for concurrent use.
type Connection struct {
	cfg         config.Connection
	principal   string
	credentials *aws.CredentialsCache
	s3          *s3.Client
	fast        *FastS3
	// httpClient is the S3 and STS clients' HTTP client, which never
	// follows a redirect (newHTTPClient): any other client reaching the
	// customer's endpoints uses it, with addRedirectError.
	httpClient *http.Client
}

// New prepares a connection. It does not call AWS: the first request (or
// Validate) assumes the role. platform is the platform identity, normally
// from LoadPlatformConfig; principalARN is shown in the trust policy advice.
//
// AssumeRole is always called with the connection's External ID; New refuses
// a connection without one.
func New(platform aws.Config, principalARN string, c config.Connection, opts ...Option) (*Connection, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := config.ValidateExternalID(c.ExternalID); err != nil {
		return nil, &classified{ErrInvalidExternalID, fmt.Errorf("connection %q: external_id: %w", c.Name, err)}
	}
	if c.Region == "" {
		return nil, fmt.Errorf("connection %q: region is required", c.Name)
	}
	timing, err := credentialTimingFromEnv()
	if err != nil {
		return nil, err
	}
	// One pool for S3 and STS; neither client follows redirects.
	httpClient := newHTTPClient(platform.HTTPClient, poolSize(c))

	stsClient := sts.NewFromConfig(platform, func(o *sts.Options) {
		o.HTTPClient = httpClient
		o.APIOptions = append(o.APIOptions, addRedirectError)
		// STS is regional and independent of the bucket's region: use the
		// platform's region when it has one, the bucket's otherwise.
		if o.Region == "" {
			o.Region = c.Region
		}
		if c.STSEndpoint != "" {
			o.BaseEndpoint = aws.String(c.STSEndpoint)
		}
	})
	provider := stscreds.NewAssumeRoleProvider(stsClient, c.RoleARN(), func(o *stscreds.AssumeRoleOptions) {
		o.ExternalID = aws.String(c.ExternalID)
		o.RoleSessionName = SessionName(c.Name)
		o.Duration = timing.session
	})
	hook := o.hooks.AssumeRole
	credentials := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		// The cache calls this with a context that is never cancelled
		// (one refresh serves every waiting request) and the HTTP client
		// has no response timeout: unbounded, an STS endpoint that
		// accepts and never answers would hold the connection's every
		// request for good (found by the torture suite, scenario 4).
		ctx, cancel := context.WithTimeout(ctx, assumeRoleTimeout)
		defer cancel()
		creds, err := provider.Retrieve(ctx)
		if hook != nil {
			hook(creds.Expires, Classify(err, c.Region))
		}
		return creds, err
	})
	cache := aws.NewCredentialsCache(credentials, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = timing.window
		o.ExpiryWindowJitterFrac = timing.jitter
	})

	client := s3.NewFromConfig(platform, func(o *s3.Options) {
		o.Region = c.Region
		o.Credentials = cache
		o.HTTPClient = httpClient
		o.APIOptions = append(o.APIOptions, addRedirectError, trimStack)
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
			o.UsePathStyle = true
		}
		// Our own retry policy: the standard retryer (which treats 503
		// SlowDown as throttling and backs off with jitter) without its
		// shared retry quota, which under many concurrent failures fails
		// calls with "retry quota exceeded" instead of backing off.
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = maxAttempts
			so.MaxBackoff = maxBackoff
			so.RateLimiter = ratelimit.None
		})
		// Request checksums only where S3 requires them: our uploads are
		// tiny markers and server-side copies, and the trailing-checksum
		// encoding is not understood by every S3-compatible store.
		// DeleteObjects still carries one (CRC32): S3 requires "the
		// Content-MD5 or x-amz-checksum-* header" on every multi-object
		// delete (DeleteObjects, Amazon S3 API Reference), and "when
		// required" computes exactly those (AWS SDKs and Tools Reference
		// Guide, "Data Integrity Protections for Amazon S3",
		// https://docs.aws.amazon.com/sdkref/latest/guide/feature-dataintegrity.html).
		// GetObject and CopyObject have no request body to protect.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = responseChecksumValidation(o.BaseEndpoint, o.EndpointOptions.DisableHTTPS)
		// Objects written without a checksum (most S3-compatible stores,
		// older AWS objects) are normal here; don't log each one.
		o.DisableLogOutputChecksumValidationSkipped = true
		// The bucket, region and endpoint never change: resolve each
		// request's endpoint once, not twice per request (endpointCache).
		o.EndpointResolverV2 = newEndpointCache(o.EndpointResolverV2)
	}, func(so *s3.Options) {
		if hook := o.hooks.S3Request; hook != nil {
			so.APIOptions = append(so.APIOptions, requestHook(hook, c.Region))
		}
	})
	fast, err := newFastS3(client, httpClient, cache, o.hooks.S3Request, c.Region)
	if err != nil {
		return nil, err
	}
	return &Connection{cfg: c, principal: principalARN, credentials: cache, s3: client, fast: fast, httpClient: httpClient}, nil
}

// poolSize is how many idle connections a connection's HTTP pool keeps:
// as many as its requests can have in flight at once. Each worker has one
// GET (or COPY) open, and a worker reading a large file in parallel ranges
// has up to download.concurrency more (the ranges fetched ahead, see
// ingest's ranged reader); the lister, the delete batcher and the lease or
// state records add a few. A connection is only opened when a request
// finds none idle, so the pool never holds more than a busy moment opened;
// the limit decides whether those are kept for the next busy moment or
// closed and dialled again, a TCP and TLS handshake each, which with fewer
// idle slots than workers happens on every file.
func poolSize(c config.Connection) int {
	perWorker := 1
	if !c.Download.ParallelThreshold.Off {
		conc := c.Download.Concurrency
		if conc <= 0 {
			conc = config.DefaultDownloadConcurrency
		}
		perWorker += conc
	}
	return max(c.Workers, 1)*perWorker + 4
}

// responseChecksumValidation decides whether GetObject bodies are checked
// against the checksum S3 stored with the object ("when supported": the
// SDK asks for it with x-amz-checksum-mode and verifies the body when it
// has been read to the end) or not ("when required": only if a request
// asks, which ours do not). The SDK's default is "when supported".
//
// Over TLS — AWS's endpoints, and any https endpoint — the check adds
// nothing for what we import: every TLS record carries an authentication
// tag, so the bytes that arrive are the bytes S3 sent; If-Match pins them
// to the listed ETag (the version we decided to import); and a body cut
// short fails its Content-Length check in net/http, which the worker sees
// as a read error (transient, never imported as a success). What S3 stored
// it checks itself ("Amazon S3 uses checksum values to verify the
// integrity of data" — Checking object integrity in Amazon S3, Amazon S3
// User Guide, https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html).
// Skipping the check saves per GET the checksum request header, the
// response header parsing, a hashing reader around the body and the hash
// itself (BenchmarkSmallFileRequests/https: about 40 allocations and
// 3.5 KB per small file, of some 1,100 and 95 KB).
//
// Over plain HTTP (a custom endpoint such as a local MinIO) only TCP's
// 16-bit checksum protects the body, so the SDK checks it there. Objects
// with no full-object checksum (multipart uploads, older objects, stores
// that keep none) are not checked either way.
func responseChecksumValidation(endpoint *string, disableHTTPS bool) aws.ResponseChecksumValidation {
	if disableHTTPS || strings.HasPrefix(strings.ToLower(aws.ToString(endpoint)), "http://") {
		return aws.ResponseChecksumValidationWhenSupported
	}
	return aws.ResponseChecksumValidationWhenRequired
}

// Option configures New.
type Option func(*options)

type options struct{ hooks Hooks }

// Hooks observe a connection's traffic, for metrics. Each hook is called
// synchronously and must be cheap and safe for concurrent use.
type Hooks struct {
	// S3Request is called after every S3 request attempt (retries
	// included) with the API operation name (GetObject, CopyObject, ...) and
	// the classified error (nil on success; see ResultLabel).
	S3Request func(operation string, err error)
	// AssumeRole is called after every call to STS AssumeRole, with the new
	// credentials' expiry on success.
	AssumeRole func(expires time.Time, err error)
}

// WithHooks installs observation hooks.
func WithHooks(h Hooks) Option { return func(o *options) { o.hooks = h } }

// requestHook adds a middleware after the retry middleware, so it sees
// every attempt and its deserialized error.
func requestHook(hook func(string, error), region string) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("s3connector.RequestHook",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleFinalize(ctx, in)
				hook(middleware.GetOperationName(ctx), Classify(err, region))
				return out, md, err
			}), "Retry", middleware.After)
	}
}

// userAgent is the User-Agent of every S3 request: it names the connector
// in the customer's CloudTrail and server access logs.
var userAgent = "s3connector aws-sdk-go-v2/" + aws.SDKVersion + " lang/go#" + runtime.Version()

// trimStack is an API option of the S3 client: it takes out per-request
// work that nothing here reads, a measurable share of a small file's CPU
// (see BenchmarkSmallFileRequests):
//   - ClientRequestID: a fresh random UUID per call sent as
//     amz-sdk-invocation-id, for the SDK's client-side metrics;
//   - RecursionDetection: reads two environment variables per request to
//     forward an AWS Lambda trace id (the daemon is no Lambda function);
//   - UserAgent: builds the same User-Agent string again for every request
//     (with the SDK's feature-usage ids); a fixed one is set instead.
//
// Retries, signing, clock-skew correction and the amz-sdk-request attempt
// header are untouched.
func trimStack(stack *middleware.Stack) error {
	for _, id := range []string{"ClientRequestID", "RecursionDetection", "UserAgent"} {
		// Not found is fine: a later SDK may have dropped or renamed one.
		_, _ = stack.Build.Remove(id)
	}
	return stack.Build.Add(middleware.BuildMiddlewareFunc("s3connector.UserAgent",
		func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				// A slice of its own: a paginator's or waiter's API
				// option adds the SDK's UserAgent step back after this
				// one, and that step rewrites the header's first
				// element in place.
				req.Header["User-Agent"] = []string{userAgent}
			}
			return next.HandleBuild(ctx, in)
		}), middleware.After)
}

// SessionName is the RoleSessionName for a connection; it shows in the
// customer's CloudTrail, so it names the connection.
func SessionName(connection string) string {
	name := "s3connector-" + connection
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

// Config returns the connection's configuration.
func (c *Connection) Config() config.Connection { return c.cfg }

// S3 returns the connection's S3 client, signed with the assumed role.
func (c *Connection) S3() *s3.Client { return c.s3 }

// FastS3 returns the S3 client for the per-file requests: the same client,
// with GetObject and CopyObject on a short path (see FastS3).
func (c *Connection) FastS3() *FastS3 { return c.fast }

// Credentials returns the cached assumed-role credentials provider.
func (c *Connection) Credentials() aws.CredentialsProvider { return c.credentials }

// AssumeRole makes sure valid assumed-role credentials are cached and returns
// their expiry. It calls STS only when the cache is empty or about to expire.
func (c *Connection) AssumeRole(ctx context.Context) (time.Time, error) {
	creds, err := c.credentials.Retrieve(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("assume role %s: %w", c.cfg.RoleARN(), Classify(err, c.cfg.Region))
	}
	return creds.Expires, nil
}

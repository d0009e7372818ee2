package connector

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/auth"
	"github.com/aws/smithy-go/encoding/httpbinding"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// FastS3 is the S3 client of a connection's per-file requests. It is the
// SDK's *s3.Client (every operation it has), except that GetObject and
// CopyObject — two of a small file's two and a bit requests — take a short
// path when their input is one the daemon sends: the request is built,
// signed with the SDK's own SigV4 signer and the connection's credentials
// cache, and sent on the connection's HTTP client directly, without the
// SDK's per-request middleware stack (its ~500 allocations per request
// were most of a small file's client CPU; see BenchmarkSmallFileRequests).
//
// The short path does exactly one attempt. An answer that settles the
// request (2xx, or an error the SDK's retryer would not retry: 404, 412,
// 403, ...) is returned as the SDK would return it — the output fields
// from the same headers, errors as *awshttp.ResponseError carrying a
// smithy.APIError with S3's error code, so Classify, the retryer and
// errors.As work alike. Anything the retryer would retry (a dropped
// connection, 5xx, SlowDown, a 200 CopyObject answer carrying an error)
// is handed to the SDK's operation after the retryer's first backoff, with
// one attempt fewer: the retries, their backoff and clock-skew correction
// stay the SDK's own. Inputs with any field the short path does not set
// (SSE-C keys, request payer, expected owner, ...) and buckets whose
// endpoint is not plain SigV4 (S3 Express, multi-region access points)
// always take the SDK's path.
//
// Response checksums are not validated on the short path. Over TLS every
// record is authenticated (see responseChecksumValidation); plain http://
// endpoints are accepted for loopback addresses only (config), where no
// network lies between the bytes and the store. The SDK's path keeps
// validating them over plain HTTP.
//
// S3CONNECTOR_S3_SHORT_PATH=off sends every request through the SDK's
// path (a comparison in the bench, and a way out should some S3-compatible
// store answer in a way the short path misreads).
type FastS3 struct {
	*s3.Client
	fast *fastPath // nil: everything through the SDK
}

// shortPathEnv turns the short path off ("off"); "on" or unset is the
// default.
const shortPathEnv = "S3CONNECTOR_S3_SHORT_PATH"

func shortPathEnabled() (bool, error) {
	switch v := os.Getenv(shortPathEnv); v {
	case "", "on":
		return true, nil
	case "off":
		return false, nil
	default:
		return false, fmt.Errorf("environment variable %s=%q: want on or off", shortPathEnv, v)
	}
}

type fastPath struct {
	client  *s3.Client
	http    *http.Client
	creds   aws.CredentialsProvider
	signer  *v4.Signer
	retryer aws.Retryer
	hook    func(string, error)
	region  string

	// skew is S3's clock minus ours (nanoseconds), once a refused request
	// showed it beyond skewThreshold; see noteSkew.
	skew atomic.Int64

	mu        sync.RWMutex
	endpoints map[string]*fastEndpoint // by bucket; nil value: SDK path
}

// fastEndpoint is where one bucket's objects are and how requests to it
// are signed, as the SDK's endpoint rules resolved it.
type fastEndpoint struct {
	uri           url.URL
	headers       http.Header
	signingName   string
	signingRegion string
}

func newFastS3(client *s3.Client, httpClient *http.Client, creds aws.CredentialsProvider, hook func(string, error), region string) (*FastS3, error) {
	on, err := shortPathEnabled()
	if err != nil || !on {
		return &FastS3{Client: client}, err
	}
	o := client.Options()
	return &FastS3{Client: client, fast: &fastPath{
		client: client,
		http:   httpClient,
		creds:  creds,
		// As the S3 client signs: S3 paths are signed as sent, not
		// escaped a second time.
		signer:    v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true }),
		retryer:   o.Retryer,
		hook:      hook,
		region:    region,
		endpoints: map[string]*fastEndpoint{},
	}}, nil
}

// endpoint returns bucket's endpoint, or nil when its requests must take
// the SDK's path.
func (f *fastPath) endpoint(ctx context.Context, bucket string) *fastEndpoint {
	f.mu.RLock()
	e, ok := f.endpoints[bucket]
	f.mu.RUnlock()
	if ok {
		return e
	}
	e = f.resolve(ctx, bucket)
	f.mu.Lock()
	if len(f.endpoints) < maxCachedEndpoints {
		f.endpoints[bucket] = e
	}
	f.mu.Unlock()
	return e
}

// resolve runs the S3 client's own endpoint rules with the parameters its
// operations bind (bindEndpointParams in service/s3): the same URI,
// headers and signing scheme the SDK's path would use.
func (f *fastPath) resolve(ctx context.Context, bucket string) *fastEndpoint {
	o := f.client.Options()
	params := s3.EndpointParameters{
		Bucket:                         aws.String(bucket),
		Key:                            aws.String("k"),
		Region:                         aws.String(o.Region),
		UseFIPS:                        aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		UseDualStack:                   aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
		Endpoint:                       o.BaseEndpoint,
		ForcePathStyle:                 aws.Bool(o.UsePathStyle),
		Accelerate:                     aws.Bool(o.UseAccelerate),
		DisableMultiRegionAccessPoints: aws.Bool(o.DisableMultiRegionAccessPoints),
		UseArnRegion:                   aws.Bool(o.UseARNRegion),
		DisableS3ExpressSessionAuth:    o.DisableS3ExpressSessionAuth,
	}
	ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, params)
	if err != nil {
		return nil // the SDK's path reports it
	}
	e := &fastEndpoint{uri: ep.URI, headers: ep.Headers, signingName: "s3", signingRegion: o.Region}
	if opts, ok := auth.GetAuthOptions(&ep.Properties); ok && len(opts) > 0 {
		// The rules name it "sigv4"; the SDK's auth resolver, its smithy ID.
		if id := opts[0].SchemeID; id != "sigv4" && id != "aws.auth#sigv4" {
			return nil // sigv4a (multi-region access points), S3 Express
		}
		if n, ok := smithyhttp.GetSigV4SigningName(&opts[0].SignerProperties); ok {
			e.signingName = n
		}
		if r, ok := smithyhttp.GetSigV4SigningRegion(&opts[0].SignerProperties); ok {
			e.signingRegion = r
		}
	}
	return e
}

// objectURL is the URL of key as the SDK's REST serializer and endpoint
// middleware build it: the endpoint's path joined with "/" + the key,
// escaped as a path (slashes kept).
func (e *fastEndpoint) objectURL(key string) *url.URL {
	u := e.uri
	u.Path = smithyhttp.JoinPath(e.uri.Path, "/"+key)
	u.RawPath = smithyhttp.JoinPath(e.uri.EscapedPath(), "/"+httpbinding.EscapePath(key, false))
	return &u
}

// emptyPayloadHash is the SHA-256 of an empty body, which the SDK signs
// and sends as x-amz-content-sha256 for requests without one.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// newRequest builds a bodiless request to key.
func (f *fastPath) newRequest(ctx context.Context, e *fastEndpoint, method, key string) *http.Request {
	req := &http.Request{
		Method:     method,
		URL:        e.objectURL(key),
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, 12),
		Host:       e.uri.Host,
	}
	req = req.WithContext(ctx)
	for k, v := range e.headers {
		req.Header[k] = v
	}
	req.Header["User-Agent"] = []string{userAgent}
	// The SDK's S3 operations refuse the transport's transparent gzip
	// (it would decompress an object stored with Content-Encoding: gzip
	// and drop its Content-Length).
	req.Header["Accept-Encoding"] = []string{"identity"}
	req.Header["X-Amz-Content-Sha256"] = []string{emptyPayloadHash}
	return req
}

// send signs and sends req to e: one attempt, reported to the request
// hook. A settled error answer comes back as the error (its body read and
// closed). check, when set, reads a 2xx answer (and closes it); its error
// is the attempt's.
func (f *fastPath) send(req *http.Request, e *fastEndpoint, op string, check func(*http.Response) error) (*http.Response, error) {
	resp, err := f.attempt(req, e, op)
	if err == nil && check != nil {
		err = check(resp)
	}
	if f.hook != nil {
		f.hook(op, Classify(err, f.region))
	}
	return resp, err
}

func (f *fastPath) attempt(req *http.Request, e *fastEndpoint, op string) (*http.Response, error) {
	ctx := req.Context()
	creds, err := f.creds.Retrieve(ctx)
	if err != nil {
		return nil, opError(op, err)
	}
	// The payload hash newRequest (or the caller, for a body) set.
	payloadHash := req.Header["X-Amz-Content-Sha256"][0]
	if err := f.signer.SignHTTP(ctx, creds, req, payloadHash, e.signingName, e.signingRegion, f.now()); err != nil {
		return nil, opError(op, err)
	}
	resp, err := f.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, opError(op, &smithy.CanceledError{Err: ctx.Err()})
		}
		return nil, opError(op, &smithyhttp.RequestSendError{Err: err})
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	err = responseError(resp, body)
	f.noteSkew(err, resp)
	return nil, annotateRedirect(opError(op, err))
}

// skewThreshold is the clock difference the SDK corrects (its retry
// middleware's, after the Clock Skew Correction SEP): S3 refuses requests
// signed more than 15 minutes off its clock.
const skewThreshold = 4 * time.Minute

// skewCodes are the answers that may mean our clock is off.
var skewCodes = map[string]bool{"RequestTimeTooSkewed": true, "RequestExpired": true, "RequestInTheFuture": true}

// now is the signing time: this machine's clock, corrected by the skew a
// refused request showed (as the SDK's path corrects its own).
func (f *fastPath) now() time.Time {
	return time.Now().Add(time.Duration(f.skew.Load())).UTC()
}

// noteSkew records the offset of S3's clock (its answer's Date) from ours
// when err is a clock-skew refusal and the difference is beyond the
// threshold, so the next requests are signed on S3's time.
func (f *fastPath) noteSkew(err error, resp *http.Response) {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || !skewCodes[apiErr.ErrorCode()] {
		return
	}
	date, perr := http.ParseTime(resp.Header.Get("Date"))
	if perr != nil {
		return
	}
	if d := time.Until(date); d > skewThreshold || d < -skewThreshold {
		f.skew.Store(int64(d))
	}
}

func opError(op string, err error) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: op, Err: err}
}

// s3Error is S3's REST error document (Error responses, Amazon S3 API
// Reference: Code, Message, RequestId, HostId).
type s3Error struct {
	XMLName   xml.Name
	Code      string `xml:"Code"`
	Message   string `xml:"Message"`
	RequestID string `xml:"RequestId"`
}

// responseError is the error the SDK's S3 deserializers make of an error
// answer: the code from the body, or, for a body without one, what the
// SDK takes from the status (the SDK's path names bodiless 404s NotFound).
func responseError(resp *http.Response, body []byte) error {
	var doc s3Error
	_ = xml.Unmarshal(body, &doc)
	code := doc.Code
	if code == "" {
		switch resp.StatusCode {
		case http.StatusNotFound:
			code = "NotFound"
		case http.StatusPreconditionFailed:
			code = "PreconditionFailed"
		default:
			code = strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "")
		}
	}
	if code == "" {
		code = "UnknownError"
	}
	id := resp.Header.Get("X-Amz-Request-Id")
	if id == "" {
		id = doc.RequestID
	}
	return apiResponseError(resp, code, doc.Message, id)
}

// apiResponseError is an S3 error answer as the SDK returns it: an
// *awshttp.ResponseError around a smithy.APIError with S3's code.
func apiResponseError(resp *http.Response, code, message, requestID string) error {
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: resp},
			Err:      &smithy.GenericAPIError{Code: code, Message: message},
		},
		RequestID: requestID,
	}
}

// errorIn200 is op's error for a 200 answer whose body is an Error (or,
// for CopyObject, no result): the SDK's path retries such an answer as a
// 500 InternalError, and so does the hand-off.
func errorIn200(op string, resp *http.Response, code, message string) error {
	if code == "" {
		code = "InternalError"
	}
	resp.StatusCode = http.StatusInternalServerError
	return opError(op, apiResponseError(resp, code, message, resp.Header.Get("X-Amz-Request-Id")))
}

// handOff decides what follows a failed short-path attempt: nil (return
// err, it is settled) or the SDK options for the remaining attempts, after
// waiting the retryer's first backoff.
func (f *fastPath) handOff(ctx context.Context, err error) (func(*s3.Options), error) {
	// Clock-skew refusals are retried by the SDK's retry middleware
	// itself (it corrects the signing time first), not by the retryer.
	var apiErr smithy.APIError
	skewed := errors.As(err, &apiErr) && skewCodes[apiErr.ErrorCode()]
	if ctx.Err() != nil || !(skewed || f.retryer.IsErrorRetryable(err)) || f.retryer.MaxAttempts() < 2 {
		return nil, err
	}
	delay, derr := f.retryer.RetryDelay(1, err)
	if derr != nil {
		return nil, err
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, err
	case <-t.C:
	}
	remaining := f.retryer.MaxAttempts() - 1
	return func(o *s3.Options) { o.Retryer = retry.AddWithMaxAttempts(o.Retryer, remaining) }, nil
}

// shortEndpoint is the endpoint of bucket for a request the short path
// can send (short), or nil: the request takes the SDK's path.
func (c *FastS3) shortEndpoint(ctx context.Context, short bool, bucket *string) *fastEndpoint {
	if c.fast == nil || !short {
		return nil
	}
	return c.fast.endpoint(ctx, *bucket)
}

// retryOnSDK follows a failed short-path attempt: err when it is settled,
// otherwise call, the SDK's operation, for the remaining attempts (see
// handOff).
func retryOnSDK[In, Out any](ctx context.Context, f *fastPath, err error, in In, call func(context.Context, In, ...func(*s3.Options)) (Out, error)) (Out, error) {
	opt, err := f.handOff(ctx, err)
	if opt == nil {
		var none Out
		return none, err
	}
	return call(ctx, in, opt)
}

// shortGet says whether in sets only what the short path sends.
func shortGet(in *s3.GetObjectInput) bool {
	if in == nil || in.Bucket == nil || in.Key == nil || *in.Key == "" {
		return false
	}
	rest := *in
	rest.Bucket, rest.Key, rest.IfMatch, rest.Range, rest.VersionId = nil, nil, nil, nil, nil
	// Any other field set, now or in a later SDK, takes the SDK's path.
	return reflect.ValueOf(rest).IsZero()
}

// GetObject is s3.Client.GetObject, on the short path when it can be.
func (c *FastS3) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	e := c.shortEndpoint(ctx, len(optFns) == 0 && shortGet(in), in.Bucket)
	if e == nil {
		return c.Client.GetObject(ctx, in, optFns...)
	}
	req := c.fast.newRequest(ctx, e, http.MethodGet, *in.Key)
	if in.VersionId != nil {
		req.URL.RawQuery = "versionId=" + url.QueryEscape(*in.VersionId)
	}
	if in.IfMatch != nil {
		req.Header["If-Match"] = []string{*in.IfMatch}
	}
	if in.Range != nil {
		req.Header["Range"] = []string{*in.Range}
	}
	resp, err := c.fast.send(req, e, "GetObject", nil)
	if err != nil {
		return retryOnSDK(ctx, c.fast, err, in, c.Client.GetObject)
	}
	out, err := getObjectOutput(resp)
	if err != nil {
		resp.Body.Close()
		return nil, opError("GetObject", &smithy.DeserializationError{Err: err})
	}
	return out, nil
}

// getObjectOutput reads a GetObject answer's headers as the SDK's
// deserializer does (awsRestxml_deserializeOpHttpBindingsGetObjectOutput):
// the first value of each, trimmed; metadata keys lower-cased.
func getObjectOutput(resp *http.Response) (*s3.GetObjectOutput, error) {
	out := &s3.GetObjectOutput{Body: resp.Body}
	var errs []error
	for name, vs := range resp.Header {
		if len(vs) == 0 {
			continue
		}
		v := strings.TrimSpace(vs[0])
		if len(name) > len("X-Amz-Meta-") && strings.EqualFold(name[:len("X-Amz-Meta-")], "X-Amz-Meta-") {
			if out.Metadata == nil {
				out.Metadata = map[string]string{}
			}
			out.Metadata[strings.ToLower(name[len("X-Amz-Meta-"):])] = vs[0]
			continue
		}
		if set := getObjectHeaders[name]; set != nil {
			if err := set(out, v); err != nil {
				errs = append(errs, fmt.Errorf("header %s: %w", name, err))
			}
		}
	}
	return out, errors.Join(errs...)
}

// getObjectHeaders maps each canonical header name of a GetObject answer
// to the output field the SDK's deserializer sets from it.
var getObjectHeaders = map[string]func(*s3.GetObjectOutput, string) error{
	"Accept-Ranges": func(o *s3.GetObjectOutput, v string) error { o.AcceptRanges = &v; return nil },
	"X-Amz-Server-Side-Encryption-Bucket-Key-Enabled": func(o *s3.GetObjectOutput, v string) error { return parseBool(v, &o.BucketKeyEnabled) },
	"Cache-Control":            func(o *s3.GetObjectOutput, v string) error { o.CacheControl = &v; return nil },
	"X-Amz-Checksum-Crc32":     func(o *s3.GetObjectOutput, v string) error { o.ChecksumCRC32 = &v; return nil },
	"X-Amz-Checksum-Crc32c":    func(o *s3.GetObjectOutput, v string) error { o.ChecksumCRC32C = &v; return nil },
	"X-Amz-Checksum-Crc64nvme": func(o *s3.GetObjectOutput, v string) error { o.ChecksumCRC64NVME = &v; return nil },
	"X-Amz-Checksum-Md5":       func(o *s3.GetObjectOutput, v string) error { o.ChecksumMD5 = &v; return nil },
	"X-Amz-Checksum-Sha1":      func(o *s3.GetObjectOutput, v string) error { o.ChecksumSHA1 = &v; return nil },
	"X-Amz-Checksum-Sha256":    func(o *s3.GetObjectOutput, v string) error { o.ChecksumSHA256 = &v; return nil },
	"X-Amz-Checksum-Sha512":    func(o *s3.GetObjectOutput, v string) error { o.ChecksumSHA512 = &v; return nil },
	"X-Amz-Checksum-Type":      func(o *s3.GetObjectOutput, v string) error { o.ChecksumType = types.ChecksumType(v); return nil },
	"X-Amz-Checksum-Xxhash128": func(o *s3.GetObjectOutput, v string) error { o.ChecksumXXHASH128 = &v; return nil },
	"X-Amz-Checksum-Xxhash3":   func(o *s3.GetObjectOutput, v string) error { o.ChecksumXXHASH3 = &v; return nil },
	"X-Amz-Checksum-Xxhash64":  func(o *s3.GetObjectOutput, v string) error { o.ChecksumXXHASH64 = &v; return nil },
	"Content-Disposition":      func(o *s3.GetObjectOutput, v string) error { o.ContentDisposition = &v; return nil },
	"Content-Encoding":         func(o *s3.GetObjectOutput, v string) error { o.ContentEncoding = &v; return nil },
	"Content-Language":         func(o *s3.GetObjectOutput, v string) error { o.ContentLanguage = &v; return nil },
	"Content-Length":           func(o *s3.GetObjectOutput, v string) error { return parseInt64(v, &o.ContentLength) },
	"Content-Range":            func(o *s3.GetObjectOutput, v string) error { o.ContentRange = &v; return nil },
	"Content-Type":             func(o *s3.GetObjectOutput, v string) error { o.ContentType = &v; return nil },
	"X-Amz-Delete-Marker":      func(o *s3.GetObjectOutput, v string) error { return parseBool(v, &o.DeleteMarker) },
	"Etag":                     func(o *s3.GetObjectOutput, v string) error { o.ETag = &v; return nil },
	"X-Amz-Expiration":         func(o *s3.GetObjectOutput, v string) error { o.Expiration = &v; return nil },
	// Only ExpiresString: the SDK's parsed Expires is deprecated ("handled
	// inconsistently across AWS SDKs"); nothing here reads either.
	"Expires": func(o *s3.GetObjectOutput, v string) error { o.ExpiresString = &v; return nil },
	"Last-Modified": func(o *s3.GetObjectOutput, v string) error {
		t, err := http.ParseTime(v)
		if err != nil {
			return err
		}
		t = t.UTC()
		o.LastModified = &t
		return nil
	},
	"X-Amz-Missing-Meta": func(o *s3.GetObjectOutput, v string) error { return parseInt32(v, &o.MissingMeta) },
	"X-Amz-Object-Lock-Legal-Hold": func(o *s3.GetObjectOutput, v string) error {
		o.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatus(v)
		return nil
	},
	"X-Amz-Object-Lock-Mode": func(o *s3.GetObjectOutput, v string) error { o.ObjectLockMode = types.ObjectLockMode(v); return nil },
	"X-Amz-Object-Lock-Retain-Until-Date": func(o *s3.GetObjectOutput, v string) error {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return err
		}
		o.ObjectLockRetainUntilDate = &t
		return nil
	},
	"X-Amz-Mp-Parts-Count": func(o *s3.GetObjectOutput, v string) error { return parseInt32(v, &o.PartsCount) },
	"X-Amz-Replication-Status": func(o *s3.GetObjectOutput, v string) error {
		o.ReplicationStatus = types.ReplicationStatus(v)
		return nil
	},
	"X-Amz-Request-Charged": func(o *s3.GetObjectOutput, v string) error { o.RequestCharged = types.RequestCharged(v); return nil },
	"X-Amz-Restore":         func(o *s3.GetObjectOutput, v string) error { o.Restore = &v; return nil },
	"X-Amz-Server-Side-Encryption": func(o *s3.GetObjectOutput, v string) error {
		o.ServerSideEncryption = types.ServerSideEncryption(v)
		return nil
	},
	"X-Amz-Server-Side-Encryption-Customer-Algorithm": func(o *s3.GetObjectOutput, v string) error { o.SSECustomerAlgorithm = &v; return nil },
	"X-Amz-Server-Side-Encryption-Customer-Key-Md5":   func(o *s3.GetObjectOutput, v string) error { o.SSECustomerKeyMD5 = &v; return nil },
	"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id":     func(o *s3.GetObjectOutput, v string) error { o.SSEKMSKeyId = &v; return nil },
	"X-Amz-Storage-Class":                             func(o *s3.GetObjectOutput, v string) error { o.StorageClass = types.StorageClass(v); return nil },
	"X-Amz-Tagging-Count":                             func(o *s3.GetObjectOutput, v string) error { return parseInt32(v, &o.TagCount) },
	"X-Amz-Version-Id":                                func(o *s3.GetObjectOutput, v string) error { o.VersionId = &v; return nil },
	"X-Amz-Website-Redirect-Location":                 func(o *s3.GetObjectOutput, v string) error { o.WebsiteRedirectLocation = &v; return nil },
}

func parseBool(v string, p **bool) error {
	b, err := strconv.ParseBool(v)
	if err == nil {
		*p = &b
	}
	return err
}

func parseInt64(v string, p **int64) error {
	n, err := strconv.ParseInt(v, 0, 64)
	if err == nil {
		*p = &n
	}
	return err
}

func parseInt32(v string, p **int32) error {
	n, err := strconv.ParseInt(v, 0, 32)
	if err == nil {
		m := int32(n)
		*p = &m
	}
	return err
}

// shortCopy says whether in sets only what the short path sends.
func shortCopy(in *s3.CopyObjectInput) bool {
	if in == nil || in.Bucket == nil || in.Key == nil || *in.Key == "" || in.CopySource == nil {
		return false
	}
	rest := *in
	rest.Bucket, rest.Key, rest.CopySource, rest.CopySourceIfMatch, rest.IfNoneMatch = nil, nil, nil, nil, nil
	rest.MetadataDirective, rest.TaggingDirective, rest.StorageClass = "", "", ""
	rest.ServerSideEncryption, rest.SSEKMSKeyId, rest.BucketKeyEnabled = "", nil, nil
	// Any other field set, now or in a later SDK, takes the SDK's path.
	return reflect.ValueOf(rest).IsZero()
}

// CopyObject is s3.Client.CopyObject, on the short path when it can be.
func (c *FastS3) CopyObject(ctx context.Context, in *s3.CopyObjectInput, optFns ...func(*s3.Options)) (*s3.CopyObjectOutput, error) {
	e := c.shortEndpoint(ctx, len(optFns) == 0 && shortCopy(in), in.Bucket)
	if e == nil {
		return c.Client.CopyObject(ctx, in, optFns...)
	}
	req := c.fast.newRequest(ctx, e, http.MethodPut, *in.Key)
	h := req.Header
	h["X-Amz-Copy-Source"] = []string{*in.CopySource}
	setHeader(h, "X-Amz-Copy-Source-If-Match", in.CopySourceIfMatch)
	setHeader(h, "If-None-Match", in.IfNoneMatch)
	setEnum(h, "X-Amz-Metadata-Directive", string(in.MetadataDirective))
	setEnum(h, "X-Amz-Tagging-Directive", string(in.TaggingDirective))
	setEnum(h, "X-Amz-Storage-Class", string(in.StorageClass))
	setEnum(h, "X-Amz-Server-Side-Encryption", string(in.ServerSideEncryption))
	setHeader(h, "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", in.SSEKMSKeyId)
	if in.BucketKeyEnabled != nil {
		h["X-Amz-Server-Side-Encryption-Bucket-Key-Enabled"] = []string{strconv.FormatBool(*in.BucketKeyEnabled)}
	}
	var out *s3.CopyObjectOutput
	_, err := c.fast.send(req, e, "CopyObject", func(resp *http.Response) (err error) {
		out, err = copyObjectOutput(resp)
		return err
	})
	if err != nil {
		return retryOnSDK(ctx, c.fast, err, in, c.Client.CopyObject)
	}
	return out, nil
}

func setHeader(h http.Header, name string, v *string) {
	if v != nil {
		h[name] = []string{*v}
	}
}

func setEnum(h http.Header, name, v string) {
	if v != "" {
		h[name] = []string{v}
	}
}

// copyResult is CopyObject's answer body: CopyObjectResult, or — in a 200
// answer — Error: "A 200 OK response can contain either a success or an
// error" (CopyObject, Amazon S3 API Reference,
// https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html).
type copyResult struct {
	XMLName      xml.Name
	ETag         string    `xml:"ETag"`
	LastModified time.Time `xml:"LastModified"`
	Code         string    `xml:"Code"`
	Message      string    `xml:"Message"`
}

func copyObjectOutput(resp *http.Response) (*s3.CopyObjectOutput, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, opError("CopyObject", &smithyhttp.RequestSendError{Err: err})
	}
	var doc copyResult
	if err := xml.Unmarshal(bytes.TrimSpace(body), &doc); err != nil || doc.XMLName.Local != "CopyObjectResult" {
		return nil, errorIn200("CopyObject", resp, doc.Code, doc.Message)
	}
	out := &s3.CopyObjectOutput{CopyObjectResult: &types.CopyObjectResult{ETag: aws.String(doc.ETag)}}
	if !doc.LastModified.IsZero() {
		out.CopyObjectResult.LastModified = aws.Time(doc.LastModified)
	}
	h := resp.Header
	if v := h.Get("X-Amz-Version-Id"); v != "" {
		out.VersionId = aws.String(v)
	}
	if v := h.Get("X-Amz-Copy-Source-Version-Id"); v != "" {
		out.CopySourceVersionId = aws.String(v)
	}
	if v := h.Get("X-Amz-Expiration"); v != "" {
		out.Expiration = aws.String(v)
	}
	out.ServerSideEncryption = types.ServerSideEncryption(h.Get("X-Amz-Server-Side-Encryption"))
	if v := h.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"); v != "" {
		out.SSEKMSKeyId = aws.String(v)
	}
	if v := h.Get("X-Amz-Server-Side-Encryption-Bucket-Key-Enabled"); v != "" {
		_ = parseBool(v, &out.BucketKeyEnabled)
	}
	out.RequestCharged = types.RequestCharged(h.Get("X-Amz-Request-Charged"))
	return out, nil
}

// shortDelete says whether in is a quiet multi-object delete of keys, each
// with at most an ETag condition: the batcher's (archive/delete.go).
func shortDelete(in *s3.DeleteObjectsInput) bool {
	if in == nil || in.Bucket == nil || in.Delete == nil || len(in.Delete.Objects) == 0 || len(in.Delete.Objects) > 1000 || !aws.ToBool(in.Delete.Quiet) {
		return false
	}
	rest := *in
	rest.Bucket, rest.Delete = nil, nil
	if !reflect.ValueOf(rest).IsZero() {
		return false
	}
	d := *in.Delete
	d.Objects, d.Quiet = nil, nil
	if !reflect.ValueOf(d).IsZero() {
		return false
	}
	for _, o := range in.Delete.Objects {
		if o.Key == nil {
			return false
		}
		o.Key, o.ETag = nil, nil
		if !reflect.ValueOf(o).IsZero() {
			return false
		}
	}
	return true
}

// DeleteObjects is s3.Client.DeleteObjects, on the short path when it can
// be. The body carries Content-MD5, one of the integrity headers S3
// requires on every multi-object delete ("the Content-MD5 or
// x-amz-checksum-* header", DeleteObjects, Amazon S3 API Reference,
// https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html),
// and the one every S3-compatible store understands.
func (c *FastS3) DeleteObjects(ctx context.Context, in *s3.DeleteObjectsInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectsOutput, error) {
	e := c.shortEndpoint(ctx, len(optFns) == 0 && shortDelete(in), in.Bucket)
	if e == nil {
		return c.Client.DeleteObjects(ctx, in, optFns...)
	}
	var body bytes.Buffer
	body.Grow(96 + 80*len(in.Delete.Objects))
	body.WriteString(`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">`)
	for _, o := range in.Delete.Objects {
		body.WriteString("<Object><Key>")
		_ = xml.EscapeText(&body, []byte(*o.Key))
		body.WriteString("</Key>")
		if o.ETag != nil {
			body.WriteString("<ETag>")
			_ = xml.EscapeText(&body, []byte(*o.ETag))
			body.WriteString("</ETag>")
		}
		body.WriteString("</Object>")
	}
	body.WriteString("<Quiet>true</Quiet></Delete>")
	payload := body.Bytes()
	sum := md5.Sum(payload)
	hash := sha256.Sum256(payload)

	req := c.fast.newRequest(ctx, e, http.MethodPost, "")
	req.URL.RawQuery = "delete="
	req.Header["Content-Type"] = []string{"application/xml"}
	req.Header["Content-Md5"] = []string{base64.StdEncoding.EncodeToString(sum[:])}
	req.Header["X-Amz-Content-Sha256"] = []string{hex.EncodeToString(hash[:])}
	req.ContentLength = int64(len(payload))
	req.Body = io.NopCloser(bytes.NewReader(payload))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(payload)), nil }

	var out *s3.DeleteObjectsOutput
	_, err := c.fast.send(req, e, "DeleteObjects", func(resp *http.Response) (err error) {
		out, err = deleteObjectsOutput(resp)
		return err
	})
	if err != nil {
		return retryOnSDK(ctx, c.fast, err, in, c.Client.DeleteObjects)
	}
	return out, nil
}

// deleteResult is DeleteObjects' answer body.
type deleteResult struct {
	XMLName xml.Name
	Deleted []struct {
		Key                   string `xml:"Key"`
		VersionID             string `xml:"VersionId"`
		DeleteMarker          bool   `xml:"DeleteMarker"`
		DeleteMarkerVersionID string `xml:"DeleteMarkerVersionId"`
	} `xml:"Deleted"`
	Errors []struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId"`
		Code      string `xml:"Code"`
		Message   string `xml:"Message"`
	} `xml:"Error"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func deleteObjectsOutput(resp *http.Response) (*s3.DeleteObjectsOutput, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, opError("DeleteObjects", &smithyhttp.RequestSendError{Err: err})
	}
	var doc deleteResult
	err = xml.Unmarshal(body, &doc)
	if doc.XMLName.Local != "DeleteResult" && doc.XMLName.Local != "Error" {
		// Never read an answer that is no DeleteResult as "nothing
		// failed" (with Quiet, success lists nothing). Not retried: the
		// deletes fail, and their files are moved again later.
		if err == nil {
			err = fmt.Errorf("answer is <%s>, not a DeleteResult", doc.XMLName.Local)
		}
		return nil, opError("DeleteObjects", &smithy.DeserializationError{Err: err, Snapshot: body[:min(len(body), 256)]})
	}
	if err != nil || doc.XMLName.Local == "Error" {
		return nil, errorIn200("DeleteObjects", resp, doc.Code, doc.Message)
	}
	out := &s3.DeleteObjectsOutput{RequestCharged: types.RequestCharged(resp.Header.Get("X-Amz-Request-Charged"))}
	for _, d := range doc.Deleted {
		o := types.DeletedObject{Key: aws.String(d.Key)}
		if d.VersionID != "" {
			o.VersionId = aws.String(d.VersionID)
		}
		if d.DeleteMarker {
			o.DeleteMarker = aws.Bool(true)
		}
		if d.DeleteMarkerVersionID != "" {
			o.DeleteMarkerVersionId = aws.String(d.DeleteMarkerVersionID)
		}
		out.Deleted = append(out.Deleted, o)
	}
	for _, e := range doc.Errors {
		o := types.Error{Key: aws.String(e.Key), Code: aws.String(e.Code), Message: aws.String(e.Message)}
		if e.VersionID != "" {
			o.VersionId = aws.String(e.VersionID)
		}
		out.Errors = append(out.Errors, o)
	}
	return out, nil
}

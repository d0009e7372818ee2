package connector

import (
	"context"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/auth"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
)

// maxCachedEndpoints bounds endpointCache: a connection reaches one bucket
// through one endpoint, so it sees a handful of distinct parameter sets
// (its bucket, a HeadBucket without a path style...); past the bound an
// endpoint is resolved every time, as without the cache.
const maxCachedEndpoints = 32

// endpointCache is the S3 client's EndpointResolverV2: it runs the SDK's
// endpoint rules once per distinct set of parameters instead of twice per
// request (once to pick the auth scheme, once to route the request), a
// share of every request's CPU that buys nothing for a connection whose
// bucket, region and endpoint never change.
//
// The cache key leaves out Key, Prefix and CopySource, which change with
// every file: the S3 rules of the SDK version in go.mod never read them
// (endpoint_test.go checks both that and the set of parameters, so an SDK
// upgrade that changes either fails the tests instead of routing a request
// with a stale endpoint).
type endpointCache struct {
	next s3.EndpointResolverV2

	mu sync.RWMutex
	m  map[endpointKey]smithyendpoints.Endpoint
}

func newEndpointCache(next s3.EndpointResolverV2) *endpointCache {
	return &endpointCache{next: next, m: map[endpointKey]smithyendpoints.Endpoint{}}
}

// endpointKey is every EndpointParameters field the rules read: each
// string and each bool pointer by value, nil apart.
type endpointKey struct {
	bucket, region, endpoint optString
	// flags holds two bits per bool parameter: set, and its value.
	flags uint32
}

type optString struct {
	set bool
	v   string
}

func optStr(p *string) optString {
	if p == nil {
		return optString{}
	}
	return optString{true, *p}
}

func keyOf(p s3.EndpointParameters) endpointKey {
	k := endpointKey{bucket: optStr(p.Bucket), region: optStr(p.Region), endpoint: optStr(p.Endpoint)}
	for i, b := range [...]*bool{
		p.UseFIPS, p.UseDualStack, p.ForcePathStyle, p.Accelerate, p.UseGlobalEndpoint,
		p.UseObjectLambdaEndpoint, p.DisableAccessPoints, p.DisableMultiRegionAccessPoints,
		p.UseArnRegion, p.UseS3ExpressControlEndpoint, p.DisableS3ExpressSessionAuth,
	} {
		if b != nil {
			k.flags |= 1 << (2 * i)
			if *b {
				k.flags |= 2 << (2 * i)
			}
		}
	}
	return k
}

// ResolveEndpoint returns the cached endpoint of params' key, resolving
// and caching it on first use. Errors are not cached.
func (c *endpointCache) ResolveEndpoint(ctx context.Context, params s3.EndpointParameters) (smithyendpoints.Endpoint, error) {
	k := keyOf(params)
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return copyEndpoint(e), nil
	}
	e, err := c.next.ResolveEndpoint(ctx, params)
	if err != nil {
		return e, err
	}
	c.mu.Lock()
	if len(c.m) < maxCachedEndpoints {
		c.m[k] = copyEndpoint(e)
	}
	c.mu.Unlock()
	return e, nil
}

// copyEndpoint returns e with its own headers, properties and auth
// options: the SDK writes into a resolved endpoint's auth options while it
// picks the auth scheme (endpointAuthResolver.resolveAuthSchemes rebases
// them on the modeled ones), so requests running at once must never share
// them. The URI is a value; its Userinfo is immutable.
func copyEndpoint(e smithyendpoints.Endpoint) smithyendpoints.Endpoint {
	out := smithyendpoints.Endpoint{URI: e.URI}
	if len(e.Headers) > 0 {
		out.Headers = e.Headers.Clone()
	}
	out.Properties.SetAll(&e.Properties)
	if opts, ok := auth.GetAuthOptions(&e.Properties); ok {
		own := make([]*auth.Option, len(opts))
		for i, o := range opts {
			c := &auth.Option{SchemeID: o.SchemeID}
			c.IdentityProperties.SetAll(&o.IdentityProperties)
			c.SignerProperties.SetAll(&o.SignerProperties)
			own[i] = c
		}
		auth.SetAuthOptions(&out.Properties, own)
	}
	return out
}

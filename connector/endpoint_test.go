package connector

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/auth"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
)

// TestEndpointCacheKnowsEveryParameter fails when an SDK upgrade adds or
// renames an endpoint parameter: keyOf must then be reviewed, or the cache
// could hand out an endpoint resolved for other parameters.
func TestEndpointCacheKnowsEveryParameter(t *testing.T) {
	// In keyOf's key, or (the per-object ones) deliberately left out.
	known := []string{
		"Bucket", "Region", "Endpoint",
		"UseFIPS", "UseDualStack", "ForcePathStyle", "Accelerate", "UseGlobalEndpoint",
		"UseObjectLambdaEndpoint", "DisableAccessPoints", "DisableMultiRegionAccessPoints",
		"UseArnRegion", "UseS3ExpressControlEndpoint", "DisableS3ExpressSessionAuth",
		"Key", "Prefix", "CopySource",
	}
	var fields []string
	for f := range reflect.TypeFor[s3.EndpointParameters]().Fields() {
		fields = append(fields, f.Name)
	}
	slices.Sort(fields)
	slices.Sort(known)
	if !slices.Equal(fields, known) {
		t.Fatalf("s3.EndpointParameters has fields %v; endpointCache knows %v: review keyOf", fields, known)
	}
}

// endpointCases are the parameter sets a connection's requests bind: AWS
// (virtual-hosted) and a custom endpoint (path style), an object request, a
// copy, a listing and a bucket-level request.
func endpointCases() []s3.EndpointParameters {
	var cases []s3.EndpointParameters
	for _, base := range []s3.EndpointParameters{
		{Region: aws.String("eu-west-1"), UseFIPS: aws.Bool(false), UseDualStack: aws.Bool(false), ForcePathStyle: aws.Bool(false),
			Accelerate: aws.Bool(false), DisableMultiRegionAccessPoints: aws.Bool(false), UseArnRegion: aws.Bool(false)},
		{Region: aws.String("ap-southeast-2"), Endpoint: aws.String("http://127.0.0.1:9000"), UseFIPS: aws.Bool(false), UseDualStack: aws.Bool(false),
			ForcePathStyle: aws.Bool(true), Accelerate: aws.Bool(false), DisableMultiRegionAccessPoints: aws.Bool(false), UseArnRegion: aws.Bool(false)},
	} {
		object, cp, list, bucket := base, base, base, base
		object.Bucket, object.Key = aws.String("customer-bucket"), aws.String("inbox/a.csv")
		cp.Bucket, cp.Key, cp.CopySource = aws.String("customer-bucket"), aws.String("inbox/archive/a.csv"), aws.String("customer-bucket/inbox/a.csv")
		cp.DisableS3ExpressSessionAuth = aws.Bool(true)
		list.Bucket, list.Prefix = aws.String("customer-bucket"), aws.String("inbox/")
		bucket.Bucket = aws.String("customer-bucket")
		cases = append(cases, object, cp, list, bucket)
	}
	return cases
}

// TestEndpointCacheMatchesTheRules: a cached endpoint is the one the SDK's
// rules give, whatever the per-object parameters (which the key leaves
// out), on the first request and on later ones.
func TestEndpointCacheMatchesTheRules(t *testing.T) {
	ctx := context.Background()
	rules := s3.NewDefaultEndpointResolverV2()
	cache := newEndpointCache(rules)
	for _, p := range endpointCases() {
		want, err := rules.ResolveEndpoint(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for i, key := range []string{"inbox/a.csv", "inbox/deeper/other name+%.csv", ""} {
			q := p
			if p.Key != nil {
				q.Key = aws.String(key)
			}
			if p.CopySource != nil {
				q.CopySource = aws.String("customer-bucket/" + key)
			}
			if p.Prefix != nil {
				q.Prefix = aws.String(key)
			}
			direct, err := rules.ResolveEndpoint(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if !sameEndpoint(direct, want) {
				t.Errorf("the SDK's rules now depend on Key/Prefix/CopySource (%q): endpointCache must key on them\n got %+v\nwant %+v", key, direct, want)
			}
			got, err := cache.ResolveEndpoint(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if !sameEndpoint(got, want) {
				t.Errorf("%s bucket %s, request %d: cached endpoint\n %+v\nwant\n %+v", aws.ToString(p.Endpoint), aws.ToString(p.Bucket), i, got, want)
			}
		}
	}
}

func sameEndpoint(a, b smithyendpoints.Endpoint) bool {
	if a.URI.String() != b.URI.String() || len(a.Headers) != len(b.Headers) || (len(a.Headers) > 0 && !reflect.DeepEqual(a.Headers, b.Headers)) {
		return false
	}
	ao, _ := auth.GetAuthOptions(&a.Properties)
	bo, _ := auth.GetAuthOptions(&b.Properties)
	if len(ao) != len(bo) {
		return false
	}
	for i := range ao {
		if ao[i].SchemeID != bo[i].SchemeID ||
			!reflect.DeepEqual(ao[i].SignerProperties.Values(), bo[i].SignerProperties.Values()) ||
			!reflect.DeepEqual(ao[i].IdentityProperties.Values(), bo[i].IdentityProperties.Values()) {
			return false
		}
	}
	return len(a.Properties.Values()) == len(b.Properties.Values())
}

// TestEndpointCacheHandsOutCopies: the SDK writes into a resolved
// endpoint's auth options (endpointAuthResolver rebases them), so every
// caller gets its own; run with -race.
func TestEndpointCacheHandsOutCopies(t *testing.T) {
	ctx := context.Background()
	cache := newEndpointCache(s3.NewDefaultEndpointResolverV2())
	p := endpointCases()[4]
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				e, err := cache.ResolveEndpoint(ctx, p)
				if err != nil {
					t.Error(err)
					return
				}
				opts, _ := auth.GetAuthOptions(&e.Properties)
				for _, o := range opts {
					o.SignerProperties.Set("scribbled", true)
					o.IdentityProperties = o.SignerProperties
				}
				if e.Headers != nil {
					e.Headers.Set("X-Scribbled", "1")
				}
			}
		})
	}
	wg.Wait()
	e, _ := cache.ResolveEndpoint(ctx, p)
	opts, _ := auth.GetAuthOptions(&e.Properties)
	for _, o := range opts {
		if o.SignerProperties.Has("scribbled") {
			t.Fatal("a caller's change to its endpoint reached the cache")
		}
	}
	if e.Headers.Get("X-Scribbled") != "" {
		t.Fatal("a caller's header reached the cache")
	}
}

// TestEndpointCacheIsBounded: past maxCachedEndpoints distinct parameter
// sets, endpoints are resolved without being kept.
func TestEndpointCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	cache := newEndpointCache(s3.NewDefaultEndpointResolverV2())
	p := endpointCases()[0]
	for i := range 2 * maxCachedEndpoints {
		p.Bucket = aws.String("bucket-" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
		if _, err := cache.ResolveEndpoint(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(cache.m); n != maxCachedEndpoints {
		t.Fatalf("cache holds %d endpoints, want %d", n, maxCachedEndpoints)
	}
}

package connector

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Why fakes: no real server here answers S3 or STS with a redirect to
// another host. What these tests show is our client's behaviour when one
// does: the request never reaches the second server.

// countingServer counts the requests it gets and answers each with h.
type countingServer struct {
	*httptest.Server
	requests atomic.Int64
}

func newCountingServer(t *testing.T, h http.HandlerFunc) *countingServer {
	t.Helper()
	s := &countingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// redirectTo answers every request with status and a Location on target
// (same path and query), with the body AWS sends with a TemporaryRedirect.
func redirectTo(target string, status int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", target+r.URL.RequestURI())
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>TemporaryRedirect</Code><Message>Please re-send this request to the specified temporary endpoint.</Message><RequestId>r1</RequestId></Error>`))
	}
}

// internalAnswer is what an internal address behind a redirect would hand
// out: a valid S3 answer to any request, so following the redirect would
// succeed and import it.
func internalAnswer(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/xml")
	_, _ = w.Write([]byte(`<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bucket</Name><KeyCount>1</KeyCount><Contents><Key>internal-secret</Key></Contents></ListBucketResult>`))
}

func TestS3RedirectNotFollowed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sts := httptest.NewServer(&recordingSTS{expiresIn: time.Hour})
	defer sts.Close()

	ops := map[string]func(*Connection) error{
		"GetObject": func(conn *Connection) error {
			c := conn.S3()
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("inbox/a.csv")})
			if err == nil {
				out.Body.Close()
			}
			return err
		},
		// FastS3's short path, for GetObject, CopyObject and DeleteObjects.
		"FastGetObject": func(conn *Connection) error {
			out, err := conn.FastS3().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("inbox/a.csv")})
			if err == nil {
				out.Body.Close()
			}
			return err
		},
		"FastCopyObject": func(conn *Connection) error {
			_, err := conn.FastS3().CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bucket"), Key: aws.String("inbox/archive/a.csv"), CopySource: aws.String("bucket/inbox/a.csv")})
			return err
		},
		"FastDeleteObjects": func(conn *Connection) error {
			_, err := conn.FastS3().DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("bucket"), Delete: &types.Delete{Quiet: aws.Bool(true), Objects: []types.ObjectIdentifier{{Key: aws.String("inbox/a.csv")}}}})
			return err
		},
		"ListObjectsV2": func(conn *Connection) error {
			c := conn.S3()
			_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bucket"), Prefix: aws.String("inbox/")})
			return err
		},
		"PutObject": func(conn *Connection) error {
			_, err := conn.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bucket"), Key: aws.String("archive/.marker"), Body: strings.NewReader("marker")})
			return err
		},
	}
	tests := []struct {
		op     string
		status int
	}{
		{"GetObject", http.StatusTemporaryRedirect},
		{"GetObject", http.StatusPermanentRedirect},
		{"GetObject", http.StatusFound},
		{"FastGetObject", http.StatusTemporaryRedirect},
		{"FastGetObject", http.StatusPermanentRedirect},
		{"FastCopyObject", http.StatusTemporaryRedirect},
		{"FastDeleteObjects", http.StatusPermanentRedirect},
		{"ListObjectsV2", http.StatusTemporaryRedirect},
		{"ListObjectsV2", http.StatusPermanentRedirect},
		{"PutObject", http.StatusTemporaryRedirect},
	}
	for _, tt := range tests {
		t.Run(tt.op+"/"+http.StatusText(tt.status), func(t *testing.T) {
			internal := newCountingServer(t, internalAnswer)
			endpoint := newCountingServer(t, redirectTo(internal.URL, tt.status))
			c := minioConnection(endpoint.URL, "redirect", "bucket", "inbox/")
			c.STSEndpoint = sts.URL
			conn, err := New(platformConfig("k", "s"), platformPrincipal, c)
			if err != nil {
				t.Fatal(err)
			}
			err = ops[tt.op](conn)
			t.Logf("%s: %v", tt.op, err)
			if n := internal.requests.Load(); n != 0 {
				t.Fatalf("the redirect target got %d requests, want none", n)
			}
			if n := endpoint.requests.Load(); n != 1 {
				t.Errorf("the endpoint got %d requests, want 1 (a redirect is not retried)", n)
			}
			checkRedirectError(t, err, tt.status, internal.URL)
		})
	}
}

func TestSTSRedirectNotFollowed(t *testing.T) {
	for _, status := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			// Following the redirect would hand out credentials.
			fake := &recordingSTS{expiresIn: time.Hour}
			internal := newCountingServer(t, fake.ServeHTTP)
			endpoint := newCountingServer(t, redirectTo(internal.URL, status))
			c := minioConnection("https://s3.eu-central-1.amazonaws.com", "redirect", "bucket", "")
			c.STSEndpoint = endpoint.URL
			conn, err := New(platformConfig("k", "s"), platformPrincipal, c)
			if err != nil {
				t.Fatal(err)
			}
			_, err = conn.AssumeRole(context.Background())
			t.Logf("AssumeRole: %v", err)
			if n := internal.requests.Load(); n != 0 {
				t.Fatalf("the redirect target got %d requests, want none", n)
			}
			if n := endpoint.requests.Load(); n != 1 {
				t.Errorf("the endpoint got %d requests, want 1 (a redirect is not retried)", n)
			}
			checkRedirectError(t, err, status, internal.URL)
		})
	}
}

func checkRedirectError(t *testing.T, err error, status int, target string) {
	t.Helper()
	var re *RedirectError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want a *RedirectError", err)
	}
	if re.StatusCode != status || re.Location != target {
		t.Errorf("RedirectError = %d to %q, want %d to %q", re.StatusCode, re.Location, status, target)
	}
	for _, want := range []string{"never follows redirects", target} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestWrongRegionRedirectStillClassified: S3's answer to a request signed
// for the wrong region is a 301 without a Location. It is not a redirect
// we refuse but the wrong-region error, with the bucket's region.
func TestWrongRegionRedirectStillClassified(t *testing.T) {
	sts := httptest.NewServer(&recordingSTS{expiresIn: time.Hour})
	defer sts.Close()
	endpoint := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amz-Bucket-Region", "ap-southeast-2")
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusMovedPermanently)
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Endpoint>bucket.s3.ap-southeast-2.amazonaws.com</Endpoint><Bucket>bucket</Bucket></Error>`))
	})
	c := minioConnection(endpoint.URL, "redirect", "bucket", "inbox/")
	c.STSEndpoint = sts.URL
	conn, err := New(platformConfig("k", "s"), platformPrincipal, c)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.S3().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("bucket")})
	err = Classify(err, c.Region)
	var region *RegionError
	if !errors.As(err, &region) || region.Actual != "ap-southeast-2" {
		t.Fatalf("err = %v, want a *RegionError with the bucket's region", err)
	}
	if re := (*RedirectError)(nil); errors.As(err, &re) {
		t.Errorf("err = %v, a 301 without Location is not a RedirectError", err)
	}
}

// TestRedirectErrorKeepsAWSError: the wrapping keeps the AWS error visible
// to Classify (a redirect whose body says AccessDenied is still access
// denied), and the Location's path and query are not shown.
func TestRedirectErrorKeepsAWSError(t *testing.T) {
	sts := httptest.NewServer(&recordingSTS{expiresIn: time.Hour})
	defer sts.Close()
	internal := newCountingServer(t, internalAnswer)
	endpoint := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", internal.URL+"/token?X-Amz-Signature=s3cr3t")
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusTemporaryRedirect)
		_, _ = w.Write([]byte(`<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`))
	})
	c := minioConnection(endpoint.URL, "redirect", "bucket", "inbox/")
	c.STSEndpoint = sts.URL
	conn, err := New(platformConfig("k", "s"), platformPrincipal, c)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.S3().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("bucket")})
	if err := Classify(err, c.Region); !errors.Is(err, ErrAccessDenied) {
		t.Errorf("Classify(%v) is not ErrAccessDenied", err)
	}
	checkRedirectError(t, err, http.StatusTemporaryRedirect, internal.URL)
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("error %q shows the redirect's query", err)
	}
}

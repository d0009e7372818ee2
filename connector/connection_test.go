package connector

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3connector/s3connector/config"
)

func TestPoolSize(t *testing.T) {
	tests := []struct {
		name string
		c    config.Connection
		want int
	}{
		{"defaults", config.Connection{Workers: 16}, 16*(1+config.DefaultDownloadConcurrency) + 4},
		{"concurrency set", config.Connection{Workers: 8, Download: config.Download{Concurrency: 2}}, 8*3 + 4},
		{"parallel downloads off", config.Connection{Workers: 256, Download: config.Download{ParallelThreshold: config.Off}}, 256 + 4},
		{"no workers set", config.Connection{}, 1*(1+config.DefaultDownloadConcurrency) + 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := poolSize(tt.c); got != tt.want {
				t.Errorf("poolSize = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestResponseChecksumValidation(t *testing.T) {
	tests := []struct {
		endpoint     *string
		disableHTTPS bool
		want         aws.ResponseChecksumValidation
	}{
		{nil, false, aws.ResponseChecksumValidationWhenRequired},
		{aws.String("https://s3.eu-west-1.amazonaws.com"), false, aws.ResponseChecksumValidationWhenRequired},
		{aws.String("HTTP://127.0.0.1:9000"), false, aws.ResponseChecksumValidationWhenSupported},
		{nil, true, aws.ResponseChecksumValidationWhenSupported},
	}
	for _, tt := range tests {
		if got := responseChecksumValidation(tt.endpoint, tt.disableHTTPS); got != tt.want {
			t.Errorf("responseChecksumValidation(%q, %v) = %v, want %v", aws.ToString(tt.endpoint), tt.disableHTTPS, got, tt.want)
		}
	}
}

// recordingS3 is cannedS3 that keeps the headers of the last request of
// each kind (GET, PUT, DeleteObjects).
func recordingS3(tls bool) (*httptest.Server, func(op string) http.Header) {
	var (
		mu   sync.Mutex
		seen = map[string]http.Header{}
	)
	canned := cannedS3()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Method
		if r.URL.Query().Has("delete") {
			op = "DeleteObjects"
		}
		mu.Lock()
		seen[op] = r.Header.Clone()
		mu.Unlock()
		canned.ServeHTTP(w, r)
	})
	srv := httptest.NewUnstartedServer(h)
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	return srv, func(op string) http.Header {
		mu.Lock()
		defer mu.Unlock()
		return seen[op]
	}
}

func recordingConnection(t *testing.T, srv *httptest.Server) *Connection {
	t.Helper()
	platform := platformConfig("user", "secret")
	if srv.TLS != nil {
		tlsConfig := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
		platform.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) { t.TLSClientConfig = tlsConfig })
	}
	conn, err := New(platform, platformPrincipal, minioConnection(srv.URL, "hdr", "bucket", "inbox/"))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

func getAll(t *testing.T, client *s3.Client) {
	t.Helper()
	out, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("inbox/a.csv")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if _, err := io.Copy(io.Discard, out.Body); err != nil {
		t.Fatalf("read the body: %v", err)
	}
}

// TestS3RequestHeaders: what trimStack and the checksum settings leave on
// the wire. Over plain HTTP a GetObject asks for the stored checksum (and
// the SDK checks the body against it), over TLS it does not; every request
// names the connector in its User-Agent, carries its retry attempt header
// and no per-call invocation id; DeleteObjects still carries the checksum
// S3 requires.
func TestS3RequestHeaders(t *testing.T) {
	srv, seen := recordingS3(false)
	defer srv.Close()
	client := recordingConnection(t, srv).S3()
	getAll(t, client)
	if _, err := client.DeleteObjects(t.Context(), &s3.DeleteObjectsInput{Bucket: aws.String("bucket"),
		Delete: &types.Delete{Objects: []types.ObjectIdentifier{{Key: aws.String("inbox/a.csv"), ETag: aws.String(`"e"`)}}}}); err != nil {
		t.Fatal(err)
	}
	// A paginator adds the SDK's UserAgent step back (its own API option
	// runs after the client's): that must not leak into other requests.
	for range 3 {
		p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String("bucket")})
		_, _ = p.NextPage(t.Context()) // the canned server answers no listing
	}
	getAll(t, client)
	get, del := seen(http.MethodGet), seen("DeleteObjects")
	if got := get.Get("X-Amz-Checksum-Mode"); got != "ENABLED" {
		t.Errorf("GetObject over plain HTTP: x-amz-checksum-mode %q, want ENABLED", got)
	}
	for op, h := range map[string]http.Header{"GetObject": get, "DeleteObjects": del} {
		if ua := h.Get("User-Agent"); ua != userAgent || !strings.HasPrefix(ua, "s3connector ") {
			t.Errorf("%s: User-Agent %q, want %q", op, ua, userAgent)
		}
		if id := h.Get("Amz-Sdk-Invocation-Id"); id != "" {
			t.Errorf("%s: amz-sdk-invocation-id %q sent", op, id)
		}
		if h.Get("Amz-Sdk-Request") == "" {
			t.Errorf("%s: no amz-sdk-request (retry attempt) header", op)
		}
	}
	if del.Get("Content-Md5") == "" && del.Get("X-Amz-Checksum-Crc32") == "" {
		t.Errorf("DeleteObjects carries no checksum: %v", del)
	}

	tlsSrv, tlsSeen := recordingS3(true)
	defer tlsSrv.Close()
	getAll(t, recordingConnection(t, tlsSrv).S3())
	if got := tlsSeen(http.MethodGet).Get("X-Amz-Checksum-Mode"); got != "" {
		t.Errorf("GetObject over TLS: x-amz-checksum-mode %q, want none", got)
	}
}

// TestResponseChecksumIsChecked: over plain HTTP a body that does not match
// the checksum S3 answered with fails when it is read, so the worker never
// imports it as a success.
func TestResponseChecksumIsChecked(t *testing.T) {
	canned := cannedS3()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			canned.ServeHTTP(w, r)
			return
		}
		w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
		w.Header().Set("x-amz-checksum-crc32", "AAAAAA==") // not the body's
		_, _ = io.WriteString(w, strings.Repeat("x", 4096))
	}))
	defer srv.Close()
	out, err := recordingConnection(t, srv).S3().GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("inbox/a.csv")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if _, err := io.Copy(io.Discard, out.Body); err == nil {
		t.Fatal("a body with the wrong checksum was read without an error")
	}
}

package connector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// recordingSTS is a fake STS endpoint that records AssumeRole requests.
//
// Why a fake: MinIO accepts but ignores ExternalId (and RoleArn), so no real
// server here can show that AssumeRole carries them. What this asserts is the
// request we send, which is what AWS evaluates against the trust policy.
type recordingSTS struct {
	mu       sync.Mutex
	requests []url.Values
	// expiresIn is the lifetime of the credentials handed out.
	expiresIn time.Duration
	// fail, when set, is returned as an STS error (code, message).
	fail [2]string
	// answer, when set, decides each request: a non-empty code is returned
	// as an STS error with that HTTP status, "" grants the request. It
	// records what AWS answers, e.g. AccessDenied (403) to an ExternalId the
	// trust policy does not name.
	answer func(form url.Values) (status int, code, message string)
}

func (s *recordingSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, r.PostForm)
	n := len(s.requests)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	status, code, message := http.StatusBadRequest, s.fail[0], s.fail[1]
	if s.answer != nil && code == "" {
		status, code, message = s.answer(r.PostForm)
	}
	if code != "" {
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>r%d</RequestId></ErrorResponse>`, code, message, n)
		return
	}
	exp := time.Now().Add(s.expiresIn).UTC().Format(time.RFC3339)
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>ASIATESTKEY%04d</AccessKeyId>
      <SecretAccessKey>secret-%d</SecretAccessKey>
      <SessionToken>token-%d</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <Arn>%s/%s</Arn>
      <AssumedRoleId>AROATEST:%s</AssumedRoleId>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>r%d</RequestId></ResponseMetadata>
</AssumeRoleResponse>`, n, n, n, exp, r.PostForm.Get("RoleArn"), r.PostForm.Get("RoleSessionName"), r.PostForm.Get("RoleSessionName"), n)
}

// request returns the i-th request recorded.
func (s *recordingSTS) request(i int) url.Values {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[i]
}

func (s *recordingSTS) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

func TestAssumeRoleRequestCarriesExternalID(t *testing.T) {
	fake := &recordingSTS{expiresIn: time.Hour}
	ts := httptest.NewServer(fake)
	defer ts.Close()

	c := minioConnection(ts.URL, "acme", "bucket", "")
	c.AccountID = "210987654321"
	conn, err := New(platformConfig("platform-key", "platform-secret"), platformPrincipal, c)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Many concurrent users of the credentials: one STS call.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := conn.Credentials().Retrieve(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := conn.AssumeRole(ctx); err != nil {
		t.Fatal(err)
	}
	if n := fake.count(); n != 1 {
		t.Fatalf("STS AssumeRole called %d times for 21 retrievals, want 1 (credentials must be cached)", n)
	}
	req := fake.requests[0]
	want := map[string]string{
		"Action":          "AssumeRole",
		"RoleArn":         "arn:aws:iam::210987654321:role/s3connector-acme",
		"ExternalId":      minioExternalID,
		"RoleSessionName": "s3connector-acme",
		"DurationSeconds": "3600",
	}
	for k, v := range want {
		if got := req.Get(k); got != v {
			t.Errorf("AssumeRole %s = %q, want %q", k, got, v)
		}
	}
}

func TestCredentialsRefreshedBeforeExpiry(t *testing.T) {
	// Credentials that expire within the refresh window are renewed on the
	// next use instead of being used until they lapse; fresh ones are reused.
	tests := []struct {
		name      string
		expiresIn time.Duration
		wantCalls int
	}{
		{"nearly expired", refreshWindow / 2, 3},
		{"fresh", refreshWindow * 3, 1},
	}
	for _, tt := range tests {
		fake := &recordingSTS{expiresIn: tt.expiresIn}
		ts := httptest.NewServer(fake)
		conn, err := New(platformConfig("k", "s"), platformPrincipal, minioConnection(ts.URL, "refresh", "bucket", ""))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := conn.AssumeRole(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		ts.Close()
		if n := fake.count(); n != tt.wantCalls {
			t.Errorf("STS called %d times for 3 uses of %s credentials, want %d", n, tt.name, tt.wantCalls)
		}
	}
}

func TestAssumeRoleErrorClasses(t *testing.T) {
	tests := []struct {
		code, message string
		wantIs        error
		wantClass     FailureClass
	}{
		{"AccessDenied", "User: arn:aws:iam::049579744830:root is not authorized to perform: sts:AssumeRole", ErrAccessDenied, FailureAssumeRole},
		{"ValidationError", "1 validation error detected: Value at 'externalId' failed to satisfy constraint", ErrInvalidExternalID, FailureExternalID},
		{"InvalidClientTokenId", "The security token included in the request is invalid.", ErrAccessDenied, FailureAssumeRole},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			fake := &recordingSTS{fail: [2]string{tt.code, tt.message}}
			ts := httptest.NewServer(fake)
			defer ts.Close()
			conn, err := New(platformConfig("k", "s"), platformPrincipal, minioConnection(ts.URL, "errs", "bucket", ""))
			if err != nil {
				t.Fatal(err)
			}
			_, err = conn.Validate(context.Background())
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.wantIs)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Class != tt.wantClass || ve.Check != CheckAssumeRole {
				t.Errorf("err = %#v, want class %d at %q", err, tt.wantClass, CheckAssumeRole)
			}
		})
	}
}

package ingest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHTTP(t *testing.T) {
	f := File{Key: "imports/x.csv", Size: 8, ETag: `"e"`, IdempotencyKey: "b/imports/x.csv/e"}
	tests := []struct {
		status        int
		delay         time.Duration
		wantErr       bool
		wantPermanent bool
	}{
		{status: 200},
		{status: 204},
		{status: 400, wantErr: true, wantPermanent: true},
		{status: 422, wantErr: true, wantPermanent: true},
		{status: 408, wantErr: true},
		{status: 429, wantErr: true},
		{status: 503, wantErr: true},
		{status: 200, delay: 500 * time.Millisecond, wantErr: true}, // timeout
	}
	for _, tt := range tests {
		var gotBody, gotKey, gotAuth string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			gotBody, gotKey, gotAuth = string(b), r.Header.Get(IdempotencyHeader), r.Header.Get("Authorization")
			time.Sleep(tt.delay)
			w.WriteHeader(tt.status)
		}))
		h := HTTP{URL: srv.URL, Headers: map[string]string{"Authorization": "Bearer t"}, Timeout: 200 * time.Millisecond}
		err := h.Import(context.Background(), f, strings.NewReader("a,b\n1,2\n"))
		srv.Close()
		if (err != nil) != tt.wantErr || IsPermanent(err) != tt.wantPermanent {
			t.Errorf("status %d delay %v: err = %v, want error %v permanent %v", tt.status, tt.delay, err, tt.wantErr, tt.wantPermanent)
		}
		if gotBody != "a,b\n1,2\n" || gotKey != f.IdempotencyKey || gotAuth != "Bearer t" {
			t.Errorf("status %d: sink got body %q, idempotency key %q, auth %q", tt.status, gotBody, gotKey, gotAuth)
		}
	}
}

func TestHTTPDoesNotFollowRedirects(t *testing.T) {
	f := File{Key: "imports/x.csv", Size: 8, IdempotencyKey: "b/imports/x.csv/e"}
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		var targetHits atomic.Int32
		target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			targetHits.Add(1)
		}))
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			http.Redirect(w, r, target.URL+"/final", status)
		}))
		client := &http.Client{}
		h := HTTP{URL: redirector.URL + "/files", Headers: map[string]string{"X-Api-Key": "k"}, Client: client}
		err := h.Import(context.Background(), f, strings.NewReader("a,b\n1,2\n"))
		redirector.Close()
		target.Close()
		if err == nil || IsPermanent(err) {
			t.Errorf("status %d: err = %v, want a transient error (the URL is wrong for every file)", status, err)
			continue
		}
		if n := targetHits.Load(); n != 0 {
			t.Errorf("status %d: redirect target got %d requests, want none", status, n)
		}
		if msg := err.Error(); !strings.Contains(msg, target.URL+"/final") || !strings.Contains(msg, strconv.Itoa(status)) || !strings.Contains(msg, "importer.url") {
			t.Errorf("status %d: error does not name the status, the Location and importer.url: %v", status, err)
		}
		if client.CheckRedirect != nil {
			t.Errorf("status %d: Import modified the caller's client", status)
		}
	}
	if http.DefaultClient.CheckRedirect != nil {
		t.Error("Import modified http.DefaultClient")
	}
}

func TestHTTPErrorsRedactTheURL(t *testing.T) {
	f := File{Key: "imports/x.csv", Size: 1}
	// A server that closes every connection without answering.
	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer hangup.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://user:pw-supersecret@elsewhere.example/x?token=supersecret", http.StatusFound)
	}))
	defer redirector.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	}))
	defer slow.Close()
	tests := []struct {
		name, url string
		timeout   time.Duration
	}{
		{name: "connection closed", url: hangup.URL + "/files?token=supersecret"},
		{name: "closed port", url: strings.Replace(closedURL, "http://", "http://user:supersecret@", 1) + "/files?token=supersecret&a=b"},
		{name: "redirect", url: redirector.URL + "/files?token=supersecret"},
		{name: "timeout", url: slow.URL + "/files?token=supersecret", timeout: 50 * time.Millisecond},
		{name: "unparsable", url: "http://user:supersecret@[::1/files?token=supersecret"},
	}
	for _, tt := range tests {
		err := HTTP{URL: tt.url, Timeout: tt.timeout}.Import(context.Background(), f, strings.NewReader("x"))
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if strings.Contains(err.Error(), "supersecret") {
			t.Errorf("%s: error shows the secret: %v", tt.name, err)
		}
		if tt.name == "connection closed" && !strings.Contains(err.Error(), "/files?REDACTED") {
			t.Errorf("%s: error does not show the redacted URL: %v", tt.name, err)
		}
		if tt.name == "timeout" && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: err = %v, want DeadlineExceeded in the chain", tt.name, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"https://host/path":                       "https://host/path",
		"https://host/path?token=s":               "https://host/path?REDACTED",
		"https://u:p@host:8443/path?token=s#frag": "https://host:8443/path?REDACTED",
		"https://host/path?":                      "https://host/path?REDACTED",
		"http://u:p@[::1/files?token=s":           "http://[::1/files?REDACTED",
		"http://u:p@[::1/files#x":                 "http://[::1/files",
		"%zz?token=s":                             "%zz?REDACTED",
		"https://u@host/p":                        "https://host/p",
	}
	for in, want := range tests {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

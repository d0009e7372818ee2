package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3connector/s3connector/config"
)

func TestHTTP(t *testing.T) {
	f := File{Key: "imports/x.csv", Size: 8, ETag: `"e"`, IdempotencyKey: "b/imports/x.csv/e"}
	tests := []struct {
		name      string
		status    int
		delay     time.Duration
		permanent []int // HTTP.PermanentStatus
		wantErr   bool
		// wantPermanent: the sink rejected the content, the file goes to error/.
		wantPermanent bool
		// wantSink: the answer blames the sink or the credentials
		// (ErrSinkMisconfigured), and the error says what to check.
		wantSink bool
		wantText string
	}{
		{status: 200},
		{status: 204},
		{status: 400, wantErr: true, wantPermanent: true, wantText: "400 Bad Request, a rejection of the file's content (importer.permanent_status): nope"},
		{status: 413, wantErr: true, wantPermanent: true},
		{status: 415, wantErr: true, wantPermanent: true},
		{status: 422, wantErr: true, wantPermanent: true},
		{status: 401, wantErr: true, wantSink: true, wantText: "check importer.headers"},
		{status: 403, wantErr: true, wantSink: true, wantText: "check importer.headers and the sink's permissions"},
		{status: 404, wantErr: true, wantSink: true, wantText: "check the URL"},
		{status: 405, wantErr: true, wantSink: true, wantText: "does not accept POST"},
		{status: 407, wantErr: true, wantSink: true, wantText: "proxy"},
		{status: 409, wantErr: true, wantSink: true, wantText: "conflict"},
		{status: 410, wantErr: true, wantSink: true, wantText: "no longer served"},
		{status: 421, wantErr: true, wantSink: true, wantText: "does not serve that host name"},
		{status: 402, wantErr: true, wantText: "402 Payment Required: nope"},
		{status: 408, wantErr: true},
		{status: 429, wantErr: true},
		{status: 500, wantErr: true},
		{status: 503, wantErr: true},
		{name: "timeout", status: 200, delay: 500 * time.Millisecond, wantErr: true},
		{name: "listed 409", status: 409, permanent: []int{409, 500}, wantErr: true, wantPermanent: true},
		{name: "listed 500", status: 500, permanent: []int{409, 500}, wantErr: true, wantPermanent: true},
		{name: "400 not listed", status: 400, permanent: []int{409, 500}, wantErr: true},
		{name: "empty list", status: 422, permanent: []int{}, wantErr: true},
	}
	for _, tt := range tests {
		name := tt.name
		if name == "" {
			name = strconv.Itoa(tt.status)
		}
		t.Run(name, func(t *testing.T) {
			var gotBody, gotKey, gotAuth string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				gotBody, gotKey, gotAuth = string(b), r.Header.Get(IdempotencyHeader), r.Header.Get("Authorization")
				time.Sleep(tt.delay)
				w.WriteHeader(tt.status)
				io.WriteString(w, "nope\n")
			}))
			h := HTTP{URL: srv.URL + "/files?token=supersecret", Headers: map[string]string{"Authorization": "Bearer t"}, Timeout: 200 * time.Millisecond, PermanentStatus: tt.permanent}
			err := h.Import(context.Background(), f, strings.NewReader("a,b\n1,2\n"))
			srv.Close() // waits for the handler: what it saw can be read
			if (err != nil) != tt.wantErr || IsPermanent(err) != tt.wantPermanent || errors.Is(err, ErrSinkMisconfigured) != tt.wantSink {
				t.Fatalf("err = %v, want error %v permanent %v sink misconfigured %v", err, tt.wantErr, tt.wantPermanent, tt.wantSink)
			}
			if gotBody != "a,b\n1,2\n" || gotKey != f.IdempotencyKey || gotAuth != "Bearer t" {
				t.Errorf("sink got body %q, idempotency key %q, auth %q", gotBody, gotKey, gotAuth)
			}
			if err == nil {
				return
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantText) || strings.Contains(msg, "supersecret") {
				t.Errorf("error %q does not contain %q, or shows the URL's query", msg, tt.wantText)
			}
			if tt.wantSink && (!strings.Contains(msg, "not the file") || !strings.Contains(msg, "stays in the inbox") || !strings.Contains(msg, strconv.Itoa(tt.status))) {
				t.Errorf("error %q does not say that the sink, not the file, is wrong, the status and that the file stays", msg)
			}
		})
	}
}

// The importer built from the configuration has its own client, pooled for
// the connection's workers: concurrent imports reuse their connections
// instead of opening new ones (http.DefaultTransport keeps two idle
// connections per host and closes the others while their workers fetch
// their next file), and never open more than the workers need.
func TestHTTPClientPooledForWorkers(t *testing.T) {
	const workers, perWorker = 6, 20
	var newConns atomic.Int32
	var mu sync.Mutex
	active := map[net.Conn]bool{}
	maxActive := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		mu.Lock()
		defer mu.Unlock()
		switch s {
		case http.StateNew:
			newConns.Add(1)
			active[c] = true
			maxActive = max(maxActive, len(active))
		case http.StateClosed, http.StateHijacked:
			delete(active, c)
		}
	}
	srv.Start()
	defer srv.Close()

	imp, err := New(config.Importer{Type: config.ImporterHTTP, URL: srv.URL}, Deps{Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	h := imp.(HTTP)
	if h.Client == nil || h.Client == http.DefaultClient {
		t.Fatalf("client = %v, want one of the importer's own", h.Client)
	}
	tr, ok := h.Client.Transport.(*http.Transport)
	if !ok || tr.MaxIdleConnsPerHost != workers || tr.MaxConnsPerHost != workers || tr.MaxIdleConns != workers {
		t.Fatalf("transport = %T %+v, want idle and max connections per host = %d", h.Client.Transport, tr, workers)
	}
	if tr.Proxy == nil {
		t.Error("transport ignores the proxy environment, unlike http.DefaultTransport")
	}
	// A second importer (another connection) gets a pool of its own.
	if other, _ := New(config.Importer{Type: config.ImporterHTTP, URL: srv.URL}, Deps{Workers: workers}); other.(HTTP).Client == h.Client {
		t.Error("two importers share one client")
	}

	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				f := File{Key: fmt.Sprintf("imports/%d-%d.csv", w, i), Size: 1}
				errs <- h.Import(context.Background(), f, strings.NewReader("x"))
				// Between imports a worker fetches its next file from
				// S3: most connections are idle at the same time.
				time.Sleep(3 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := newConns.Load(); n > workers {
		t.Errorf("%d imports by %d workers opened %d connections, want at most %d", workers*perWorker, workers, n, workers)
	}
	mu.Lock()
	defer mu.Unlock()
	if maxActive > workers {
		t.Errorf("%d connections open at once, want at most %d", maxActive, workers)
	}
}

func TestNewHTTPClient(t *testing.T) {
	tests := []struct {
		name       string
		deps       Deps
		wantConns  int
		wantClient *http.Client
	}{
		{name: "workers", deps: Deps{Workers: 3}, wantConns: 3},
		{name: "workers unset", deps: Deps{}, wantConns: config.DefaultWorkers},
		{name: "client given", deps: Deps{Workers: 3, HTTPClient: &http.Client{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imp, err := New(config.Importer{Type: config.ImporterHTTP, URL: "https://sink.example/files"}, tt.deps)
			if err != nil {
				t.Fatal(err)
			}
			c := imp.(HTTP).Client
			if tt.deps.HTTPClient != nil {
				if c != tt.deps.HTTPClient {
					t.Errorf("client = %p, want Deps.HTTPClient %p", c, tt.deps.HTTPClient)
				}
				return
			}
			if tr := c.Transport.(*http.Transport); tr.MaxIdleConnsPerHost != tt.wantConns || tr.MaxConnsPerHost != tt.wantConns {
				t.Errorf("MaxIdleConnsPerHost %d MaxConnsPerHost %d, want %d", tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost, tt.wantConns)
			}
		})
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

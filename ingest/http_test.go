package ingest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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

package ingest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// IdempotencyHeader carries File.IdempotencyKey on every http import.
const IdempotencyHeader = "Idempotency-Key"

// HTTP POSTs each file's body to URL. 2xx: imported; 4xx other than 408 and
// 429: permanent (the sink rejected the content); 5xx, 408, 429, network
// errors and timeouts: transient.
type HTTP struct {
	URL     string
	Headers map[string]string
	// Timeout bounds one file; 0 means no limit beyond the run's context.
	Timeout time.Duration
	// Client defaults to http.DefaultClient.
	Client *http.Client
}

// Import implements Importer.
func (h HTTP) Import(ctx context.Context, f File, body io.Reader) error {
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, body)
	if err != nil {
		return Permanent(fmt.Errorf("build request for %q: %w", f.Key, err))
	}
	req.ContentLength = f.Size
	if f.Size == 0 {
		req.Body = http.NoBody
	}
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	ct := f.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set(IdempotencyHeader, f.IdempotencyKey)
	req.Header.Set("X-S3connector-Key", f.Key)
	req.Header.Set("X-S3connector-Etag", f.ETag)
	client := h.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post %q: %w", f.Key, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	io.Copy(io.Discard, resp.Body) // reuse the connection
	resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s >= 400 && s < 500 && s != http.StatusRequestTimeout && s != http.StatusTooManyRequests:
		return Permanent(fmt.Errorf("post %q: sink answered %d %s: %s", f.Key, s, http.StatusText(s), msg))
	default:
		return fmt.Errorf("post %q: sink answered %d %s: %s", f.Key, s, http.StatusText(s), msg)
	}
}

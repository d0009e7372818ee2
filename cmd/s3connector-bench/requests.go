package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// serverRequests reads MinIO's own count of S3 requests by API
// (minio_api_requests_total of its v3 metrics, node level and not cached),
// so every variant — the pipeline in its own process included — is counted
// the same way, on the server. Its scrape is authorised with the bearer
// token `mc admin prometheus generate` would make: an HS512 JWT for the
// root user, issuer "prometheus", signed with the root secret.
type serverRequests struct {
	url, token string
}

func newServerRequests(endpoint, accessKey, secretKey string) *serverRequests {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS512","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"exp": time.Now().Add(24 * time.Hour).Unix(), "sub": accessKey, "iss": "prometheus"})
	signing := header + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha512.New, []byte(secretKey))
	mac.Write([]byte(signing))
	return &serverRequests{
		url:   endpoint + "/minio/metrics/v3/api/requests",
		token: signing + "." + enc.EncodeToString(mac.Sum(nil)),
	}
}

// snapshot returns the requests served so far, by API name (getobject, ...).
func (s *serverRequests) snapshot(ctx context.Context) (map[string]int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("minio metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("minio metrics: %s", resp.Status)
	}
	counts := map[string]int{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "minio_api_requests_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		name := ""
		for l := range strings.SplitSeq(labels, ",") {
			if v, ok := strings.CutPrefix(l, `name="`); ok {
				name = strings.TrimSuffix(v, `"`)
			}
		}
		n, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil || name == "" {
			continue
		}
		counts[name] += int(n)
	}
	return counts, sc.Err()
}

// requestCounts are per-API counts, most frequent first.
type requestCounts []opCount

type opCount struct {
	op string
	n  int
}

func diffCounts(before, after map[string]int) requestCounts {
	var rc requestCounts
	for op, n := range after {
		if d := n - before[op]; d > 0 {
			rc = append(rc, opCount{op, d})
		}
	}
	slices.SortFunc(rc, func(a, b opCount) int { return cmp.Or(b.n-a.n, strings.Compare(a.op, b.op)) })
	return rc
}

func (rc requestCounts) total() int {
	t := 0
	for _, c := range rc {
		t += c.n
	}
	return t
}

func (rc requestCounts) String() string {
	parts := make([]string, 0, len(rc))
	for _, c := range rc {
		parts = append(parts, fmt.Sprintf("%s %d", c.op, c.n))
	}
	return fmt.Sprintf("%d requests: %s", rc.total(), strings.Join(parts, ", "))
}

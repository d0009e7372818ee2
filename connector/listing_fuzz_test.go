package connector

import (
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Listing keys come back URL-encoded (EncodingType=url): decoding what S3
// would send gives the stored key back exactly, for any key, and a
// malformed encoding is an error, never a panic or a different key.
func FuzzListedKey(f *testing.F) {
	for _, k := range []string{"a.csv", "dir with space/a+b.csv", "pct%20sign", "ctl\x01char", "日本語/ファイル", "q?&=#;", "%", "%zz", "a+b"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		// S3 encodes like url.QueryEscape but writes spaces as %20, or +.
		for _, enc := range []string{url.QueryEscape(key), strings.ReplaceAll(url.QueryEscape(key), "+", "%20")} {
			got, err := ListedKey(types.EncodingTypeUrl, enc)
			if err != nil || got != key {
				t.Fatalf("ListedKey(url, %q) = %q, %v; want %q", enc, got, err, key)
			}
		}
		// Whatever arrives, decoding never panics.
		_, _ = ListedKey(types.EncodingTypeUrl, key)
		if got, err := ListedKey("", key); err != nil || got != key {
			t.Fatalf("unencoded listing changed %q to %q (%v)", key, got, err)
		}
	})
}

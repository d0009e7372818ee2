package connector

import (
	"fmt"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// ListEncoding is the EncodingType every listing asks for. Without it S3
// writes keys into the XML response as they are, and a key holding a
// character XML 1.0 cannot carry (a control character such as U+0001, which
// S3 allows in keys) makes the whole page unreadable: one oddly named file
// would stop every file of the connection. The SDK does not decode the
// keys it asked to be encoded; ListedKey does.
const ListEncoding = types.EncodingTypeUrl

// ListedKey returns the key of a listing entry as stored: URL-decoded when
// the response says it is encoded (enc, the response's EncodingType), as
// given otherwise (a server that ignores the request answers in plain text,
// and decoding that would turn '+' into a space).
func ListedKey(enc types.EncodingType, key string) (string, error) {
	if enc != types.EncodingTypeUrl {
		return key, nil
	}
	k, err := url.QueryUnescape(key)
	if err != nil {
		return "", fmt.Errorf("listing returned a key that is not URL-encoded although it says so: %q: %w", key, err)
	}
	return k, nil
}

package connector

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"io"
)

// externalIDBytes is the entropy of an External ID: 160 bits, well beyond
// guessing, in 32 characters.
const externalIDBytes = 20

// externalIDEncoding is lowercase RFC 4648 base32 without padding. Its
// alphabet (a-z, 2-7) is a subset of what STS allows in an ExternalId
// ([A-Za-z0-9+=,.@:/_-]) and has neither 0/1 nor 8/9, so "o" and "l" cannot
// be misread as digits; with no punctuation a double-click selects the whole
// ID, and nothing in it is changed by shells, YAML or URL encoding. 20 bytes
// encode to exactly 32 characters, so there is never padding.
var externalIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewExternalID returns a new random External ID for a connection's trust
// policy, from crypto/rand.
func NewExternalID() (string, error) {
	return NewExternalIDFrom(rand.Reader)
}

// NewExternalIDFrom returns an External ID made from the next 20 bytes of r.
// r must be a cryptographically secure source outside tests.
func NewExternalIDFrom(r io.Reader) (string, error) {
	var b [externalIDBytes]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("generate external ID: %w", err)
	}
	return externalIDEncoding.EncodeToString(b[:]), nil
}

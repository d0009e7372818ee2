package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// Tokens are the bearer tokens the API accepts, each with an id for the
// audit log and the store's transitions. Several may be valid at once, for
// rotation: add the new file, move the clients, remove the old file.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	id   string
	hash [sha256.Size]byte
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.entries) }

// MinTokenLength is the shortest token LoadTokens accepts: a token is the
// only thing between the network and the customers' connections.
const MinTokenLength = 32

// LoadTokens reads one token per file (absolute paths; surrounding
// whitespace trimmed). A token's id is its file's base name, which must be
// unique: it is what the audit log shows, never the token.
func LoadTokens(paths []string) (*Tokens, error) {
	t := &Tokens{}
	seen := map[string]string{}
	var problems []string
	for _, p := range paths {
		id, secret, err := readToken(p)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if other, dup := seen[id]; dup {
			problems = append(problems, fmt.Sprintf("%s: its token id %q (the file's name) is also %s's; token files need distinct names", p, id, other))
			continue
		}
		seen[id] = p
		t.entries = append(t.entries, tokenEntry{id: id, hash: sha256.Sum256([]byte(secret))})
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return t, nil
}

// NewTokens builds Tokens from id → token, for tests and programs that
// hold tokens already.
func NewTokens(tokens map[string]string) *Tokens {
	t := &Tokens{}
	for id, secret := range tokens {
		t.entries = append(t.entries, tokenEntry{id: id, hash: sha256.Sum256([]byte(secret))})
	}
	return t
}

func readToken(path string) (id, secret string, err error) {
	if !filepath.IsAbs(path) {
		return "", "", fmt.Errorf("token file %q: must be an absolute path", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("token file: %w", err)
	}
	secret = strings.TrimSpace(string(data))
	switch {
	case secret == "":
		return "", "", fmt.Errorf("token file %s is empty", path)
	case strings.IndexFunc(secret, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r > unicode.MaxASCII }) >= 0:
		return "", "", fmt.Errorf("token file %s holds more than one word, a control or non-ASCII character; it must hold the token alone", path)
	case len(secret) < MinTokenLength:
		return "", "", fmt.Errorf("token file %s: the token must be at least %d characters, got %d (e.g. `openssl rand -hex 32`)", path, MinTokenLength, len(secret))
	}
	return filepath.Base(path), secret, nil
}

// match returns the id of the token that r carries in its Authorization
// header (scheme Bearer), or why it is refused. Every configured token is
// compared, in constant time, whatever matches first. A token anywhere else
// (query string, cookie) is never looked at.
func (t *Tokens) match(r *http.Request) (id, refused string) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		if len(h) > 1 {
			return "", "more than one Authorization header"
		}
		return "", "no bearer token"
	}
	scheme, got, ok := strings.Cut(h[0], " ")
	got = strings.TrimSpace(got)
	if !ok || !strings.EqualFold(scheme, "Bearer") || got == "" {
		return "", "no bearer token"
	}
	have := sha256.Sum256([]byte(got))
	found := -1
	for i, e := range t.entries {
		if subtle.ConstantTimeCompare(e.hash[:], have[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", "invalid token"
	}
	return t.entries[found].id, ""
}

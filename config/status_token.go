package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode"
)

// readStatusToken returns the token in the file at path (status_token_file),
// trimmed of surrounding whitespace. No message shows the token.
func readStatusToken(path string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("must be an absolute path, got %q", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		// The *PathError already names the file.
		return "", fmt.Errorf("cannot read the token: %w", err)
	}
	token := strings.TrimSpace(string(data))
	switch {
	case token == "":
		return "", fmt.Errorf("%s is empty; it must hold the token /status requires", path)
	case strings.IndexFunc(token, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		// No client could send it in an Authorization header.
		return "", errors.New(path + " holds more than one word, or a control character; it must hold the token alone")
	}
	return token, nil
}

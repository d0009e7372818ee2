package connector

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/s3connector/s3connector/config"
)

// Test-only knobs, read from the environment. They exist for the torture
// suite, which needs assumed-role credentials renewed many times in one run
// (torture/credentials_test.go) and SIGKILLs that land in multipart copies
// of small files (torture/crash_test.go); production leaves them unset. New
// checks them all and refuses to make a connection when one is outside the
// range a test may use, so a mistyped knob stops the daemon at start-up.
//
// STS (AWS and MinIO alike) refuses sessions shorter than 900 s, so a test
// asks for a 15-minute session and a refresh window just short of it: the
// cache then renews every session−window.
const (
	// EnvTestSessionDuration overrides SessionDuration (a Go duration).
	EnvTestSessionDuration = "S3CONNECTOR_TEST_SESSION_DURATION"
	// EnvTestRefreshWindow overrides refreshWindow (a Go duration, less
	// than the session duration) and turns the window's jitter off, so
	// renewals come at a predictable spacing.
	EnvTestRefreshWindow = "S3CONNECTOR_TEST_REFRESH_WINDOW"
	// EnvTestMultipartThreshold lowers the size above which a move copies
	// a file part by part (UploadPartCopy) instead of with one CopyObject:
	// archive.SingleCopyLimit, 5 GiB, by default. A size as the config
	// writes sizes (32KiB, 1MiB), from 1 KiB to 5 GiB;
	// archive.Mover reads it through MultipartThresholdOverride.
	EnvTestMultipartThreshold = "S3CONNECTOR_TEST_MULTIPART_THRESHOLD"
)

// Range of EnvTestMultipartThreshold. Below 1 KiB nothing but empty files
// would copy in one request, which no test needs; above 5 GiB (archive's
// SingleCopyLimit, which this package cannot import) CopyObject would be
// asked for more than it can copy.
const (
	minTestMultipartThreshold int64 = 1 << 10
	maxTestMultipartThreshold int64 = 5 << 30
)

// credentialTiming is how long assumed-role credentials are asked for and
// how long before their expiry the cache renews them.
type credentialTiming struct {
	session, window time.Duration
	jitter          float64
}

// credentialTimingFrom applies the test-only knobs found by getenv to the
// production timing.
func credentialTimingFrom(getenv func(string) string) (credentialTiming, error) {
	t := credentialTiming{session: SessionDuration, window: refreshWindow, jitter: 0.5}
	if v := getenv(EnvTestSessionDuration); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return t, fmt.Errorf("%s=%q: want a positive duration", EnvTestSessionDuration, v)
		}
		t.session = d
	}
	if v := getenv(EnvTestRefreshWindow); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return t, fmt.Errorf("%s=%q: want a positive duration", EnvTestRefreshWindow, v)
		}
		t.window, t.jitter = d, 0
	}
	if t.window >= t.session {
		return t, fmt.Errorf("credentials refresh window %s must be shorter than the session duration %s (%s, %s)", t.window, t.session, EnvTestSessionDuration, EnvTestRefreshWindow)
	}
	return t, nil
}

// credentialTimingFromEnv is what New reads: the credential timing, after
// checking every test-only knob (the multipart threshold's too, which New
// does not use itself, so that a bad value is refused before any move).
func credentialTimingFromEnv() (credentialTiming, error) {
	if _, err := multipartThresholdFrom(os.Getenv); err != nil {
		return credentialTiming{}, err
	}
	return credentialTimingFrom(os.Getenv)
}

// multipartThresholdFrom reads EnvTestMultipartThreshold: 0 when unset.
func multipartThresholdFrom(getenv func(string) string) (int64, error) {
	v := getenv(EnvTestMultipartThreshold)
	if v == "" {
		return 0, nil
	}
	size, err := config.ParseByteSize(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %w", EnvTestMultipartThreshold, v, err)
	}
	if n := int64(size); n < minTestMultipartThreshold || n > maxTestMultipartThreshold {
		return 0, fmt.Errorf("%s=%q: want a size from %s to %s (it is a test-only knob: leave it unset in production)",
			EnvTestMultipartThreshold, v, config.ByteSize(minTestMultipartThreshold), config.ByteSize(maxTestMultipartThreshold))
	}
	return int64(size), nil
}

// MultipartThresholdOverride is the multipart copy threshold that
// EnvTestMultipartThreshold sets, or 0 when it is unset (or out of range:
// New has refused every connection then, so no move runs). The environment
// is read once.
func MultipartThresholdOverride() int64 { return testMultipartThreshold() }

var testMultipartThreshold = sync.OnceValue(func() int64 {
	n, err := multipartThresholdFrom(os.Getenv)
	if err != nil {
		return 0
	}
	return n
})

package connector

import (
	"fmt"
	"os"
	"time"
)

// Test-only knobs, read from the environment by New. They exist for the
// torture suite (torture/credentials_test.go), which needs assumed-role
// credentials renewed many times in one run; production leaves them unset.
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

func credentialTimingFromEnv() (credentialTiming, error) { return credentialTimingFrom(os.Getenv) }

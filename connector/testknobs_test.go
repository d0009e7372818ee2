package connector

import (
	"strings"
	"testing"
	"time"
)

func TestCredentialTimingKnobs(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    credentialTiming
		wantErr bool
	}{
		{name: "unset", want: credentialTiming{session: SessionDuration, window: refreshWindow, jitter: 0.5}},
		{name: "both", env: map[string]string{EnvTestSessionDuration: "15m", EnvTestRefreshWindow: "14m30s"},
			want: credentialTiming{session: 15 * time.Minute, window: 14*time.Minute + 30*time.Second}},
		{name: "window not shorter", env: map[string]string{EnvTestSessionDuration: "15m", EnvTestRefreshWindow: "15m"}, wantErr: true},
		{name: "bad duration", env: map[string]string{EnvTestRefreshWindow: "soon"}, wantErr: true},
		{name: "negative", env: map[string]string{EnvTestSessionDuration: "-1m"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := credentialTimingFrom(func(k string) string { return tt.env[k] })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("timing = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMultipartThresholdKnob(t *testing.T) {
	tests := []struct {
		value   string
		want    int64
		wantErr bool
	}{
		{value: "", want: 0},
		{value: "32KiB", want: 32 << 10},
		{value: "1024", want: 1 << 10},
		{value: "5GiB", want: 5 << 30},
		{value: "1023", wantErr: true},
		{value: "0", wantErr: true},
		{value: "6GiB", wantErr: true},
		{value: "-1MiB", wantErr: true},
		{value: "big", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			got, err := multipartThresholdFrom(func(k string) string {
				if k == EnvTestMultipartThreshold {
					return tt.value
				}
				return ""
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("threshold = %d, want %d", got, tt.want)
			}
		})
	}
}

// New refuses a connection while a knob is out of range, the multipart
// threshold's too (New does not use it itself).
func TestNewRefusesBadTestKnob(t *testing.T) {
	t.Setenv(EnvTestMultipartThreshold, "1B")
	_, err := New(platformConfig("k", "s"), platformPrincipal, minioConnection("http://127.0.0.1:1", "knob", "bucket", ""))
	if err == nil || !strings.Contains(err.Error(), EnvTestMultipartThreshold) {
		t.Fatalf("New with %s=1B: %v, want an error naming the knob", EnvTestMultipartThreshold, err)
	}
}

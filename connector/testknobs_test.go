package connector

import (
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

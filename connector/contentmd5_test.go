package connector

import "testing"

func TestContentMD5(t *testing.T) {
	tests := []struct{ body, want string }{
		{"", "1B2M2Y8AsgTpgAmY7PhCfg=="}, // MD5 d41d8cd98f00b204e9800998ecf8427e, base64
		{"The quick brown fox jumps over the lazy dog", "nhB9nTcrtoJr2B01QqQZ1g=="},
	}
	for _, tt := range tests {
		if got := ContentMD5([]byte(tt.body)); got != tt.want {
			t.Errorf("ContentMD5(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

package config

import "testing"

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{"0", 0, false},
		{"1048576", 1 << 20, false},
		{"512MiB", 512 << 20, false},
		{"5GB", 5e9, false},
		{"1.5GiB", 3 << 29, false},
		{" 10 KiB ", 10 << 10, false},
		{"7B", 7, false},
		{"-1", 0, true},
		{"ten", 0, true},
		{"5XB", 0, true},
		{"NaN", 0, true},
		{"1e30TB", 0, true},
	} {
		got, err := ParseByteSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if s := ByteSize(512 << 20).String(); s != "512MiB" {
		t.Errorf("String() = %q", s)
	}
}

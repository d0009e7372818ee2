package connector

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"testing"
	"testing/iotest"
)

// stsExternalIDPattern is the ExternalId character set STS documents for
// AssumeRole; the length must also be 2..1224.
var stsExternalIDPattern = regexp.MustCompile(`^[\w+=,.@:/-]+$`)

func TestExternalIDFormat(t *testing.T) {
	id, err := NewExternalID()
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 32 {
		t.Errorf("len(%q) = %d, want 32", id, len(id))
	}
	if !stsExternalIDPattern.MatchString(id) || len(id) < 2 || len(id) > 1224 {
		t.Errorf("%q is not a valid STS ExternalId", id)
	}
	if !regexp.MustCompile(`^[a-z2-7]+$`).MatchString(id) {
		t.Errorf("%q has characters outside lowercase base32", id)
	}
	raw, err := externalIDEncoding.DecodeString(id)
	if err != nil {
		t.Fatalf("decode %q: %v", id, err)
	}
	if bits := 8 * len(raw); bits < 128 {
		t.Errorf("%q carries %d bits, want at least 128", id, bits)
	}
}

func TestExternalIDUnique(t *testing.T) {
	const n = 1000
	seen := make(map[string]bool, n)
	for range n {
		id, err := NewExternalID()
		if err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("duplicate external ID %q", id)
		}
		seen[id] = true
	}
}

func TestExternalIDFromFixedReader(t *testing.T) {
	seed := make([]byte, 20)
	for i := range seed {
		seed[i] = byte(i)
	}
	// base64.b32encode(bytes(range(20))).lower() in Python.
	const want = "aaaqeayeaudaocajbifqydiob4ibceqt"
	for range 2 {
		got, err := NewExternalIDFrom(bytes.NewReader(seed))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("NewExternalIDFrom = %q, want %q", got, want)
		}
	}
}

func TestExternalIDReaderFails(t *testing.T) {
	boom := errors.New("entropy source broken")
	tests := []struct {
		name string
		r    io.Reader
		want error
	}{
		{"error", iotest.ErrReader(boom), boom},
		{"short", bytes.NewReader(make([]byte, 19)), io.ErrUnexpectedEOF},
		{"empty", bytes.NewReader(nil), io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := NewExternalIDFrom(tt.r)
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if id != "" {
				t.Errorf("id = %q on error, want empty", id)
			}
		})
	}
}

package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ByteSize is a size in bytes. In YAML it is a whole number of bytes or a
// number with a unit: KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB,
// TiB (powers of 1024), e.g. 512MiB, 5GB, 1.5GiB.
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	factor float64
}{
	// Longest first, so "KiB" is not read as "B".
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseByteSize reads a size as ByteSize documents it.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	num, factor := s, 1.0
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, factor = strings.TrimSpace(n), u.factor
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a size: use a number of bytes or a number with a unit (KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 512MiB", s)
	}
	b := v * factor
	if b < 0 || b > math.MaxInt64 {
		return 0, fmt.Errorf("size %q is out of range", s)
	}
	return ByteSize(b), nil
}

// UnmarshalYAML implements yaml.Unmarshaler. Its messages name the line,
// as the decoder's own do; the loader names the field after it (expandEnv
// decodes every size alone first, knowing its path).
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a size must be a number or a string such as 512MiB", n.Line)
	}
	if strings.Contains(n.Value, "${") {
		// The strictness pass reads the file before expansion (see
		// decodeStrict); the expanded value is decoded again later.
		return nil
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*b = v
	return nil
}

// String prints the size in the largest binary unit that divides it.
func (b ByteSize) String() string {
	for _, u := range []struct {
		suffix string
		factor int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.factor == 0 {
			return strconv.FormatInt(int64(b)/u.factor, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

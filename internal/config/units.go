package config

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String renders d so that ParseDuration reads it back unchanged.
func (d Duration) String() string { return time.Duration(d).String() }

// ParseDuration reads "30s", "1m30s" or "250ms". A bare number is refused:
// "30" could mean seconds or nanoseconds, and guessing wrong is silent.
func ParseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (write e.g. 30s, 500ms, 1m)", s)
	}
	return Duration(v), nil
}

// Set and Type make *Duration a pflag.Value, so commands can take
// --timeout with the same syntax as the file.
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Type names the flag's value in help output.
func (d *Duration) Type() string { return "duration" }

// UnmarshalYAML lets plain yaml.Unmarshal read a Duration too.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a duration, got %s", n.Line, kindName(n))
	}
	return d.Set(n.Value)
}

// MarshalYAML writes d as its string form.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ByteSize is a size written as "1MiB", "512KB", "1.5MB" or a plain number
// of bytes. KB, MB, GB and TB are powers of 1000; KiB, MiB, GiB and TiB are
// powers of 1024, as in SI and IEC.
type ByteSize int64

// Int64 returns the size in bytes.
func (b ByteSize) Int64() int64 { return int64(b) }

var sizeUnits = []struct {
	name string
	mult int64
}{
	// Largest first: String picks the largest unit that divides exactly,
	// and "b" must come last so that "1KiB" is not read as "1Ki" bytes.
	{"tib", 1 << 40}, {"tb", 1e12}, {"gib", 1 << 30}, {"gb", 1e9},
	{"mib", 1 << 20}, {"mb", 1e6}, {"kib", 1 << 10}, {"kb", 1e3},
	{"b", 1},
}

// ParseByteSize reads a size; units are case-insensitive and may be
// separated from the number by a space.
func ParseByteSize(s string) (ByteSize, error) {
	bad := fmt.Errorf("%q is not a size (write e.g. 1MiB, 512KB, 1.5MB or a number of bytes)", s)
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(t, u.name); ok {
			t, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	if t == "" || strings.ContainsAny(t, "+-eEnNxX_") {
		// Signs, exponents, hex, underscores and inf/nan are valid for
		// ParseFloat/ParseInt but not sizes anyone means to write.
		return 0, bad
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if n > math.MaxInt64/mult {
			return 0, fmt.Errorf("%q is too large", s)
		}
		return ByteSize(n * mult), nil
	}
	// A fraction is computed exactly ("1.1KB" is 1100, not 1100.0000000000002).
	r, ok := new(big.Rat).SetString(t)
	if !ok || strings.Count(t, ".") != 1 {
		return 0, bad
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	if !r.Num().IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(r.Num().Int64()), nil
}

// String renders b in the largest unit that holds it exactly, so that
// ParseByteSize reads it back unchanged: 1048576 is "1MiB", 1500000 "1500KB", 512000 "500KiB".
func (b ByteSize) String() string {
	n := int64(b)
	if n != 0 {
		for _, u := range sizeUnits {
			if u.mult > 1 && n%u.mult == 0 {
				return strconv.FormatInt(n/u.mult, 10) + unitCase[u.name]
			}
		}
	}
	return strconv.FormatInt(n, 10)
}

var unitCase = map[string]string{
	"tib": "TiB", "gib": "GiB", "mib": "MiB", "kib": "KiB",
	"tb": "TB", "gb": "GB", "mb": "MB", "kb": "KB",
}

// Set and Type make *ByteSize a pflag.Value (--max-body 2MiB).
func (b *ByteSize) Set(s string) error {
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Type names the flag's value in help output.
func (b *ByteSize) Type() string { return "size" }

// UnmarshalYAML lets plain yaml.Unmarshal read a ByteSize too.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a size, got %s", n.Line, kindName(n))
	}
	return b.Set(n.Value)
}

// MarshalYAML writes b as its string form.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

package config

import (
	"testing"
	"time"
)

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		str  string
	}{
		{"0", 0, "0"},
		{"512", 512, "512"},
		{"1MiB", 1 << 20, "1MiB"},
		{"1mib", 1 << 20, "1MiB"},
		{"512KB", 512000, "500KiB"},
		{"1.5MB", 1500000, "1500KB"},
		{"1.1KB", 1100, "1100"},
		{"1.5KiB", 1536, "1536"},
		{"2 GiB", 2 << 30, "2GiB"},
		{"8TB", 8e12, "8TB"},
		{"100B", 100, "100"},
		{"1024", 1024, "1KiB"},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if err != nil || got.Int64() != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			continue
		}
		if got.String() != tt.str {
			t.Errorf("ByteSize(%d).String() = %q, want %q", got, got.String(), tt.str)
		}
		back, err := ParseByteSize(got.String())
		if err != nil || back != got {
			t.Errorf("round trip of %q: %d, %v", got.String(), back, err)
		}
	}
	for _, bad := range []string{"", "MB", "-1", "+1", "1e3", "0x10", "1.5", "1.0001KB", "abc", "1 megabyte", "1/2KB", "inf", "NaN", "99999999999TB", "1_000"} {
		if v, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want an error", bad, v)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{{"30s", 30 * time.Second}, {"1m30s", 90 * time.Second}, {"250ms", 250 * time.Millisecond}, {" 2h ", 2 * time.Hour}} {
		var d Duration
		if err := d.Set(tt.in); err != nil || d.Std() != tt.want {
			t.Errorf("Set(%q) = %v, %v", tt.in, d, err)
		}
		var back Duration
		if err := back.Set(d.String()); err != nil || back != d {
			t.Errorf("round trip of %q: %v, %v", d.String(), back, err)
		}
	}
	for _, bad := range []string{"", "30", "abc", "1 minute"} {
		var d Duration
		if err := d.Set(bad); err == nil {
			t.Errorf("Set(%q) = %v, want an error", bad, d)
		}
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"1MiB", "512KB", "1.5MB", "0", "1.1KB", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseByteSize(s)
		if err != nil {
			return
		}
		if b < 0 {
			t.Fatalf("ParseByteSize(%q) = %d, negative", s, b)
		}
		back, err := ParseByteSize(b.String())
		if err != nil || back != b {
			t.Fatalf("round trip %q -> %d -> %q -> %d, %v", s, b, b.String(), back, err)
		}
	})
}

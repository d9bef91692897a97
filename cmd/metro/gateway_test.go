package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/metropolis-dev/metro/internal/natstest"
)

// TestGatewayCommandRefusals: credentials that cannot work stop metro
// gateway before it listens, with one line on stderr that says why and
// shows no password, and a non-zero exit.
func TestGatewayCommandRefusals(t *testing.T) {
	t.Setenv("NATS_URL", "")
	seed, nkeyOpts := natstest.NKeyUser(t)
	locked := natstest.RunWith(t, nkeyOpts)
	withPassword := strings.Replace(locked.ClientURL(), "nats://", "nats://me:hunter2@", 1)
	notASeed := filepath.Join(t.TempDir(), "not-a-seed")
	if err := os.WriteFile(notASeed, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := []string{"--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no credentials", []string{"--nats", locked.ClientURL()}, "authorization violation"},
		{"a wrong password", []string{"--nats", withPassword}, "nats://me:xxxxx@"},
		{"an nkey file without a seed", []string{"--nats", locked.ClientURL(), "--nkey", notASeed}, "nkey seed file " + notASeed},
		{"a certificate without its key", []string{"--nats", locked.ClientURL(), "--nkey", seed, "--tls-cert", notASeed}, "--tls-cert and --tls-key go together"},
		{"a missing CA file", []string{"--nats", locked.ClientURL(), "--nkey", seed, "--tls-ca", notASeed + ".missing"}, notASeed + ".missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append(append([]string{"gateway"}, tc.args...), listen...)...)
			if code == 0 {
				t.Fatalf("exit 0; stderr:\n%s", stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.Contains(strings.ToLower(lines[0]), strings.ToLower(tc.want)) {
				t.Fatalf("stderr:\n%s\nwant one line containing %q", stderr, tc.want)
			}
			if stdout != "" || strings.Contains(stderr, "hunter2") {
				t.Errorf("stdout %q, stderr %q", stdout, stderr)
			}
		})
	}
}

// TestGatewayCommandNamesTheBadFlag: in a project, a bad flag value is
// reported under the flag, not at metro.yaml's line for the key it
// overrides, and is a usage error (exit 2).
func TestGatewayCommandNamesTheBadFlag(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "metro.yaml"), []byte("name: p\ngateway:\n  listen: \":7000\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "nope"}, `metro: --listen: "nope" is not host:port (e.g. ":8080")`},
		{[]string{"--max-in-flight", "-1"}, `metro: --max-in-flight: -1 is negative (0: no limit)`},
		{[]string{"--max-body-memory", "512KiB"}, `metro: --max-body-memory: 512KiB is less than the 1MiB of one body the gateway may hold (gateway.max_body, at most 8MiB): a body of that size could never be read`},
	} {
		code, _, stderr := runCLI(t, append([]string{"gateway"}, tc.args...)...)
		if code != 2 || strings.TrimSpace(stderr) != tc.want {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestGatewayCommandPolicyFlags: a bad policy flag is a usage error named
// after the flag, and one that needs another key says which.
func TestGatewayCommandPolicyFlags(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "metro.yaml"), []byte("name: p\ngateway:\n  cors: {origins: [\"*\"]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--jwks", "ftp://x/keys"}, `metro: --jwks: "ftp://x/keys": a JWKS URL must be http:// or https://`},
		{[]string{"--rate-limit", "lots"}, `metro: --rate-limit: "lots" is not a rate (write e.g. 100/s, 5/m, 1000/h)`},
		{[]string{"--cors-origins", "https://a.example.com/x"}, `metro: --cors-origins: "https://a.example.com/x" is not an origin`},
	}
	for _, tc := range tests {
		code, _, stderr := runCLI(t, append([]string{"gateway"}, tc.args...)...)
		if code != 2 || !strings.HasPrefix(strings.TrimSpace(stderr), tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
}

package devserver

import (
	"bytes"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestConfigErrors: each mistake stops metro dev before anything starts,
// with one message that says where to fix it.
func TestConfigErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	busyAddr := busy.Addr().String()
	good := "  hello:\n    run: sleep 1000\n"

	tests := []struct {
		name     string
		yaml     string
		natsPort *int
		want     []string // each must appear in the error
	}{
		{
			name: "unknown key",
			yaml: "name: x\ngateway:\n  listen: \"127.0.0.1:0\"\n  lisen: \":8080\"\nworkers:\n" + good,
			want: []string{"metro.yaml:4:", "lisen"},
		},
		{
			name: "bad type",
			yaml: "name: x\nworkers:\n  hello:\n    run: sleep 1000\n    replicas: many\n",
			want: []string{"metro.yaml:5:", "replicas"},
		},
		{
			name: "missing worker path",
			yaml: "name: x\nworkers:\n  hello:\n    path: ./workers/nope\n",
			want: []string{"metro.yaml:4:", "workers.hello.path", "./workers/nope does not exist"},
		},
		{
			name: "NATS port in use",
			yaml: "name: x\ngateway:\n  listen: \"127.0.0.1:0\"\n  admin: \"\"\nnats:\n  port: " + strconv.Itoa(busyPort) + "\nworkers:\n" + good,
			want: []string{"metro.yaml:6:", "nats.port", "port " + strconv.Itoa(busyPort) + " is in use", "--nats-port 0"},
		},
		{
			name:     "NATS port in use, from the flag",
			yaml:     "name: x\ngateway:\n  listen: \"127.0.0.1:0\"\n  admin: \"\"\nworkers:\n" + good,
			natsPort: &busyPort,
			want:     []string{"--nats-port " + strconv.Itoa(busyPort) + ": port in use"},
		},
		{
			name: "gateway port in use",
			yaml: "name: x\ngateway:\n  listen: \"" + busyAddr + "\"\n  admin: \"\"\nnats:\n  port: 0\nworkers:\n" + good,
			want: []string{"metro.yaml:3:", "gateway.listen", "address already in use"},
		},
		{
			name: "no workers",
			yaml: "name: x\n",
			want: []string{"metro.yaml", "no workers to run"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeProject(t, map[string]string{"metro.yaml": tt.yaml})
			var out bytes.Buffer
			err := Run(t.Context(), Options{Dir: dir, Out: &out, NATSPort: tt.natsPort, Getenv: func(string) string { return "" }})
			if err == nil {
				t.Fatalf("Run succeeded; output:\n%s", out.String())
			}
			msg := err.Error()
			t.Log(msg)
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(strings.TrimSpace(msg), "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !regexp.MustCompile(`metro\.yaml`).MatchString(msg) && tt.natsPort == nil {
				t.Errorf("error %q does not name the file", msg)
			}
		})
	}
}

package natsconn_test

import (
	"testing"

	"github.com/metropolis-dev/metro/internal/natsconn"
)

// TestRedact: passwords and bare tokens never reach the screen or logs.
func TestRedact(t *testing.T) {
	tests := []struct{ url, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://me:secret@h:4222", "nats://me:xxxxx@h:4222"},
		{"nats://s3cr3tt0ken@h:4222", "nats://xxxxx@h:4222"},
		{"nats://a:1,nats://u:p@b:2", "nats://a:1,nats://u:xxxxx@b:2"},
	}
	for _, tt := range tests {
		if got := natsconn.Redact(tt.url); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
}

package tracing

import (
	"errors"
	"testing"
)

func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"endpoint", map[string]string{EnvEndpoint: "http://c:4318"}, true},
		{"traces endpoint", map[string]string{EnvTracesEndpoint: "http://c:4318/v1/traces"}, true},
		{"exporter otlp, default endpoint", map[string]string{EnvExporter: "otlp"}, true},
		{"exporter none", map[string]string{EnvEndpoint: "http://c:4318", EnvExporter: "none"}, false},
		{"sdk disabled", map[string]string{EnvEndpoint: "http://c:4318", EnvDisabled: "TRUE"}, false},
		{"sampler alone exports nothing", map[string]string{EnvSampler: "always_on"}, false},
		{"service name alone exports nothing", map[string]string{EnvServiceName: "x"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Enabled(func(k string) string { return tc.env[k] }); got != tc.want {
				t.Errorf("Enabled = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNewProvider(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tp, err := NewProvider(t.Context(), Options{Service: "x", Getenv: env(nil)})
	if tp != nil || err != nil {
		t.Errorf("no variables: provider %v, err %v; want none (tracing off)", tp, err)
	}
	_, err = NewProvider(t.Context(), Options{Service: "x", Getenv: env(map[string]string{EnvEndpoint: "http://c:4318", EnvProtocol: "grpc"})})
	if !errors.Is(err, ErrProtocol) {
		t.Errorf("grpc: err %v, want ErrProtocol", err)
	}
	tp, err = NewProvider(t.Context(), Options{Service: "x", Getenv: env(nil), Also: []string{"http://127.0.0.1:1/v1/traces"}})
	if tp == nil || err != nil {
		t.Fatalf("Also: provider %v, err %v", tp, err)
	}
	_ = Shutdown(tp) // nothing listens there: the flush may fail, quickly
}

package tracing

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// The standard variables this package reads (the OpenTelemetry SDK
// environment specification); the exporter reads the rest of
// OTEL_EXPORTER_OTLP_* (headers, timeout, compression, certificates).
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvServiceName    = "OTEL_SERVICE_NAME"
	EnvSampler        = "OTEL_TRACES_SAMPLER"
	EnvExporter       = "OTEL_TRACES_EXPORTER"
	EnvDisabled       = "OTEL_SDK_DISABLED"
	EnvBatchDelay     = "OTEL_BSP_SCHEDULE_DELAY"
)

// Enabled reports whether the environment asks for spans to be exported:
// an OTLP endpoint is set, or OTEL_TRACES_EXPORTER=otlp, and neither
// OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says otherwise.
// Without any of them metro makes no spans at all.
func Enabled(getenv func(string) string) bool {
	if getenv == nil {
		getenv = os.Getenv
	}
	if strings.EqualFold(strings.TrimSpace(getenv(EnvDisabled)), "true") {
		return false
	}
	switch strings.TrimSpace(getenv(EnvExporter)) {
	case "none":
		return false
	case "otlp":
		return true
	}
	return getenv(EnvEndpoint) != "" || getenv(EnvTracesEndpoint) != ""
}

// ErrProtocol is returned for an OTLP protocol other than http/protobuf.
var ErrProtocol = errors.New("metro exports OTLP over HTTP with protobuf only")

// Options shape a provider.
type Options struct {
	// Service is the service.name unless OTEL_SERVICE_NAME (or
	// OTEL_RESOURCE_ATTRIBUTES) sets one.
	Service string
	// Getenv reads the OTEL_* variables (default os.Getenv). The OTLP
	// exporter itself reads the process environment.
	Getenv func(string) string
	// Also are further OTLP/HTTP trace endpoints (full URLs, ".../v1/traces")
	// that get every span, whether or not the environment asks for export:
	// metro dev's own receiver.
	Also []string
	// BatchTimeout is how long finished spans wait to be sent; default
	// OTEL_BSP_SCHEDULE_DELAY, else the SDK's 5s.
	BatchTimeout time.Duration
}

// NewProvider returns a tracer provider that exports to the endpoints the
// environment names and to o.Also, sampling as OTEL_TRACES_SAMPLER says
// (default: parent-based, always on). It returns nil, nil when there is
// nowhere to export: tracing is then off. Shut the provider down to flush.
func NewProvider(ctx context.Context, o Options) (*sdktrace.TracerProvider, error) {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	var exporters []sdktrace.SpanExporter
	if Enabled(o.Getenv) {
		proto := o.Getenv(EnvTracesProtocol)
		if proto == "" {
			proto = o.Getenv(EnvProtocol)
		}
		if proto != "" && proto != "http/protobuf" {
			return nil, errorf("%s=%s: %w; set it to http/protobuf", EnvProtocol, proto, ErrProtocol)
		}
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, errorf("building the OTLP exporter: %w", err)
		}
		exporters = append(exporters, exp)
	}
	for _, u := range o.Also {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(u))
		if err != nil {
			return nil, errorf("building the OTLP exporter for %s: %w", u, err)
		}
		exporters = append(exporters, exp)
	}
	if len(exporters) == 0 {
		return nil, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(o.Service)),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, errorf("describing the service: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	for _, exp := range exporters {
		var bo []sdktrace.BatchSpanProcessorOption
		if o.BatchTimeout > 0 {
			bo = append(bo, sdktrace.WithBatchTimeout(o.BatchTimeout))
		}
		opts = append(opts, sdktrace.WithBatcher(exp, bo...))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

// Shutdown flushes and stops tp within a few seconds; nil is fine.
func Shutdown(tp *sdktrace.TracerProvider) error {
	if tp == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		return errorf("flushing spans: %w", err)
	}
	return nil
}

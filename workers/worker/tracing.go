package worker

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"

	"github.com/fleetflow/fleetflow/internal/config"
)

// SetupTracing installs, when cfg.Tracing.Endpoint is set, a tracer
// provider that batches spans to that OTLP/gRPC collector as the process's
// global one (W3C trace context propagation), naming the process service
// (e.g. fleetflow-workers). It returns the function that flushes and stops
// it (a no-op without an endpoint). Errors: the exporter cannot be built.
func SetupTracing(ctx context.Context, cfg config.Config, service string) (func(context.Context) error, error) {
	if cfg.Tracing.Endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Tracing.Endpoint)}
	if cfg.Tracing.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing.endpoint %s: %w", cfg.Tracing.Endpoint, err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewWithAttributes(semconv.SchemaURL, semconv.ServiceName(service))))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return tp.Shutdown, nil
}

// tracingInterceptor is the Temporal SDK's OpenTelemetry interceptor on
// the global tracer provider: client calls (start, signal, update), workflow
// runs and activities become spans of one trace, carried in the
// workflows' headers.
func tracingInterceptor() (interceptor.ClientInterceptor, error) {
	return opentelemetry.NewTracingInterceptor(opentelemetry.TracerOptions{
		Tracer: otel.GetTracerProvider().Tracer("github.com/fleetflow/fleetflow"),
	})
}

package otlp

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc/credentials"
)

// retry is how long one request is retried while the endpoint says
// "unavailable" or "too many requests": a collector that restarts loses
// nothing, one that is gone costs one batch's worth of waiting, during
// which the queue in front absorbs (or drops, counted) what comes. Stop's
// deadline cuts it short.
type retry struct {
	initial, max, elapsed time.Duration
}

var exportRetry = retry{initial: 200 * time.Millisecond, max: 2 * time.Second, elapsed: 10 * time.Second}

// noRetry is the start check's: one answer, or the error.
var noRetry = retry{}

// Every option is set, so the SDK reads no OTEL_EXPORTER_OTLP_* variable
// itself: Parse has read and checked them, once.

func logExporter(ep *Endpoint, r retry) (sdklog.Exporter, error) {
	if ep.Protocol == ProtocolGRPC {
		opts := []otlploggrpc.Option{
			otlploggrpc.WithEndpoint(ep.URL.Host),
			otlploggrpc.WithHeaders(ep.Headers),
			otlploggrpc.WithTimeout(ep.Timeout),
			otlploggrpc.WithRetry(otlploggrpc.RetryConfig{Enabled: r.elapsed > 0, InitialInterval: r.initial, MaxInterval: r.max, MaxElapsedTime: r.elapsed}),
		}
		if ep.Compression == "gzip" {
			// Not set otherwise: the SDK takes "" for an error. Unset,
			// it reads the variable Parse read.
			opts = append(opts, otlploggrpc.WithCompressor("gzip"))
		}
		if ep.Secure() {
			opts = append(opts, otlploggrpc.WithTLSCredentials(credentials.NewTLS(ep.TLS)))
		} else {
			opts = append(opts, otlploggrpc.WithInsecure())
		}
		return otlploggrpc.New(context.Background(), opts...)
	}
	opts := []otlploghttp.Option{
		otlploghttp.WithEndpoint(ep.URL.Host),
		otlploghttp.WithURLPath(ep.URL.Path),
		otlploghttp.WithHeaders(ep.Headers),
		otlploghttp.WithTimeout(ep.Timeout),
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: r.elapsed > 0, InitialInterval: r.initial, MaxInterval: r.max, MaxElapsedTime: r.elapsed}),
		otlploghttp.WithCompression(otlploghttp.Compression(httpCompression(ep))),
	}
	if ep.Secure() {
		opts = append(opts, otlploghttp.WithTLSClientConfig(ep.TLS))
	} else {
		opts = append(opts, otlploghttp.WithInsecure())
	}
	return otlploghttp.New(context.Background(), opts...)
}

func metricExporter(ep *Endpoint, r retry, timeout time.Duration) (sdkmetric.Exporter, error) {
	if ep.Protocol == ProtocolGRPC {
		opts := []otlpmetricgrpc.Option{
			otlpmetricgrpc.WithEndpoint(ep.URL.Host),
			otlpmetricgrpc.WithHeaders(ep.Headers),
			otlpmetricgrpc.WithTimeout(timeout),
			otlpmetricgrpc.WithRetry(otlpmetricgrpc.RetryConfig{Enabled: r.elapsed > 0, InitialInterval: r.initial, MaxInterval: r.max, MaxElapsedTime: r.elapsed}),
		}
		if ep.Compression == "gzip" {
			// Not set otherwise: the SDK takes "" for an error. Unset,
			// it reads the variable Parse read.
			opts = append(opts, otlpmetricgrpc.WithCompressor("gzip"))
		}
		if ep.Secure() {
			opts = append(opts, otlpmetricgrpc.WithTLSCredentials(credentials.NewTLS(ep.TLS)))
		} else {
			opts = append(opts, otlpmetricgrpc.WithInsecure())
		}
		return otlpmetricgrpc.New(context.Background(), opts...)
	}
	opts := []otlpmetrichttp.Option{
		otlpmetrichttp.WithEndpoint(ep.URL.Host),
		otlpmetrichttp.WithURLPath(ep.URL.Path),
		otlpmetrichttp.WithHeaders(ep.Headers),
		otlpmetrichttp.WithTimeout(timeout),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: r.elapsed > 0, InitialInterval: r.initial, MaxInterval: r.max, MaxElapsedTime: r.elapsed}),
		otlpmetrichttp.WithCompression(otlpmetrichttp.Compression(httpCompression(ep))),
	}
	if ep.Secure() {
		opts = append(opts, otlpmetrichttp.WithTLSClientConfig(ep.TLS))
	} else {
		opts = append(opts, otlpmetrichttp.WithInsecure())
	}
	return otlpmetrichttp.New(context.Background(), opts...)
}

func spanExporter(ep *Endpoint, r retry) (sdktrace.SpanExporter, error) {
	if ep.Protocol == ProtocolGRPC {
		opts := []otlptracegrpc.Option{
			otlptracegrpc.WithEndpoint(ep.URL.Host),
			otlptracegrpc.WithHeaders(ep.Headers),
			otlptracegrpc.WithTimeout(ep.Timeout),
			otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{Enabled: r.elapsed > 0, InitialInterval: r.initial, MaxInterval: r.max, MaxElapsedTime: r.elapsed}),
		}
		if ep.Compression == "gzip" {
			// Not set otherwise: the SDK takes "" for an error. Unset,
			// it reads the variable Parse read.
			opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
		}
		if ep.Secure() {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(ep.TLS)))
		} else {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		return otlptracegrpc.New(context.Background(), opts...)
	}
	opts := []otlptracehttp.Option{
		otlptracehttp.WithEndpoint(ep.URL.Host),
		otlptracehttp.WithURLPath(ep.URL.Path),
		otlptracehttp.WithHeaders(ep.Headers),
		otlptracehttp.WithTimeout(ep.Timeout),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: r.elapsed > 0, InitialInterval: r.initial, MaxInterval: r.max, MaxElapsedTime: r.elapsed}),
		otlptracehttp.WithCompression(otlptracehttp.Compression(httpCompression(ep))),
	}
	if ep.Secure() {
		opts = append(opts, otlptracehttp.WithTLSClientConfig(ep.TLS))
	} else {
		opts = append(opts, otlptracehttp.WithInsecure())
	}
	return otlptracehttp.New(context.Background(), opts...)
}

// httpCompression is 1 (gzip) or 0 (none), the value of every HTTP
// exporter's Compression type.
func httpCompression(ep *Endpoint) int {
	if ep.Compression == "gzip" {
		return 1
	}
	return 0
}

package otlp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// ErrEndpoint is what Check's error wraps: the endpoint did not answer, or
// refused the request.
var ErrEndpoint = errors.New("otlp export: the endpoint does not take requests")

// Check asks the endpoint whether it takes requests, before the trace
// begins: a metrics request that holds the session's resource and no
// data, over the protocol, TLS and headers the export will use, without
// retries and bounded by Settings.CheckTimeout. A signal sent to another
// host is checked by connecting to it. The error (also in the summary)
// says what to do.
func (e *Exporter) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, e.set.CheckTimeout)
	defer cancel()
	err := e.check(ctx)
	if err != nil {
		e.errMu.Lock()
		e.startErr = err
		e.errMu.Unlock()
	}
	return err
}

func (e *Exporter) check(ctx context.Context) error {
	checked := map[string]bool{}
	if e.sends(SignalMetrics) {
		ep := e.cfg.Metrics
		exp, err := metricExporter(ep, noRetry, e.set.CheckTimeout)
		if err != nil {
			return fmt.Errorf("otlp export: checking %s: %w", ep.URL, err)
		}
		err = exp.Export(ctx, &metricdata.ResourceMetrics{Resource: sessionResource(e.cfg, e.sess)})
		_ = exp.Shutdown(context.Background())
		if err != nil {
			return checkError(ep, err)
		}
		checked[ep.URL.Host] = true
	}
	for _, s := range []string{SignalLogs, SignalTraces} {
		ep := e.endpoint(s)
		if !e.sends(s) || checked[ep.URL.Host] {
			continue
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", hostPort(ep))
		if err != nil {
			return checkError(ep, err)
		}
		_ = c.Close()
		checked[ep.URL.Host] = true
	}
	return nil
}

func (e *Exporter) endpoint(signal string) *Endpoint {
	switch signal {
	case SignalLogs:
		return e.cfg.Logs
	case SignalMetrics:
		return e.cfg.Metrics
	}
	return e.cfg.Traces
}

// hostPort is the address to connect to: the URL's port or the scheme's.
func hostPort(ep *Endpoint) string {
	if p := ep.URL.Port(); p != "" {
		return ep.URL.Host
	}
	if ep.Secure() {
		return net.JoinHostPort(ep.URL.Hostname(), "443")
	}
	return net.JoinHostPort(ep.URL.Hostname(), "80")
}

// checkError explains a failed check, with a hint where the cause is a
// common mix-up (the other protocol's port, TLS against plain text).
func checkError(ep *Endpoint, err error) error {
	hint := "start a collector there, or point --otlp or OTEL_EXPORTER_OTLP_ENDPOINT at one"
	msg := err.Error()
	switch {
	case ep.Protocol == ProtocolHTTPProtobuf && ep.URL.Port() == "4317":
		hint = "4317 is the OTLP/gRPC port: give --otlp-protocol grpc, or the HTTP port 4318"
	case ep.Protocol == ProtocolGRPC && ep.URL.Port() == "4318":
		hint = "4318 is the OTLP/HTTP port: give --otlp-protocol http/protobuf, or the gRPC port 4317"
	case ep.Secure() && (strings.Contains(msg, "first record does not look like a TLS handshake") ||
		strings.Contains(msg, "server gave HTTP response to HTTPS client")):
		hint = "it answers without TLS: give an http:// URL, or set OTEL_EXPORTER_OTLP_INSECURE=true"
	case strings.Contains(msg, "x509: "):
		hint = "its certificate is not trusted here: give its CA's certificate in OTEL_EXPORTER_OTLP_CERTIFICATE"
	case strings.Contains(msg, "Unauthenticated") || strings.Contains(msg, "PermissionDenied") ||
		strings.Contains(msg, ": 401 ") || strings.Contains(msg, ": 403 "):
		hint = "it refused the credentials: check the headers (--otlp-header, OTEL_EXPORTER_OTLP_HEADERS)"
	}
	return fmt.Errorf("%w: %s %s (%s): %v: %s", ErrEndpoint, ep.Protocol, ep.URL, ep.Source, err, hint)
}

package otlp

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Protocols an endpoint speaks (OTEL_EXPORTER_OTLP_PROTOCOL's values that
// the Go SDK implements).
const (
	ProtocolGRPC         = "grpc"
	ProtocolHTTPProtobuf = "http/protobuf"
)

// Signals, as the per-signal variables name them (OTEL_EXPORTER_OTLP_LOGS_*).
const (
	SignalLogs    = "logs"
	SignalMetrics = "metrics"
	SignalTraces  = "traces"
)

// defaultTimeout is OTEL_EXPORTER_OTLP_TIMEOUT's default: the longest one
// export request may take.
const defaultTimeout = 10 * time.Second

// Options are the caller's settings (the trace command's --otlp flags);
// each one set wins over the OTEL_EXPORTER_OTLP_* variables, for every
// signal.
type Options struct {
	// Endpoint is the base URL of every signal (http://collector:4318,
	// https://otlp.example.com), or host:port, which is https unless
	// Insecure. Empty: the variables decide.
	Endpoint string
	// Protocol is ProtocolGRPC or ProtocolHTTPProtobuf; empty: the
	// variables, else http/protobuf (the specification's default).
	Protocol string
	// Headers are key=value pairs sent with every request, added to
	// OTEL_EXPORTER_OTLP_HEADERS (a key given in both: this value).
	Headers []string
	// Insecure, when true, sends a host:port endpoint in plain text (gRPC
	// without TLS, http:// for http/protobuf).
	Insecure bool
}

// Config is a validated export configuration: where each signal goes and
// how. Build it with Parse; the zero value exports nothing.
type Config struct {
	// Logs, Metrics and Traces are the signals' endpoints, all set or none.
	Logs, Metrics, Traces *Endpoint
	// Resource holds OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, merged
	// into every resource the exporter sends (facts about the target win).
	Resource map[string]string
}

// Endpoint is where one signal is exported to and how.
type Endpoint struct {
	Protocol string
	// URL is the full URL: for http/protobuf with its path (/v1/logs),
	// for gRPC scheme and host:port only. Its scheme says whether TLS is used.
	URL *url.URL
	// Headers are sent with every request. Their values are secrets
	// (tokens): nothing prints them.
	Headers map[string]string
	// TLS is nil for plain text.
	TLS         *tls.Config
	Compression string // "gzip" or "none"
	Timeout     time.Duration
	// Source names the setting the URL came from (--otlp, or a variable),
	// for messages.
	Source string
}

// Enabled says whether anything is to be exported.
func (c Config) Enabled() bool { return c.Logs != nil }

// Secure says whether the endpoint uses TLS.
func (e *Endpoint) Secure() bool { return e.URL.Scheme == "https" }

// Parse builds the configuration from the caller's options and the
// standard variables, read with getenv (os.Getenv outside tests): the
// variables are those of the OpenTelemetry specification
// (OTEL_EXPORTER_OTLP_{ENDPOINT,PROTOCOL,HEADERS,INSECURE,CERTIFICATE,
// CLIENT_CERTIFICATE,CLIENT_KEY,COMPRESSION,TIMEOUT}, each also per signal
// as OTEL_EXPORTER_OTLP_LOGS_ENDPOINT and so on, which wins over the
// general one), OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES. Export is
// on when opts.Endpoint or any endpoint variable is set; otherwise Parse
// returns a Config that is not Enabled and no error. Every value is
// checked here, once, and an error names the flag or variable at fault and
// what to give instead; header values never appear in one.
func Parse(opts Options, getenv func(string) string) (Config, error) {
	var cfg Config
	on := opts.Endpoint != ""
	for _, s := range []string{"", SignalLogs, SignalMetrics, SignalTraces} {
		on = on || getenv(envName(s, "ENDPOINT")) != ""
	}
	if !on {
		return cfg, nil
	}
	var errs []error
	eps := make([]*Endpoint, 3)
	for i, s := range []string{SignalLogs, SignalMetrics, SignalTraces} {
		ep, err := parseSignal(s, opts, getenv)
		if err != nil {
			errs = append(errs, err)
		}
		eps[i] = ep
	}
	res, err := parseResource(getenv)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(dedupErrors(errs)...); err != nil {
		return Config{}, err
	}
	cfg.Logs, cfg.Metrics, cfg.Traces, cfg.Resource = eps[0], eps[1], eps[2], res
	return cfg, nil
}

// envName is the variable of a setting for one signal ("" for the
// general one): OTEL_EXPORTER_OTLP_LOGS_HEADERS.
func envName(signal, setting string) string {
	if signal == "" {
		return "OTEL_EXPORTER_OTLP_" + setting
	}
	return "OTEL_EXPORTER_OTLP_" + strings.ToUpper(signal) + "_" + setting
}

// lookup returns a setting's value for signal and the variable it came
// from: the per-signal variable, else the general one.
func lookup(getenv func(string) string, signal, setting string) (string, string) {
	if v := getenv(envName(signal, setting)); v != "" {
		return v, envName(signal, setting)
	}
	return getenv(envName("", setting)), envName("", setting)
}

// parseSignal resolves one signal's endpoint.
func parseSignal(signal string, opts Options, getenv func(string) string) (*Endpoint, error) {
	ep := &Endpoint{Compression: "none", Timeout: defaultTimeout}
	var errs []error
	ep.Protocol, errs = parseProtocol(signal, opts, getenv), nil
	if !validProtocol(ep.Protocol) {
		errs = append(errs, protocolError(signal, opts, getenv, ep.Protocol))
	}
	insecure, err := parseInsecure(signal, opts, getenv)
	errs = append(errs, err)
	ep.URL, ep.Source, err = parseEndpointURL(signal, ep.Protocol, opts, getenv, insecure)
	errs = append(errs, err)
	ep.Headers, err = parseHeaders(signal, opts, getenv)
	errs = append(errs, err)
	if ep.URL != nil && ep.Secure() {
		ep.TLS, err = parseTLS(signal, getenv)
		errs = append(errs, err)
	}
	if v, name := lookup(getenv, signal, "COMPRESSION"); v != "" {
		if v != "gzip" && v != "none" {
			errs = append(errs, fmt.Errorf("%s=%q: want gzip or none", name, v))
		}
		ep.Compression = v
	}
	if v, name := lookup(getenv, signal, "TIMEOUT"); v != "" {
		ms, err := strconv.Atoi(v)
		if err != nil || ms <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q: want a number of milliseconds above 0, such as 10000", name, v))
		}
		ep.Timeout = time.Duration(ms) * time.Millisecond
	}
	return ep, errors.Join(errs...)
}

// parseProtocol returns the protocol of signal as given (unchecked).
func parseProtocol(signal string, opts Options, getenv func(string) string) string {
	if opts.Protocol != "" {
		return opts.Protocol
	}
	if v, _ := lookup(getenv, signal, "PROTOCOL"); v != "" {
		return v
	}
	return ProtocolHTTPProtobuf
}

func validProtocol(p string) bool { return p == ProtocolGRPC || p == ProtocolHTTPProtobuf }

// protocolError says what is wrong with an unknown protocol and where it
// was given.
func protocolError(signal string, opts Options, getenv func(string) string, p string) error {
	from := "--otlp-protocol"
	if opts.Protocol == "" {
		_, from = lookup(getenv, signal, "PROTOCOL")
	}
	if p == "http/json" {
		return fmt.Errorf("otlp protocol %q (%s): the OpenTelemetry Go SDK has no http/json exporter: use http/protobuf or grpc", p, from)
	}
	return fmt.Errorf("otlp protocol %q (%s) is unknown: want grpc or http/protobuf", p, from)
}

// parseInsecure reads OTEL_EXPORTER_OTLP_INSECURE; the option wins.
func parseInsecure(signal string, opts Options, getenv func(string) string) (bool, error) {
	if opts.Insecure {
		return true, nil
	}
	v, name := lookup(getenv, signal, "INSECURE")
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.ToLower(v))
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", name, v)
	}
	return b, nil
}

// parseEndpointURL resolves signal's URL: the option, else the per-signal
// variable (used as it is, as the specification says), else the general
// variable (with /v1/<signal> appended for http/protobuf).
func parseEndpointURL(signal, protocol string, opts Options, getenv func(string) string, insecure bool) (*url.URL, string, error) {
	raw, source, base := opts.Endpoint, "--otlp", true
	if raw == "" {
		if v := getenv(envName(signal, "ENDPOINT")); v != "" {
			raw, source, base = v, envName(signal, "ENDPOINT"), false
		} else if v := getenv(envName("", "ENDPOINT")); v != "" {
			raw, source = v, envName("", "ENDPOINT")
		} else {
			// Another signal has an endpoint of its own; this one goes
			// where the SDKs send it by default.
			raw, source = defaultEndpoint(protocol), "the default for "+signal
		}
	}
	u, err := parseURL(raw, protocol, insecure)
	if err != nil {
		return nil, source, fmt.Errorf("otlp endpoint %q (%s): %w: give a URL such as http://localhost:4318 (http/protobuf) or http://localhost:4317 (grpc), or host:port", raw, source, err)
	}
	if protocol == ProtocolGRPC {
		u.Path = ""
	} else if base {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/" + signal
	} else if u.Path == "" {
		u.Path = "/"
	}
	return u, source, nil
}

// defaultEndpoint is the SDKs' default: localhost, plain text, the
// protocol's port.
func defaultEndpoint(protocol string) string {
	if protocol == ProtocolGRPC {
		return "http://localhost:4317"
	}
	return "http://localhost:4318"
}

// parseURL checks an endpoint: http or https, a host, a port from 1 to
// 65535 when given, no credentials, query or fragment. host:port without
// a scheme is https, or http when insecure.
func parseURL(raw, protocol string, insecure bool) (*url.URL, error) {
	if !strings.Contains(raw, "://") {
		host, port, err := net.SplitHostPort(raw)
		if err != nil || host == "" {
			return nil, errors.New("neither a URL (http://, https://) nor host:port")
		}
		if err := checkPort(port); err != nil {
			return nil, err
		}
		scheme := "https"
		if insecure {
			scheme = "http"
		}
		return &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port)}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("scheme %q: want http or https", u.Scheme)
	case u.Hostname() == "":
		return nil, errors.New("no host")
	case u.User != nil:
		return nil, errors.New("credentials in the URL: send them as a header (--otlp-header or OTEL_EXPORTER_OTLP_HEADERS)")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, errors.New("a query or fragment: an endpoint has neither")
	case protocol == ProtocolGRPC && u.Path != "" && u.Path != "/":
		return nil, fmt.Errorf("path %q: a gRPC endpoint is host and port only", u.Path)
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if err := checkPort(p); err != nil {
			return nil, err
		}
	}
	return u, nil
}

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want a number from 1 to 65535", p)
	}
	return nil
}

// parseHeaders reads OTEL_EXPORTER_OTLP_HEADERS (the W3C baggage form:
// key=value pairs separated by commas, values percent-encoded) and adds
// the option's headers.
func parseHeaders(signal string, opts Options, getenv func(string) string) (map[string]string, error) {
	h := map[string]string{}
	var errs []error
	if v, name := lookup(getenv, signal, "HEADERS"); v != "" {
		for i, kv := range strings.Split(v, ",") {
			if strings.TrimSpace(kv) == "" {
				continue
			}
			k, val, err := parseHeader(kv, true)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: header %d (%s): %w", name, i+1, redact(kv), err))
				continue
			}
			h[k] = val
		}
	}
	for _, kv := range opts.Headers {
		k, val, err := parseHeader(kv, false)
		if err != nil {
			errs = append(errs, fmt.Errorf("--otlp-header %s: %w", redact(kv), err))
			continue
		}
		h[k] = val
	}
	return h, errors.Join(errs...)
}

// parseHeader splits one key=value; escaped values are percent-decoded.
func parseHeader(kv string, escaped bool) (string, string, error) {
	k, v, ok := strings.Cut(kv, "=")
	k = strings.TrimSpace(k)
	if !ok {
		return "", "", errors.New("no '=': want key=value, such as authorization=Bearer%20TOKEN, separated by commas")
	}
	if k == "" || strings.ContainsAny(k, " \t:\"(),/;<>?@[\\]{}") {
		return "", "", errors.New("the key is not a header name: want key=value, such as api-key=TOKEN")
	}
	v = strings.TrimSpace(v)
	if escaped {
		d, err := url.PathUnescape(v)
		if err != nil {
			return "", "", errors.New("the value is not percent-encoded (%20 for a blank): encode it")
		}
		v = d
	}
	return strings.ToLower(k), v, nil
}

// redact shows where a bad header is without printing its value, which is
// often a token: its first characters up to a ':', '=' or blank, then "…".
func redact(kv string) string {
	kv = strings.TrimSpace(kv)
	end := strings.IndexAny(kv, ":= \t")
	if end < 0 || end > 24 {
		end = min(len(kv), 24)
	}
	if end == len(kv) {
		return strconv.Quote(kv)
	}
	return strconv.Quote(kv[:end] + "…")
}

// parseTLS builds the TLS settings of an https endpoint: the CA
// certificate to trust instead of the system's, and a client certificate.
func parseTLS(signal string, getenv func(string) string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	var errs []error
	if path, name := lookup(getenv, signal, "CERTIFICATE"); path != "" {
		pem, err := os.ReadFile(path)
		pool := x509.NewCertPool()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: reading the CA certificate: %w", name, err))
		case !pool.AppendCertsFromPEM(pem):
			errs = append(errs, fmt.Errorf("%s=%q: no PEM certificate in the file: give the collector's CA certificate in PEM", name, path))
		default:
			cfg.RootCAs = pool
		}
	}
	certPath, certName := lookup(getenv, signal, "CLIENT_CERTIFICATE")
	keyPath, keyName := lookup(getenv, signal, "CLIENT_KEY")
	switch {
	case certPath != "" && keyPath != "":
		c, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s and %s: loading the client certificate: %w", certName, keyName, err))
		} else {
			cfg.Certificates = []tls.Certificate{c}
		}
	case certPath != "" || keyPath != "":
		errs = append(errs, fmt.Errorf("%s and %s: give both the client certificate and its key, or neither", certName, keyName))
	}
	return cfg, errors.Join(errs...)
}

// parseResource reads OTEL_RESOURCE_ATTRIBUTES (key=value pairs,
// percent-encoded values) and OTEL_SERVICE_NAME, which wins over a
// service.name among the attributes.
func parseResource(getenv func(string) string) (map[string]string, error) {
	attrs := map[string]string{}
	var errs []error
	if v := getenv("OTEL_RESOURCE_ATTRIBUTES"); v != "" {
		for i, kv := range strings.Split(v, ",") {
			if strings.TrimSpace(kv) == "" {
				continue
			}
			k, val, ok := strings.Cut(kv, "=")
			k = strings.TrimSpace(k)
			d, err := url.PathUnescape(strings.TrimSpace(val))
			if !ok || k == "" || err != nil {
				errs = append(errs, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: attribute %d (%q): want key=value with the value percent-encoded, separated by commas", i+1, kv))
				continue
			}
			attrs[k] = d
		}
	}
	if v := strings.TrimSpace(getenv("OTEL_SERVICE_NAME")); v != "" {
		attrs["service.name"] = v
	}
	return attrs, errors.Join(errs...)
}

// dedupErrors drops repeats: a bad general variable fails every signal
// with the same message.
func dedupErrors(errs []error) []error {
	seen := map[string]bool{}
	var out []error
	for _, err := range errs {
		if err == nil {
			continue
		}
		for _, e := range unjoin(err) {
			if !seen[e.Error()] {
				seen[e.Error()] = true
				out = append(out, e)
			}
		}
	}
	return out
}

// unjoin flattens errors.Join's tree.
func unjoin(err error) []error {
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, unjoin(e)...)
	}
	return out
}

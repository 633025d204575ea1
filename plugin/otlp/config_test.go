package otlp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// endpointSummary is what a test compares of an Endpoint.
type endpointSummary struct {
	Protocol, URL, Source, Compression string
	Headers                            map[string]string
	TLS                                bool
	Timeout                            time.Duration
}

func summarize(ep *Endpoint) endpointSummary {
	return endpointSummary{Protocol: ep.Protocol, URL: ep.URL.String(), Source: ep.Source, Compression: ep.Compression,
		Headers: ep.Headers, TLS: ep.TLS != nil, Timeout: ep.Timeout}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		env     map[string]string
		logs    endpointSummary
		metrics *endpointSummary // nil: like logs, path /v1/metrics
		res     map[string]string
	}{
		{
			name: "flag, default protocol http/protobuf, paths per signal",
			opts: Options{Endpoint: "http://collector:4318"},
			logs: endpointSummary{Protocol: "http/protobuf", URL: "http://collector:4318/v1/logs", Source: "--otlp", Compression: "none", Headers: map[string]string{}, Timeout: 10 * time.Second},
		},
		{
			name:    "flag grpc, host:port is TLS",
			opts:    Options{Endpoint: "otlp.example.com:4317", Protocol: "grpc"},
			logs:    endpointSummary{Protocol: "grpc", URL: "https://otlp.example.com:4317", Source: "--otlp", Compression: "none", Headers: map[string]string{}, TLS: true, Timeout: 10 * time.Second},
			metrics: &endpointSummary{Protocol: "grpc", URL: "https://otlp.example.com:4317", Source: "--otlp", Compression: "none", Headers: map[string]string{}, TLS: true, Timeout: 10 * time.Second},
		},
		{
			name:    "host:port insecure from the variable",
			opts:    Options{Endpoint: "localhost:4317", Protocol: "grpc"},
			env:     map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "true"},
			logs:    endpointSummary{Protocol: "grpc", URL: "http://localhost:4317", Source: "--otlp", Compression: "none", Headers: map[string]string{}, Timeout: 10 * time.Second},
			metrics: &endpointSummary{Protocol: "grpc", URL: "http://localhost:4317", Source: "--otlp", Compression: "none", Headers: map[string]string{}, Timeout: 10 * time.Second},
		},
		{
			name: "variables only: base path kept, headers decoded, gzip, timeout; flag header wins",
			opts: Options{Headers: []string{"X-Tenant=flag"}},
			env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://gw.example.com/otlp/", "OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer%20abc,x-tenant=env",
				"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip", "OTEL_EXPORTER_OTLP_TIMEOUT": "2500"},
			logs: endpointSummary{Protocol: "http/protobuf", URL: "https://gw.example.com/otlp/v1/logs", Source: "OTEL_EXPORTER_OTLP_ENDPOINT", Compression: "gzip",
				Headers: map[string]string{"authorization": "Bearer abc", "x-tenant": "flag"}, TLS: true, Timeout: 2500 * time.Millisecond},
		},
		{
			name: "a per-signal variable is used as it is and wins over the general one",
			env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:9090/ingest",
				"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
			logs:    endpointSummary{Protocol: "http/protobuf", URL: "http://c:4318/v1/logs", Source: "OTEL_EXPORTER_OTLP_ENDPOINT", Compression: "none", Headers: map[string]string{}, Timeout: 10 * time.Second},
			metrics: &endpointSummary{Protocol: "http/protobuf", URL: "http://m:9090/ingest", Source: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", Compression: "none", Headers: map[string]string{}, Timeout: 10 * time.Second},
		},
		{
			name: "the flag wins over every variable; resource attributes and service name",
			opts: Options{Endpoint: "http://flag:4318"},
			env: map[string]string{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://env:4318/v1/logs", "OTEL_RESOURCE_ATTRIBUTES": "service.name=a,deployment.environment.name=prod%2Feu",
				"OTEL_SERVICE_NAME": "tracer"},
			logs: endpointSummary{Protocol: "http/protobuf", URL: "http://flag:4318/v1/logs", Source: "--otlp", Compression: "none", Headers: map[string]string{}, Timeout: 10 * time.Second},
			res:  map[string]string{"service.name": "tracer", "deployment.environment.name": "prod/eu"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(tc.opts, func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.logs, summarize(cfg.Logs)); diff != "" {
				t.Errorf("logs (-want +got):\n%s", diff)
			}
			wantM := tc.logs
			wantM.URL = strings.Replace(wantM.URL, "/v1/logs", "/v1/metrics", 1)
			if tc.metrics != nil {
				wantM = *tc.metrics
			}
			if diff := cmp.Diff(wantM, summarize(cfg.Metrics)); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
			if tc.res == nil {
				tc.res = map[string]string{}
			}
			if diff := cmp.Diff(tc.res, cfg.Resource); diff != "" {
				t.Errorf("resource (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseNotConfigured(t *testing.T) {
	cfg, err := Parse(Options{}, func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "not checked: export is off"}[k]
	})
	if err != nil || cfg.Enabled() {
		t.Fatalf("Parse without an endpoint: %+v, %v; want export off and no error", cfg, err)
	}
	if _, err := New(cfg, Session{}, Settings{}); err == nil || !strings.Contains(err.Error(), "give --otlp") {
		t.Fatalf("New without an endpoint: %v", err)
	}
}

// TestParseErrors: every bad value is an error naming where it came from
// and what to give instead, and a header's value never shows.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		env  map[string]string
		want []string
	}{
		{name: "not a URL", opts: Options{Endpoint: "collector"},
			want: []string{`otlp endpoint "collector" (--otlp)`, "give a URL such as http://localhost:4318"}},
		{name: "bad scheme", opts: Options{Endpoint: "ftp://c:4318"}, want: []string{`scheme "ftp": want http or https`}},
		{name: "bad port", opts: Options{Endpoint: "http://c:99999"}, want: []string{`port "99999": want a number from 1 to 65535`}},
		{name: "port not a number", opts: Options{Endpoint: "c:otlp"}, want: []string{`port "otlp"`}},
		{name: "no host", opts: Options{Endpoint: "http://:4318"}, want: []string{"no host"}},
		{name: "credentials", opts: Options{Endpoint: "https://user:secret@c:4318"}, want: []string{"credentials in the URL: send them as a header"}},
		{name: "query", opts: Options{Endpoint: "http://c:4318/?a=b"}, want: []string{"a query or fragment"}},
		{name: "grpc path", opts: Options{Endpoint: "http://c:4317/v1", Protocol: "grpc"}, want: []string{`path "/v1": a gRPC endpoint is host and port only`}},
		{name: "bad endpoint variable", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4318:1"},
			want: []string{`otlp endpoint "c:4318:1" (OTEL_EXPORTER_OTLP_ENDPOINT)`}},
		{name: "unknown protocol flag", opts: Options{Endpoint: "http://c:4318", Protocol: "thrift"},
			want: []string{`otlp protocol "thrift" (--otlp-protocol) is unknown: want grpc or http/protobuf`}},
		{name: "http/json", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
			want: []string{`otlp protocol "http/json" (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL): the OpenTelemetry Go SDK has no http/json exporter: use http/protobuf or grpc`}},
		{name: "header without = in the variable", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "a=b,Authorization: Bearer s3cret"},
			want: []string{`OTEL_EXPORTER_OTLP_HEADERS: header 2 ("Authorization…"): no '=': want key=value`}},
		{name: "header without = in the flag", opts: Options{Endpoint: "http://c:4318", Headers: []string{"api-key"}},
			want: []string{`--otlp-header "api-key": no '=': want key=value`}},
		{name: "header key", opts: Options{Endpoint: "http://c:4318", Headers: []string{"a b=s3cret"}}, want: []string{`"a…": the key is not a header name`}},
		{name: "header value not encoded", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_HEADERS": "k=s3cret%zz"},
			want: []string{`header 1 ("k…"): the value is not percent-encoded`}},
		{name: "insecure", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "c:4318", "OTEL_EXPORTER_OTLP_INSECURE": "yes"},
			want: []string{`OTEL_EXPORTER_OTLP_INSECURE="yes": want true or false`}},
		{name: "compression", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "zstd"},
			want: []string{`OTEL_EXPORTER_OTLP_LOGS_COMPRESSION="zstd": want gzip or none`}},
		{name: "timeout", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TIMEOUT": "10s"},
			want: []string{`OTEL_EXPORTER_OTLP_TIMEOUT="10s": want a number of milliseconds`}},
		{name: "certificate missing", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4318", "OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"},
			want: []string{"OTEL_EXPORTER_OTLP_CERTIFICATE: reading the CA certificate"}},
		{name: "client certificate without key", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4318", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "/x.pem"},
			want: []string{"give both the client certificate and its key, or neither"}},
		{name: "resource attributes", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_RESOURCE_ATTRIBUTES": "a=b,c"},
			want: []string{`OTEL_RESOURCE_ATTRIBUTES: attribute 2 ("c"): want key=value`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.opts, func(k string) string { return tc.env[k] })
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows a header's value", err)
			}
			// One bad general setting fails all three signals: said once.
			if n := strings.Count(err.Error(), tc.want[0]); n != 1 {
				t.Errorf("error %q says %q %d times", err, tc.want[0], n)
			}
		})
	}
}

// TestParseCertificate: a CA file is read into the TLS settings; a file
// without a PEM certificate is an error.
func TestParseCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, selfSigned(t), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4318", "OTEL_EXPORTER_OTLP_CERTIFICATE": ca}
	cfg, err := Parse(Options{}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Logs.TLS == nil || cfg.Logs.TLS.RootCAs == nil || !cfg.Logs.TLS.RootCAs.Equal(poolOf(t, selfSigned(t))) {
		t.Fatalf("the CA file did not become the trusted roots: %+v", cfg.Logs.TLS)
	}
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	env["OTEL_EXPORTER_OTLP_CERTIFICATE"] = bad
	if _, err := Parse(Options{}, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "no PEM certificate in the file") {
		t.Fatalf("a file without a certificate: %v", err)
	}
}

var testCert []byte

// selfSigned is one self-signed certificate in PEM, the same every call.
func selfSigned(t *testing.T) []byte {
	if testCert != nil {
		return testCert
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	testCert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return testCert
}

func poolOf(t *testing.T, p []byte) *x509.CertPool {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p) {
		t.Fatal("bad PEM")
	}
	return pool
}

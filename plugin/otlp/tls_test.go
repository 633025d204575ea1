//go:build otelcol

package otlp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// serverCert writes a self-signed certificate for 127.0.0.1 (its own CA)
// and its key into dir.
func serverCert(t *testing.T, dir string) (certPath, keyPath string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "ktrace test collector"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

// TestExportTLS: an https endpoint whose CA is given in
// OTEL_EXPORTER_OTLP_CERTIFICATE takes the export, over both protocols;
// without that CA the start check fails, saying why.
func TestExportTLS(t *testing.T) {
	cert, key := serverCert(t, t.TempDir())
	c := startCollectorWith(t, "test-config-tls.yaml", "KTRACE_OTELCOL_CERT="+cert, "KTRACE_OTELCOL_KEY="+key)
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) {
			addr := c.http
			if protocol == ProtocolGRPC {
				addr = c.grpc
			}
			env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://" + addr, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
				"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}
			cfg, err := Parse(Options{}, func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			e, err := New(cfg, Session{ID: "tls-" + protocol, Hook: "sched"}, Settings{CheckTimeout: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Check(context.Background()); !errors.Is(err, ErrEndpoint) || !strings.Contains(err.Error(), "OTEL_EXPORTER_OTLP_CERTIFICATE") {
				t.Errorf("Check without the collector's CA: %v; want a certificate error", err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			e.Stop(ctx, nil)

			env["OTEL_EXPORTER_OTLP_CERTIFICATE"] = cert
			cfg, err = Parse(Options{}, func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			e, err = New(cfg, Session{ID: "tls-" + protocol, Hook: "sched"}, Settings{})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Check(context.Background()); err != nil {
				t.Fatalf("Check with the collector's CA: %v", err)
			}
			tg := e.AddTarget(podA)
			ev := wire.Event{Time: 1, PID: 1, Comm: "a", Event: "sched_switch"}
			for range 10 {
				tg.Emit(&ev, "")
			}
			if s := stopExporter(t, e, nil); s.Logs.Exported != 10 {
				t.Fatalf("summary %s: want 10 exported", s)
			}
		})
	}
	c.stop()
	got := map[string]int{}
	for _, r := range c.received().Logs {
		got[r.Resource[AttrSessionID]]++
	}
	if got["tls-grpc"] != 10 || got["tls-http/protobuf"] != 10 {
		t.Errorf("records per session %v, want 10 of each", got)
	}
}

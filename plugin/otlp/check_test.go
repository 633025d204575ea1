package otlp

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// refusedAddr is a loopback address with no listener: connections to it
// are refused.
func refusedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentAddr accepts connections and never answers, like a collector
// that hangs or a firewall that swallows packets after the handshake.
func silentAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return l.Addr().String()
}

// TestCheckEndpointThatDoesNotAnswer: a refused and a silent endpoint,
// over both protocols, fail the start check within its bound with an
// error that names the endpoint and what to do; the summary says so too.
func TestCheckEndpointThatDoesNotAnswer(t *testing.T) {
	for _, protocol := range []string{ProtocolGRPC, ProtocolHTTPProtobuf} {
		for name, addr := range map[string]string{"refused": refusedAddr(t), "silent": silentAddr(t)} {
			t.Run(protocol+"/"+name, func(t *testing.T) {
				cfg, err := Parse(Options{Endpoint: "http://" + addr, Protocol: protocol}, func(string) string { return "" })
				if err != nil {
					t.Fatal(err)
				}
				e, err := New(cfg, Session{ID: "s", Hook: "sched"}, Settings{CheckTimeout: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				err = e.Check(context.Background())
				took := time.Since(start)
				if !errors.Is(err, ErrEndpoint) || !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "start a collector there") {
					t.Errorf("Check: %v; want ErrEndpoint naming %s and what to do", err, addr)
				}
				// The bound is 1 s; the margin is for a loaded machine.
				if took > 5*time.Second {
					t.Errorf("Check took %v, bounded by 1 s", took)
				}
				// The caller gives up on a session whose check failed: a
				// short stop deadline (the session span is not sent).
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				if s := e.Stop(ctx, nil); !errors.Is(s.StartError, ErrEndpoint) || !strings.Contains(s.String(), "at start the endpoint did not answer") {
					t.Errorf("summary %q: want the start check's failure", s)
				}
			})
		}
	}
}

// TestCheckHints: the common mix-ups get their own advice.
func TestCheckHints(t *testing.T) {
	mk := func(raw, protocol string) *Endpoint {
		cfg, err := Parse(Options{Endpoint: raw, Protocol: protocol}, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Logs
	}
	for _, tc := range []struct {
		ep   *Endpoint
		err  error
		want string
	}{
		{mk("http://c:4317", ProtocolHTTPProtobuf), errors.New("EOF"), "4317 is the OTLP/gRPC port"},
		{mk("http://c:4318", ProtocolGRPC), errors.New("x"), "4318 is the OTLP/HTTP port"},
		{mk("https://c:9000", ProtocolHTTPProtobuf), errors.New("http: server gave HTTP response to HTTPS client"), "it answers without TLS"},
		{mk("http://c:9000", ProtocolHTTPProtobuf), errors.New("failed to send to http://c:9000/v1/metrics: 401 Unauthorized (body: x)"), "check the headers"},
		{mk("https://c:9000", ProtocolGRPC), errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority"), "give its CA's certificate in OTEL_EXPORTER_OTLP_CERTIFICATE"},
	} {
		if got := checkError(tc.ep, tc.err).Error(); !strings.Contains(got, tc.want) {
			t.Errorf("checkError(%s, %v) = %q, want %q", tc.ep.URL, tc.err, got, tc.want)
		}
	}
}

// TestEmitNeverBlocks: with the endpoint refusing, a burst far larger
// than the queue is taken without waiting, and every event is accounted
// for: what did not fit as "queue full", the rest as failed exports.
func TestEmitNeverBlocks(t *testing.T) {
	cfg, err := Parse(Options{Endpoint: "http://" + refusedAddr(t), Protocol: ProtocolGRPC}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(cfg, Session{ID: "s", Hook: "sched"}, Settings{QueueSize: 1000, BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	tg := e.AddTarget(wire.Target{Node: "n", Namespace: "ns", Pod: "p", Container: "c", ContainerID: "containerd://0123456789abcdef"})
	const n = 200_000
	ev := wire.Event{Time: 1, PID: 1, Comm: "a", Event: "sched_switch", Fields: map[string]string{"prev_state": "S"}}
	start := time.Now()
	for range n {
		tg.Emit(&ev, "")
	}
	took := time.Since(start)
	// An Emit that waited for the endpoint would wait for a retry (200 ms
	// and more) or an export timeout (10 s); 200000 of them in a few
	// seconds did not.
	if took > 5*time.Second {
		t.Errorf("%d Emits took %v", n, took)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	s := e.Stop(ctx, nil)
	if s.Events != n || s.Logs.Exported != 0 || s.Logs.DroppedTotal() != n || s.Logs.Dropped[ReasonQueueFull] == 0 {
		t.Fatalf("summary %+v: want %d events, none exported, all dropped, some for a full queue", s, n)
	}
	if s.Logs.Dropped[ReasonQueueFull] == n {
		t.Errorf("summary %+v: nothing reached the (refusing) endpoint", s)
	}
	tg.Emit(&ev, "")
	if s := e.summary(); s.Logs.Dropped[ReasonAfterStop] != 1 {
		t.Errorf("an Emit after Stop: %+v", s.Logs.Dropped)
	}
}

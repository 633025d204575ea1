package otlp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// testTemplate is a record template as AddTarget makes one, for a
// provider without a resource.
func testTemplate() sdklog.Record {
	sink := &templateSink{}
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sink), sdklog.WithAllowKeyDuplication())
	lp.Logger(scopeName).Emit(context.Background(), log.Record{})
	return *sink.rec
}

func attrsOf(r sdklog.Record) map[string]any {
	m := map[string]any{}
	r.WalkAttributes(func(kv attribute.KeyValue) bool {
		m[string(kv.Key)] = kv.Value.AsInterface()
		return true
	})
	return m
}

func TestRecord(t *testing.T) {
	received := time.Unix(1_790_000_000, 5)
	for _, tc := range []struct {
		name      string
		hook      string
		ev        wire.Event
		text      string
		offset    time.Duration
		known     bool
		wantTime  time.Time
		wantName  string
		wantBody  string
		wantAttrs map[string]any
	}{
		{
			name: "tcp close: network conventions, typed ports, the rest as ktrace.*",
			hook: "tcp",
			ev: wire.Event{Time: 1234.5, CPU: 3, PID: 77, Comm: "curl", Event: "close", Fields: map[string]string{
				"family": "ipv6", "saddr": "::1", "sport": "40000", "daddr": "::1", "dport": "80", "duration_us": "1500"}},
			text: "1234.500000000 [003] curl-77 close: ::1:40000 -> ::1:80 1500us", offset: 1_780_000_000 * time.Second, known: true,
			wantTime: time.Unix(1_780_001_234, 500_000_000), wantName: "ktrace.tcp.close",
			wantBody: "1234.500000000 [003] curl-77 close: ::1:40000 -> ::1:80 1500us",
			wantAttrs: map[string]any{"process.pid": int64(77), "process.executable.name": "curl", "cpu.logical_number": int64(3),
				"network.transport": "tcp", "network.type": "ipv6", "network.local.address": "::1", "network.local.port": int64(40000),
				"network.peer.address": "::1", "network.peer.port": int64(80), "ktrace.duration_us": int64(1500)},
		},
		{
			name: "exec: process conventions; argv stays ktrace.argv (it is assembled, not the command line)",
			hook: "exec",
			ev: wire.Event{Time: 10, PID: 9, Comm: "sh", Event: "exec", Fields: map[string]string{
				"pid": "9", "ppid": "1", "uid": "0", "filename": "/bin/ls", "argv": "ls -l 'a b'"}},
			known: true, wantTime: time.Unix(10, 0), wantName: "ktrace.exec.exec",
			wantBody: `sh-9 exec: argv="ls -l 'a b'" filename=/bin/ls pid=9 ppid=1 uid=0`,
			wantAttrs: map[string]any{"process.pid": int64(9), "process.executable.name": "sh", "cpu.logical_number": int64(0),
				"ktrace.pid": int64(9), "process.parent_pid": int64(1), "process.real_user.id": int64(0),
				"process.executable.path": "/bin/ls", "ktrace.argv": "ls -l 'a b'"},
		},
		{
			name: "syscalls: errno is error.type; ret as it is printed",
			hook: "syscalls",
			ev: wire.Event{Time: 1, PID: 5, Comm: "app", Event: "openat", Fields: map[string]string{
				"name": "openat", "ret": "-2", "errno": "ENOENT", "duration_ns": "8123"}},
			known: false, wantName: "ktrace.syscalls.openat",
			wantBody: "app-5 openat: duration_ns=8123 errno=ENOENT name=openat ret=-2",
			wantAttrs: map[string]any{"process.pid": int64(5), "process.executable.name": "app", "cpu.logical_number": int64(0),
				"ktrace.name": "openat", "ktrace.ret": "-2", "error.type": "ENOENT", "ktrace.duration_ns": int64(8123)},
		},
		{
			name: "signals: errno is a number there; a value that does not parse stays a string",
			hook: "signals",
			ev: wire.Event{Time: 2, PID: 6, Comm: "app", Event: "signal_generate", Fields: map[string]string{
				"sig": "15", "errno": "0", "code": "x", "signame": "SIGTERM"}},
			known: true, wantTime: time.Unix(2, 0), wantName: "ktrace.signals.signal_generate",
			wantBody: "app-6 signal_generate: code=x errno=0 sig=15 signame=SIGTERM",
			wantAttrs: map[string]any{"process.pid": int64(6), "process.executable.name": "app", "cpu.logical_number": int64(0),
				"ktrace.sig": int64(15), "ktrace.errno": int64(0), "ktrace.code": "x", "ktrace.signame": "SIGTERM"},
		},
		{
			name: "a body from fields quotes what a workload controls",
			hook: "open",
			ev: wire.Event{Time: 3, PID: 7, Comm: "we ird", Event: "open", Fields: map[string]string{
				"path": "/tmp/a=b \x1b[31m", "flags": "O_RDONLY", "result": "3"}},
			known: true, wantTime: time.Unix(3, 0), wantName: "ktrace.open.open",
			wantBody: `we ird-7 open: flags=O_RDONLY path="/tmp/a=b \x1b[31m" result=3`,
			wantAttrs: map[string]any{"process.pid": int64(7), "process.executable.name": "we ird", "cpu.logical_number": int64(0),
				"file.path": "/tmp/a=b \x1b[31m", "ktrace.flags": "O_RDONLY", "ktrace.result": int64(3)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := testTemplate()
			newMapper(tc.hook).fill(&r, &tc.ev, tc.text, received, tc.offset, tc.known)
			if !r.Timestamp().Equal(tc.wantTime) {
				t.Errorf("Timestamp %v, want %v", r.Timestamp(), tc.wantTime)
			}
			if !r.ObservedTimestamp().Equal(received) || r.EventName() != tc.wantName || r.Severity() != log.SeverityInfo {
				t.Errorf("observed %v, event name %q, severity %v", r.ObservedTimestamp(), r.EventName(), r.Severity())
			}
			if r.Body().AsString() != tc.wantBody {
				t.Errorf("body %q, want %q", r.Body().AsString(), tc.wantBody)
			}
			if diff := cmp.Diff(tc.wantAttrs, attrsOf(r)); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWallTime: the conversion keeps nanoseconds of a boot-clock time and
// sub-microseconds of an epoch time (tcpdump's), well within 1 ms.
func TestWallTime(t *testing.T) {
	for _, tc := range []struct {
		sec    float64
		offset time.Duration
		want   int64
		within time.Duration
	}{
		{sec: 12345.678901234, offset: 1_780_000_000 * time.Second, want: 1_780_012_345_678_901_234, within: 0},
		{sec: 0.000000001, offset: 0, want: 1, within: 0},
		{sec: 1_780_000_000.123456, offset: 0, want: 1_780_000_000_123_456_000, within: time.Microsecond},
		{sec: 100.5, offset: -50 * time.Second, want: 50_500_000_000, within: 0},
	} {
		got := WallTime(tc.sec, tc.offset).UnixNano()
		if d := time.Duration(got - tc.want); d > tc.within || d < -tc.within {
			t.Errorf("WallTime(%v, %v) = %d, want %d within %v", tc.sec, tc.offset, got, tc.want, tc.within)
		}
	}
}

func resourceAttrs(t *testing.T, cfg Config, s Session, tg wire.Target) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, kv := range targetResource(cfg, s, tg).Attributes() {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

// TestTargetResource: a container in semantic conventions, a node with
// its name only; OTEL_RESOURCE_ATTRIBUTES may name the service, never
// override what was traced.
func TestTargetResource(t *testing.T) {
	cfg := Config{Resource: map[string]string{"service.name": "mine", "k8s.pod.name": "forged", "ktrace.hook": "forged", "region": "eu"}}
	s := Session{ID: "abc", Hook: "sched", Version: "v1.2.3"}
	got := resourceAttrs(t, cfg, s, wire.Target{Node: "n1", Namespace: "ns", Pod: "p", PodUID: "u-1", Container: "c", ContainerID: "docker://0123456789ab"})
	want := map[string]string{"service.name": "mine", "service.version": "v1.2.3", "region": "eu", "ktrace.session.id": "abc", "ktrace.hook": "sched",
		"k8s.node.name": "n1", "k8s.namespace.name": "ns", "k8s.pod.name": "p", "k8s.pod.uid": "u-1", "k8s.container.name": "c",
		"container.id": "0123456789ab", "container.runtime.name": "docker"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("container (-want +got):\n%s", diff)
	}
	got = resourceAttrs(t, Config{}, s, wire.Target{Kind: wire.TargetNode, Node: "n1"})
	want = map[string]string{"service.name": "kubectl-trace", "service.version": "v1.2.3", "ktrace.session.id": "abc", "ktrace.hook": "sched", "k8s.node.name": "n1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("node (-want +got):\n%s", diff)
	}
}

func TestRunqBounds(t *testing.T) {
	if len(runqBounds) != runqSlots-1 || runqBounds[0] != 1 || runqBounds[1] != 3 || runqBounds[2] != 7 || runqBounds[30] != 1<<31-1 {
		t.Fatalf("bounds %v", runqBounds)
	}
}

// TestClassify: why a request failed, from the errors the SDK exporters
// return.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err     error
		stopped bool
		want    string
	}{
		{err: status.Error(codes.Unavailable, "connection refused"), want: ReasonUnreachable},
		{err: fmt.Errorf("max retry time elapsed: %w", status.Error(codes.Unavailable, "x")), want: ReasonUnreachable},
		{err: status.Error(codes.DeadlineExceeded, "x"), want: ReasonTimeout},
		{err: status.Error(codes.Unauthenticated, "x"), want: ReasonRejected},
		{err: fmt.Errorf("post: %w", &net.OpError{Op: "dial", Err: errors.New("connection refused")}), want: ReasonUnreachable},
		{err: fmt.Errorf("export: %w", context.DeadlineExceeded), want: ReasonTimeout},
		{err: fmt.Errorf("export: %w", context.Canceled), stopped: true, want: ReasonDeadline},
		// Retried against an unreachable endpoint until the stop deadline.
		{err: fmt.Errorf("%w: %w", context.Canceled, status.Error(codes.Unavailable, "refused")), stopped: true, want: ReasonUnreachable},
		{err: errors.New("failed to send logs to http://c/v1/logs: 400 Bad Request"), want: ReasonRejected},
	} {
		if got := classify(tc.err, tc.stopped); got != tc.want {
			t.Errorf("classify(%v, %v) = %q, want %q", tc.err, tc.stopped, got, tc.want)
		}
	}
}

// TestAccountPartialSuccess: a request the endpoint took in part counts
// what it took as exported and the rest as rejected.
func TestAccountPartialSuccess(t *testing.T) {
	var last error
	var mu sync.Mutex
	a := newAccount(&last, &mu)
	a.result(100, nil, false)
	a.result(50, errors.New("OTLP partial success: too old (12 logs rejected)"), false)
	a.result(10, status.Error(codes.Unavailable, "down"), false)
	want := SignalSummary{Exported: 138, Dropped: map[string]uint64{ReasonRejected: 12, ReasonUnreachable: 10}}
	if diff := cmp.Diff(want, a.summary()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if last == nil {
		t.Error("the last error was not kept")
	}
}

//go:build otelcol

package otlp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

var protocols = []string{ProtocolGRPC, ProtocolHTTPProtobuf}

// newTestExporter points an exporter at c with protocol, the environment
// given (as the variables would be), for session hook.
func newTestExporter(t *testing.T, c *collector, protocol, hook string, env map[string]string, set Settings) *Exporter {
	t.Helper()
	cfg, err := Parse(Options{Endpoint: c.endpoint(protocol), Protocol: protocol}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(cfg, Session{ID: "s-" + hook, Hook: hook, Version: "v0.0.0-test"}, set)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Check(context.Background()); err != nil {
		t.Fatalf("the start check against the running collector: %v", err)
	}
	return e
}

func stopExporter(t *testing.T, e *Exporter, err error) Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s := e.Stop(ctx, err)
	if s.Events != s.Logs.Exported+s.Logs.DroppedTotal() {
		t.Errorf("summary: %d events, but %d exported and %d dropped", s.Events, s.Logs.Exported, s.Logs.DroppedTotal())
	}
	return s
}

var (
	podA = wire.Target{Node: "node-1", Namespace: "shop", Pod: "web-0", PodUID: "8d1c0a52-5e0b-4a57-9d0f-1f2e3d4c5b6a",
		Container: "app", ContainerID: "containerd://" + hex64('a')}
	podB = wire.Target{Node: "node-2", Namespace: "shop", Pod: "web-1", PodUID: "0f7e6d5c-4b3a-4291-8e7f-6a5b4c3d2e1f",
		Container: "app", ContainerID: "cri-o://" + hex64('b')}
	nodeC = wire.Target{Kind: wire.TargetNode, Node: "node-3"}
)

func hex64(c byte) string { return string(bytes.Repeat([]byte{c}, 64)) }

// tcpEvent is the i-th event of a target: connect for even i, close
// (with a duration) for odd i, each with a port that identifies it.
func tcpEvent(i int, base float64) wire.Event {
	ev := wire.Event{Time: base + float64(i)*0.001234567, CPU: i % 2, PID: 4000 + i, Comm: "curl", Event: "connect",
		Fields: map[string]string{"family": "ipv4", "saddr": "10.0.0.5", "sport": strconv.Itoa(30000 + i),
			"daddr": "10.0.0.9", "dport": "8080"}}
	if i%2 == 1 {
		ev.Event = "close"
		ev.Fields["duration_us"] = strconv.Itoa(1000 + 37*i)
	}
	return ev
}

// TestExportToCollector sends a tcp session of three targets (one by
// Emit, one as -o json chunks cut anywhere, one whole node) to the real
// collector, and checks what it wrote: every record with its target's
// resource, its converted time, event name, body and attributes, all in
// the session's trace and linked to its target's span, a span per
// connection as long as the connection, and the counters.
func TestExportToCollector(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) { testExportToCollector(t, protocol) })
	}
}

func testExportToCollector(t *testing.T, protocol string) {
	c := startCollector(t)
	env := map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test,team=tracing%20crew"}
	e := newTestExporter(t, c, protocol, "tcp", env, Settings{DurationSpans: true, MetricInterval: 200 * time.Millisecond})
	offsets := map[string]time.Duration{podA.Pod: 1_780_000_000*time.Second + 123456789, podB.Pod: 1_780_000_100 * time.Second, nodeC.Node: 1_779_999_000 * time.Second}
	const n = 300
	a, b, node := e.AddTarget(podA), e.AddTarget(podB), e.AddTarget(nodeC)
	a.SetClockOffset(offsets[podA.Pod])
	b.SetClockOffset(offsets[podB.Pod])
	node.SetClockOffset(offsets[nodeC.Node])
	a.SetLost(7)
	var stream bytes.Buffer
	for i := range n {
		ev := tcpEvent(i, 5000)
		a.Emit(&ev, fmt.Sprintf("text of a %d", i))
		evB := tcpEvent(i, 6000)
		line, err := json.Marshal(jsonEvent{Event: evB, Text: fmt.Sprintf("text of b %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		stream.Write(append(line, '\n'))
		evC := tcpEvent(i, 7000)
		node.Emit(&evC, "")
	}
	// b's stream as the attach stream cuts it: 7 bytes at a time.
	for p := stream.Bytes(); len(p) > 0; p = p[min(7, len(p)):] {
		b.EmitJSON(p[:min(7, len(p))])
	}
	b.End(errors.New("pod web-1 was deleted"))
	s := stopExporter(t, e, nil)
	if s.Events != 3*n || s.Logs.Exported != 3*n || s.Logs.DroppedTotal() != 0 || s.LastError != nil {
		t.Fatalf("summary: %+v; want %d events, all exported", s, 3*n)
	}
	c.stop()
	d := c.received()
	checkResources(t, d, e)
	checkRecords(t, d, e, offsets, n)
	checkSpans(t, d, e, offsets, n)
	checkCounters(t, d, map[string]int64{podA.Pod: n, podB.Pod: n, nodeC.Node: n}, map[string]int64{podA.Pod: 7})
}

// wantWall is an event's wall time in nanoseconds, as the test computes
// it: the kernel time's nanoseconds plus the offset.
func wantWall(seconds float64, offset time.Duration) int64 {
	return int64(math.Round(seconds*1e9)) + int64(offset)
}

func targetKey(res map[string]string) string {
	if p := res["k8s.pod.name"]; p != "" {
		return p
	}
	return res["k8s.node.name"]
}

func checkResources(t *testing.T, d otlpData, e *Exporter) {
	t.Helper()
	common := map[string]string{"service.name": "kubectl-trace", "service.version": "v0.0.0-test",
		"ktrace.session.id": "s-tcp", "ktrace.hook": "tcp", "deployment.environment.name": "test", "team": "tracing crew"}
	want := map[string]map[string]string{
		podA.Pod: merge(common, map[string]string{"k8s.node.name": "node-1", "k8s.namespace.name": "shop", "k8s.pod.name": "web-0",
			"k8s.pod.uid": podA.PodUID, "k8s.container.name": "app", "container.id": hex64('a'), "container.runtime.name": "containerd"}),
		podB.Pod: merge(common, map[string]string{"k8s.node.name": "node-2", "k8s.namespace.name": "shop", "k8s.pod.name": "web-1",
			"k8s.pod.uid": podB.PodUID, "k8s.container.name": "app", "container.id": hex64('b'), "container.runtime.name": "cri-o"}),
		nodeC.Node: merge(common, map[string]string{"k8s.node.name": "node-3"}),
	}
	got := map[string]map[string]string{}
	for _, r := range d.Logs {
		got[targetKey(r.Resource)] = r.Resource
		if r.Scope.Name != scopeName || r.Scope.Version != "v0.0.0-test" {
			t.Errorf("record scope %+v", r.Scope)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("record resources (-want +got):\n%s", diff)
	}
}

func merge(a, b map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

func checkRecords(t *testing.T, d otlpData, e *Exporter, offsets map[string]time.Duration, n int) {
	t.Helper()
	bases := map[string]float64{podA.Pod: 5000, podB.Pod: 6000, nodeC.Node: 7000}
	seen := map[string]int{}
	for _, r := range d.Logs {
		key := targetKey(r.Resource)
		attrs := attrMap(r.Attributes)
		i, err := strconv.Atoi(attrs["network.local.port"])
		if err != nil {
			t.Fatalf("record without its port: %+v", r)
		}
		i -= 30000
		seen[key]++
		ev := tcpEvent(i, bases[key])
		want := wantWall(ev.Time, offsets[key])
		got, _ := strconv.ParseInt(r.TimeUnixNano, 10, 64)
		if diff := got - want; diff > int64(time.Millisecond) || diff < -int64(time.Millisecond) {
			t.Errorf("%s record %d: Timestamp %d, want %d (the event time %.9f + offset %v): %v apart", key, i, got, want, ev.Time, offsets[key], time.Duration(diff))
		}
		obs, _ := strconv.ParseInt(r.ObservedTimeUnixNano, 10, 64)
		if time.Since(time.Unix(0, obs)) > time.Minute || obs == 0 {
			t.Errorf("%s record %d: ObservedTimestamp %d is not when it was received", key, i, obs)
		}
		body := map[string]string{podA.Pod: fmt.Sprintf("text of a %d", i), podB.Pod: fmt.Sprintf("text of b %d", i), nodeC.Node: Body(&ev)}[key]
		if r.Body.String() != body || r.EventName != "ktrace.tcp."+ev.Event || r.SeverityNumber != 9 {
			t.Errorf("%s record %d: body %q, event name %q, severity %d; want %q, %q, 9", key, i, r.Body.String(), r.EventName, r.SeverityNumber, body, "ktrace.tcp."+ev.Event)
		}
		wantAttrs := map[string]string{"process.pid": strconv.Itoa(ev.PID), "process.executable.name": "curl", "cpu.logical_number": strconv.Itoa(ev.CPU),
			"network.transport": "tcp", "network.type": "ipv4", "network.local.address": "10.0.0.5", "network.local.port": strconv.Itoa(30000 + i),
			"network.peer.address": "10.0.0.9", "network.peer.port": "8080"}
		if i%2 == 1 {
			wantAttrs["ktrace.duration_us"] = ev.Fields["duration_us"]
		}
		if diff := cmp.Diff(wantAttrs, attrs); diff != "" {
			t.Errorf("%s record %d attributes (-want +got):\n%s", key, i, diff)
		}
		if r.TraceID != e.TraceID().String() {
			t.Errorf("%s record %d: trace %s, want the session's %s", key, i, r.TraceID, e.TraceID())
		}
	}
	if diff := cmp.Diff(map[string]int{podA.Pod: n, podB.Pod: n, nodeC.Node: n}, seen); diff != "" {
		t.Errorf("records per target (-want +got):\n%s", diff)
	}
}

func checkSpans(t *testing.T, d otlpData, e *Exporter, offsets map[string]time.Duration, n int) {
	t.Helper()
	var session spanJSON
	targets := map[string]spanJSON{}
	conns := map[string]int{}
	for _, s := range d.Spans {
		if s.TraceID != e.TraceID().String() {
			t.Errorf("span %s: trace %s, want the session's %s", s.Name, s.TraceID, e.TraceID())
		}
		switch s.Name {
		case "ktrace.session":
			session = s
		case "ktrace.tcp":
			targets[targetKey(s.Resource)] = s
		case "ktrace.tcp.connection":
			conns[targetKey(s.Resource)]++
		default:
			t.Errorf("unexpected span %q", s.Name)
		}
	}
	if session.SpanID == "" || session.ParentSpanID != "" || session.Status.Code != 0 {
		t.Fatalf("session span %+v: want a root span with status unset", session)
	}
	for key, st := range targets {
		if st.ParentSpanID != session.SpanID {
			t.Errorf("%s span's parent %s, want the session span %s", key, st.ParentSpanID, session.SpanID)
		}
		wantCode := 0
		if key == podB.Pod {
			wantCode = 2 // ERROR: it ended with an error
		}
		if st.Status.Code != wantCode {
			t.Errorf("%s span status %+v, want code %d", key, st.Status, wantCode)
		}
	}
	if st := targets[podB.Pod]; st.Status.Message != "pod web-1 was deleted" {
		t.Errorf("web-1's span status message %q", st.Status.Message)
	}
	bases := map[string]float64{podA.Pod: 5000, podB.Pod: 6000, nodeC.Node: 7000}
	for _, r := range d.Logs {
		key := targetKey(r.Resource)
		if r.SpanID != targets[key].SpanID {
			t.Fatalf("%s record links span %s, want its target's %s", key, r.SpanID, targets[key].SpanID)
		}
	}
	for _, s := range d.Spans {
		if s.Name != "ktrace.tcp.connection" {
			continue
		}
		key := targetKey(s.Resource)
		i, _ := strconv.Atoi(attrMap(s.Attributes)["network.local.port"])
		ev := tcpEvent(i-30000, bases[key])
		start, _ := strconv.ParseInt(s.StartTimeUnixNano, 10, 64)
		end, _ := strconv.ParseInt(s.EndTimeUnixNano, 10, 64)
		us, _ := strconv.Atoi(ev.Fields["duration_us"])
		if end != wantWall(ev.Time, offsets[key]) || time.Duration(end-start) != time.Duration(us)*time.Microsecond {
			t.Errorf("%s connection span %d: %d to %d (%v), want to end at the close (%d) and last its %d µs",
				key, i, start, end, time.Duration(end-start), wantWall(ev.Time, offsets[key]), us)
		}
		if s.ParentSpanID != targets[key].SpanID {
			t.Errorf("%s connection span's parent %s, want its target's %s", key, s.ParentSpanID, targets[key].SpanID)
		}
	}
	if diff := cmp.Diff(map[string]int{podA.Pod: n / 2, podB.Pod: n / 2, nodeC.Node: n / 2}, conns); diff != "" {
		t.Errorf("connection spans per target (-want +got):\n%s", diff)
	}
}

// checkCounters checks the last value of each target's event counters.
func checkCounters(t *testing.T, d otlpData, events, lost map[string]int64) {
	t.Helper()
	last := map[string]map[string]int64{MetricEvents: {}, MetricEventsLost: {}}
	lastTime := map[string]string{}
	for _, m := range d.Metrics {
		if (m.Name != MetricEvents && m.Name != MetricEventsLost) || m.Sum == nil {
			continue
		}
		if m.Sum.AggregationTemporality != 2 || !m.Sum.IsMonotonic {
			t.Errorf("%s: temporality %d, monotonic %v; want cumulative (2), monotonic", m.Name, m.Sum.AggregationTemporality, m.Sum.IsMonotonic)
		}
		for _, p := range m.Sum.DataPoints {
			key := targetKey(m.Resource)
			if p.TimeUnixNano >= lastTime[m.Name+key] {
				lastTime[m.Name+key] = p.TimeUnixNano
				v, _ := strconv.ParseInt(*p.AsInt, 10, 64)
				last[m.Name][key] = v
			}
		}
	}
	for key := range events {
		if _, ok := lost[key]; !ok {
			lost[key] = 0
		}
	}
	if diff := cmp.Diff(map[string]map[string]int64{MetricEvents: events, MetricEventsLost: lost}, last); diff != "" {
		t.Errorf("the counters' last values (-want +got):\n%s", diff)
	}
}

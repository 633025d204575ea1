//go:build otelcol

package otlp

import (
	"context"
	"encoding/json"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// BenchmarkExport measures export to the local collector (both on this
// machine's cores), lossless: the queue holds every event, so none is
// dropped, and the rate is what the exporter drains end to end
// (events/s, from the first Emit to Stop's return, which is when the
// collector has taken the last). emit-ns/event is the caller's own time
// per event, while the exporter works beside it: Emit's for decoded
// events, EmitJSON's (chunks of 64 lines) for -o json.
//
//	make otelcol && go test -tags otelcol -run '^$' -bench Export -benchtime 300000x ./plugin/otlp/
//
// The collector either counts what it takes (hack/otelcol/bench-config.yaml:
// the receiver's work only) or also writes it as JSON to a file
// (test-config.yaml), which costs it more CPU than the exporter's own.
func BenchmarkExport(b *testing.B) {
	for _, sink := range []string{"count", "file"} {
		for _, protocol := range protocols {
			for _, path := range []string{"Emit", "EmitJSON"} {
				b.Run(sink+"/"+protocol+"/"+path, func(b *testing.B) { benchExport(b, sink, protocol, path) })
			}
		}
	}
}

// benchEvent is a sched_switch as the ftrace hook reports it: five fields.
func benchEvent(i int) wire.Event {
	return wire.Event{Time: 1000 + float64(i)*1e-6, CPU: i % 2, PID: 4242, Comm: "nginx", Event: "sched_switch",
		Fields: map[string]string{"prev_state": "S", "next_comm": "swapper/1", "next_pid": "0", "next_prio": "120", "prev_prio": "120"}}
}

func benchExport(b *testing.B, sink, protocol, path string) {
	c := startCollectorWith(b, map[string]string{"count": "bench-config.yaml", "file": "test-config.yaml"}[sink])
	cfg, err := Parse(Options{Endpoint: c.endpoint(protocol), Protocol: protocol}, func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	e, err := New(cfg, Session{ID: "bench", Hook: "sched", Version: "bench"}, Settings{QueueSize: b.N + 64, QueueBytes: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	tg := e.AddTarget(podA)
	tg.SetClockOffset(aggOffset)
	const chunk = 64
	var lines []byte
	if path == "EmitJSON" {
		for i := range chunk {
			l, _ := json.Marshal(jsonEvent{Event: benchEvent(i), Text: "1000.000001 [001] nginx-4242 sched_switch: prev_state=S ==> next_comm=swapper/1 next_pid=0"})
			lines = append(append(lines, l...), '\n')
		}
	}
	evs := make([]wire.Event, chunk)
	for i := range evs {
		evs[i] = benchEvent(i)
	}
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; sent += chunk {
		if path == "EmitJSON" {
			tg.EmitJSON(lines)
		} else {
			for i := range evs {
				tg.Emit(&evs[i], "")
			}
		}
	}
	emitting := time.Since(start)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := e.Stop(ctx, nil)
	took := time.Since(start)
	b.StopTimer()
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	c.stop()
	n := float64(s.Events)
	self := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	coll := c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime()
	b.ReportMetric(float64(self.Nanoseconds())/n, "cpu-ns/event")
	b.ReportMetric(float64(coll.Nanoseconds())/n, "collector-cpu-ns/event")
	if s.Logs.Exported != s.Events || s.Logs.DroppedTotal() != 0 {
		b.Fatalf("not lossless: %s", s)
	}
	b.ReportMetric(n/took.Seconds(), "events/s")
	b.ReportMetric(float64(emitting.Nanoseconds())/n, "emit-ns/event")
	b.ReportMetric(0, "ns/op")
	b.Logf("%s %s: %d events in %v: %s events/s, caller %s ns/event", protocol, path, s.Events, took.Round(time.Millisecond),
		strconv.FormatFloat(n/took.Seconds(), 'f', 0, 64), strconv.FormatFloat(float64(emitting.Nanoseconds())/n, 'f', 1, 64))
}

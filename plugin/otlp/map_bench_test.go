package otlp

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	sdklog "go.opentelemetry.io/otel/sdk/log"
)

// BenchmarkMapEvent is the worker's cost per event without the network:
// the record made from its target's template, into the batch.
func BenchmarkMapEvent(b *testing.B) {
	for _, text := range []string{"", "1000.000001 [001] nginx-4242 sched_switch: prev_state=S ==> next_comm=swapper/1 next_pid=0"} {
		name := "given-text"
		if text == "" {
			name = "built-body"
		}
		b.Run(name, func(b *testing.B) {
			tmpl := testTemplate()
			m := newMapper("sched")
			batch := make([]sdklog.Record, 0, 2048)
			ev := wire.Event{Time: 1000.000001, CPU: 1, PID: 4242, Comm: "nginx", Event: "sched_switch",
				Fields: map[string]string{"prev_state": "S", "next_comm": "swapper/1", "next_pid": "0", "next_prio": "120", "prev_prio": "120"}}
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				r := tmpl
				m.fill(&r, &ev, text, now, 0, true)
				batch = append(batch, r)
				if len(batch) == cap(batch) {
					batch = batch[:0]
				}
			}
		})
	}
}

// BenchmarkEmitPath is the caller's own cost of Emit and EmitJSON: the
// counters, the lock and the queue, with a consumer that only takes from
// the queue (BenchmarkExport has the real worker, which competes with the
// caller for the cores).
func BenchmarkEmitPath(b *testing.B) {
	ev := wire.Event{Time: 1000.000001, CPU: 1, PID: 4242, Comm: "nginx", Event: "sched_switch",
		Fields: map[string]string{"prev_state": "S", "next_comm": "swapper/1", "next_pid": "0", "next_prio": "120", "prev_prio": "120"}}
	line, _ := json.Marshal(ev)
	chunk := bytes.Repeat(append(line, '\n'), 64)
	for _, path := range []string{"Emit", "EmitJSON-64-lines"} {
		b.Run(path, func(b *testing.B) {
			e, _ := bareExporter(32768)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for it := range e.q {
					e.queuedBytes.Add(-int64(len(it.json)))
					if it.json != nil {
						freeChunk(it.json)
					}
				}
			}()
			tg := &Target{e: e}
			e.targets = append(e.targets, tg)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				if path == "Emit" {
					tg.Emit(&ev, "")
					n++
				} else {
					tg.EmitJSON(chunk)
					n += 64
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
			b.ReportMetric(float64(e.summary().Logs.DroppedTotal())/float64(n), "dropped/event")
			close(e.q)
			<-done
		})
	}
}

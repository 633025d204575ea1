//go:build otelcol

package otlp

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// TestCollectorStopsMidStream: the collector takes the first events, then
// stops; a burst far larger than the queue goes on being taken without
// waiting, and the summary accounts for every event: what the collector
// wrote as exported, the rest dropped with the reasons.
func TestCollectorStopsMidStream(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) {
			c := startCollector(t)
			e := newTestExporter(t, c, protocol, "sched", nil, Settings{QueueSize: 4096, BatchSize: 256})
			tg := e.AddTarget(podA)
			tg.SetClockOffset(aggOffset)
			const before, after = 1000, 100_000
			ev := wire.Event{Time: 1, CPU: 1, PID: 10, Comm: "app", Event: "sched_switch", Fields: map[string]string{"prev_state": "S"}}
			for range before {
				tg.Emit(&ev, "")
			}
			c.waitFor(strconv.Itoa(before)+" records", 20*time.Second, func(d otlpData) bool { return len(d.Logs) == before })
			c.stop()

			start := time.Now()
			for range after {
				tg.Emit(&ev, "")
			}
			// An Emit that waited on the dead collector would wait for a
			// retry (200 ms and more) or an export timeout (10 s).
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("%d Emits with the collector gone took %v", after, took)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			s := e.Stop(ctx, nil)
			if s.Events != before+after || s.Logs.Exported != before || s.Logs.DroppedTotal() != after {
				t.Errorf("summary %+v: want %d events, %d exported, %d dropped", s, before+after, before, after)
			}
			if s.Logs.Dropped[ReasonQueueFull] == 0 || s.Logs.Dropped[ReasonQueueFull] == after || s.LastError == nil {
				t.Errorf("summary %+v: want drops for the full queue and for failed requests, and the last error", s)
			}
			if got := len(c.received().Logs); uint64(got) != s.Logs.Exported {
				t.Errorf("the collector wrote %d records, the summary says %d were exported", got, s.Logs.Exported)
			}
			t.Logf("summary: %s", s)
		})
	}
}

//go:build otelcol

package otlp

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// TestAggregatesEachInterval: syscall-top's rows and runqlat's buckets
// reach the collector as metrics at each of the hook's intervals, while
// the session runs (the test waits for each interval's point before it
// sends the next), each a delta from the previous interval's end to the
// rows' time.
func TestAggregatesEachInterval(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) {
			c := startCollector(t)
			testSyscallTop(t, c, protocol)
			testRunqlat(t, c, protocol)
		})
	}
}

const aggOffset = 1_780_000_000 * time.Second

// pointsOf returns the data points of metric name, in arrival order.
func pointsOf(d otlpData, name string) []dataPointJSON {
	var out []dataPointJSON
	for _, m := range d.Metrics {
		if m.Name == name && m.Sum != nil {
			out = append(out, m.Sum.DataPoints...)
		}
	}
	return out
}

func testSyscallTop(t *testing.T, c *collector, protocol string) {
	e := newTestExporter(t, c, protocol, "syscall-top", nil, Settings{})
	tg := e.AddTarget(podA)
	tg.SetClockOffset(aggOffset)
	const intervals = 3
	for k := 1; k <= intervals; k++ {
		ts := 100.0 + float64(k)
		for _, row := range []struct {
			name  string
			count int
		}{{"read", 10 * k}, {"write", k}} {
			ev := wire.Event{Time: ts, Event: "syscall", Fields: map[string]string{"syscall": row.name, "nr": "0",
				"count": strconv.Itoa(row.count), "total_ns": strconv.Itoa(1000 * row.count), "avg_ns": "1000"}}
			tg.Emit(&ev, "")
		}
		want := strconv.FormatInt(wantWall(ts, aggOffset), 10)
		c.waitFor(fmt.Sprintf("syscall-top's interval %d", k), 20*time.Second, func(d otlpData) bool {
			for _, p := range pointsOf(d, MetricSyscallCalls) {
				if p.TimeUnixNano == want {
					return true
				}
			}
			return false
		})
	}
	stopExporter(t, e, nil)
	// Every interval's point was there before Stop; nothing more comes.
	d := c.waitFor("syscall-top's points", 20*time.Second, func(d otlpData) bool { return len(pointsOf(d, MetricSyscallCalls)) >= 2*intervals })
	type point struct {
		Syscall, Start, End, Value string
	}
	var got []point
	for _, p := range pointsOf(d, MetricSyscallCalls) {
		got = append(got, point{attrMap(p.Attributes)[AttrSyscall], p.StartTimeUnixNano, p.TimeUnixNano, *p.AsInt})
	}
	var want []point
	start := strconv.FormatInt(tg.start.UnixNano(), 10)
	for k := 1; k <= intervals; k++ {
		end := strconv.FormatInt(wantWall(100.0+float64(k), aggOffset), 10)
		want = append(want, point{"read", start, end, strconv.Itoa(10 * k)}, point{"write", start, end, strconv.Itoa(k)})
		start = end
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s points (-want +got):\n%s", MetricSyscallCalls, diff)
	}
	var secs []float64
	for _, p := range pointsOf(d, MetricSyscallTime) {
		secs = append(secs, *p.AsDouble)
	}
	if diff := cmp.Diff([]float64{10e-6, 1e-6, 20e-6, 2e-6, 30e-6, 3e-6}, secs); diff != "" {
		t.Errorf("%s values (-want +got):\n%s", MetricSyscallTime, diff)
	}
	for _, m := range d.Metrics {
		if m.Name == MetricSyscallCalls && (m.Sum.AggregationTemporality != 1 || !m.Sum.IsMonotonic || m.Unit != "{call}") {
			t.Errorf("%s: temporality %d, monotonic %v, unit %q; want delta (1), monotonic, {call}", m.Name, m.Sum.AggregationTemporality, m.Sum.IsMonotonic, m.Unit)
		}
	}
}

func testRunqlat(t *testing.T, c *collector, protocol string) {
	e := newTestExporter(t, c, protocol, "runqlat", nil, Settings{})
	tg := e.AddTarget(podB)
	tg.SetClockOffset(aggOffset)
	// Interval 1: slots 0 (0-1 µs) to 3 (8-15 µs); interval 2: slot 10.
	rows := [][][3]int{{{0, 1, 5}, {2, 3, 0}, {4, 7, 2}, {8, 15, 1}}, {{1024, 2047, 4}}}
	for k, rs := range rows {
		ts := 200.0 + float64(k)
		for _, r := range rs {
			ev := wire.Event{Time: ts, Event: "runqlat", Fields: map[string]string{"usecs_lo": strconv.Itoa(r[0]), "usecs_hi": strconv.Itoa(r[1]), "count": strconv.Itoa(r[2])}}
			tg.Emit(&ev, "")
		}
		want := strconv.FormatInt(wantWall(ts, aggOffset), 10)
		c.waitFor(fmt.Sprintf("runqlat's interval %d", k+1), 20*time.Second, func(d otlpData) bool {
			for _, m := range d.Metrics {
				if m.Name == MetricRunqLatency && m.Histogram != nil && m.Histogram.DataPoints[0].TimeUnixNano == want {
					return true
				}
			}
			return false
		})
	}
	stopExporter(t, e, nil)
	c.stop()
	var got [][]string
	for _, m := range c.received().Metrics {
		if m.Name != MetricRunqLatency {
			continue
		}
		if m.Histogram.AggregationTemporality != 1 || m.Unit != "us" {
			t.Errorf("%s: temporality %d, unit %q; want delta (1), us", m.Name, m.Histogram.AggregationTemporality, m.Unit)
		}
		for _, p := range m.Histogram.DataPoints {
			if diff := cmp.Diff(runqBounds, p.ExplicitBounds); diff != "" {
				t.Errorf("bounds (-want +got):\n%s", diff)
			}
			got = append(got, append([]string{p.Count}, p.BucketCounts...))
		}
	}
	want := [][]string{make([]string, 33), make([]string, 33)}
	for i := range want {
		for j := range want[i] {
			want[i][j] = "0"
		}
	}
	want[0][0], want[0][1], want[0][3], want[0][4] = "8", "5", "2", "1"
	want[1][0], want[1][11] = "4", "4"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("histograms: count then bucket counts (-want +got):\n%s", diff)
	}
}

// TestAggregatesLateRows: a row of an interval that was sent already (the
// helper's write cut, the rest late) goes over the same interval:
// syscall-top's as its syscall's point, runqlat's histogram again,
// complete.
func TestAggregatesLateRows(t *testing.T) {
	c := startCollector(t)
	e := newTestExporter(t, c, ProtocolGRPC, "syscall-top", nil, Settings{})
	tg := e.AddTarget(podA)
	tg.SetClockOffset(aggOffset)
	row := func(name string) {
		ev := wire.Event{Time: 300, Event: "syscall", Fields: map[string]string{"syscall": name, "count": "4"}}
		tg.Emit(&ev, "")
	}
	end := strconv.FormatInt(wantWall(300, aggOffset), 10)
	row("read")
	c.waitFor("the interval's first row", 20*time.Second, func(d otlpData) bool { return len(pointsOf(d, MetricSyscallCalls)) == 1 })
	row("write")
	stopExporter(t, e, nil)
	d := c.waitFor("the late row", 20*time.Second, func(d otlpData) bool { return len(pointsOf(d, MetricSyscallCalls)) >= 2 })
	start := strconv.FormatInt(tg.start.UnixNano(), 10)
	var got [][3]string
	for _, p := range pointsOf(d, MetricSyscallCalls) {
		if p.StartTimeUnixNano != start || p.TimeUnixNano != end {
			t.Errorf("point %+v: want the interval %s to %s", p, start, end)
		}
		got = append(got, [3]string{attrMap(p.Attributes)[AttrSyscall], p.StartTimeUnixNano, *p.AsInt})
	}
	if diff := cmp.Diff([][3]string{{"read", start, "4"}, {"write", start, "4"}}, got); diff != "" {
		t.Errorf("points (-want +got):\n%s", diff)
	}

	e = newTestExporter(t, c, ProtocolGRPC, "runqlat", nil, Settings{})
	tg = e.AddTarget(podB)
	tg.SetClockOffset(aggOffset)
	bucket := func(lo, hi int) {
		ev := wire.Event{Time: 400, Event: "runqlat", Fields: map[string]string{"usecs_lo": strconv.Itoa(lo), "usecs_hi": strconv.Itoa(hi), "count": "3"}}
		tg.Emit(&ev, "")
	}
	hists := func(d otlpData) (out []histogramPointJSON) {
		for _, m := range d.Metrics {
			if m.Name == MetricRunqLatency {
				out = append(out, m.Histogram.DataPoints...)
			}
		}
		return out
	}
	bucket(0, 1)
	c.waitFor("the histogram's first bucket", 20*time.Second, func(d otlpData) bool { return len(hists(d)) == 1 })
	bucket(2, 3)
	stopExporter(t, e, nil)
	c.stop()
	hs := hists(c.received())
	if len(hs) != 2 || hs[1].Count != "6" || hs[1].BucketCounts[0] != "3" || hs[1].BucketCounts[1] != "3" ||
		hs[1].StartTimeUnixNano != hs[0].StartTimeUnixNano || hs[1].TimeUnixNano != hs[0].TimeUnixNano {
		t.Errorf("histograms %+v: want the first bucket, then both over the same interval", hs)
	}
}

package otlp

import (
	"context"
	"math/bits"
	"slices"
	"strconv"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Metric names (docs/export.md).
const (
	MetricEvents       = "ktrace.events"
	MetricEventsLost   = "ktrace.events.lost"
	MetricSyscallCalls = "ktrace.syscall.calls"
	MetricSyscallTime  = "ktrace.syscall.time"
	MetricRunqLatency  = "ktrace.runqueue.latency"
	// AttrSyscall is the system call's name on the syscall-top metrics.
	AttrSyscall = "ktrace.syscall"
)

// aggKind says which aggregating hook's rows the session carries.
type aggKind int

const (
	aggNone aggKind = iota
	// aggSyscalls: syscall-top's rows (syscall, count, total_ns).
	aggSyscalls
	// aggRunq: runqlat's log2 buckets (usecs_lo, usecs_hi, count).
	aggRunq
)

func aggKindOf(hook string) aggKind {
	switch hook {
	case "syscall-top":
		return aggSyscalls
	case "runqlat":
		return aggRunq
	}
	return aggNone
}

// runqSlots is runqlat's bucket count (hooks/ebpf: runqSlots): slot s
// holds waits of 2^s to 2^(s+1)-1 µs (slot 0: 0 and 1 µs), the last
// everything longer.
const runqSlots = 32

// runqBounds are the histogram's explicit bounds: each slot's highest
// wait, which the bucket includes, as OTLP's (previous, bound] buckets do.
var runqBounds = func() []float64 {
	b := make([]float64, runqSlots-1)
	for s := range b {
		b[s] = float64(uint64(1)<<(s+1) - 1)
	}
	return b
}()

// aggregateQuiet is how long after its last row an interval's rows are
// taken as complete when no row of the next interval has come: the
// helper writes one interval's rows together.
const aggregateQuiet = 250 * time.Millisecond

// aggregate is one target's rows of the current hook interval (all rows
// of an interval carry the same time).
type aggregate struct {
	open bool
	ts   float64
	// last is when the worker took the interval's last row.
	last time.Time
	// start is the interval's start: the previous interval's end, or the
	// target's start.
	start time.Time
	// sent and sentStart say that the interval of time ts was sent, and
	// from when: a row of it that comes after (the helper's write was cut
	// and the rest came late) reopens it.
	sent      bool
	sentStart time.Time
	calls     map[string]int64
	nanos     map[string]int64
	// runq: counts per slot and the estimated sum of the waits.
	buckets [runqSlots]uint64
	sumUS   float64
}

// aggregate adds one row to its target's interval; a row of a later time
// closes the interval before. A late row of the interval sent last
// reopens it: syscall-top's late rows go as points of their own syscalls
// over the same interval, runqlat's histogram goes again, complete.
func (w *worker) aggregate(t *Target, ev *wire.Event) {
	a := &t.agg
	if a.open && a.ts != ev.Time {
		w.closeGroup(t)
	}
	switch {
	case a.open:
	case a.sent && a.ts == ev.Time:
		a.open, a.start = true, a.sentStart
		a.calls, a.nanos = map[string]int64{}, map[string]int64{}
	default:
		if a.start.IsZero() {
			a.start = t.start
		}
		*a = aggregate{open: true, ts: ev.Time, start: a.start, calls: map[string]int64{}, nanos: map[string]int64{}}
	}
	a.last = w.e.set.Now()
	count, _ := strconv.ParseInt(ev.Fields["count"], 10, 64)
	switch w.kind {
	case aggSyscalls:
		name := ev.Fields["syscall"]
		a.calls[name] += count
		if ns, err := strconv.ParseInt(ev.Fields["total_ns"], 10, 64); err == nil {
			a.nanos[name] += ns
		}
	case aggRunq:
		lo, _ := strconv.ParseUint(ev.Fields["usecs_lo"], 10, 64)
		hi, _ := strconv.ParseUint(ev.Fields["usecs_hi"], 10, 64)
		slot := min(max(bits.Len64(hi)-1, 0), runqSlots-1)
		a.buckets[slot] += uint64(count)
		a.sumUS += float64(count) * float64(lo+hi) / 2
	}
}

// closeQuiet closes t's interval when its rows stopped coming.
func (w *worker) closeQuiet(t *Target, now time.Time) {
	if t.agg.open && now.Sub(t.agg.last) >= aggregateQuiet {
		w.closeGroup(t)
	}
}

// closeGroup sends t's open interval as delta metrics: from the previous
// interval's end to the rows' time.
func (w *worker) closeGroup(t *Target) {
	a := &t.agg
	if !a.open {
		return
	}
	a.open = false
	end := a.last
	if off, ok := t.clock(); ok {
		end = WallTime(a.ts, off)
	}
	var ms []metricdata.Metrics
	switch w.kind {
	case aggSyscalls:
		ms = syscallMetrics(a, end)
	case aggRunq:
		ms = runqMetrics(a, end)
	}
	a.sent, a.sentStart, a.start = true, a.start, end
	w.sendMetrics(t, ms)
}

func syscallMetrics(a *aggregate, end time.Time) []metricdata.Metrics {
	names := make([]string, 0, len(a.calls))
	for n := range a.calls {
		names = append(names, n)
	}
	slices.Sort(names)
	calls := metricdata.Sum[int64]{Temporality: metricdata.DeltaTemporality, IsMonotonic: true}
	secs := metricdata.Sum[float64]{Temporality: metricdata.DeltaTemporality, IsMonotonic: true}
	for _, n := range names {
		attrs := attribute.NewSet(attribute.String(AttrSyscall, n))
		calls.DataPoints = append(calls.DataPoints, metricdata.DataPoint[int64]{Attributes: attrs, StartTime: a.start, Time: end, Value: a.calls[n]})
		if ns, ok := a.nanos[n]; ok {
			secs.DataPoints = append(secs.DataPoints, metricdata.DataPoint[float64]{Attributes: attrs, StartTime: a.start, Time: end, Value: float64(ns) / 1e9})
		}
	}
	ms := []metricdata.Metrics{{Name: MetricSyscallCalls, Description: "system calls completed in the interval (syscall-top)", Unit: "{call}", Data: calls}}
	if len(secs.DataPoints) > 0 {
		ms = append(ms, metricdata.Metrics{Name: MetricSyscallTime, Description: "time spent in those calls (syscall-top)", Unit: "s", Data: secs})
	}
	return ms
}

func runqMetrics(a *aggregate, end time.Time) []metricdata.Metrics {
	dp := metricdata.HistogramDataPoint[float64]{StartTime: a.start, Time: end, Bounds: runqBounds,
		BucketCounts: slices.Clone(a.buckets[:]), Sum: a.sumUS}
	for _, c := range a.buckets {
		dp.Count += c
	}
	return []metricdata.Metrics{{Name: MetricRunqLatency,
		Description: "run-queue latency (runqlat); the sum is estimated, each wait at its bucket's middle",
		Unit:        "us", Data: metricdata.Histogram[float64]{Temporality: metricdata.DeltaTemporality, DataPoints: []metricdata.HistogramDataPoint[float64]{dp}}}}
}

// sendCounters sends every target's event counters (cumulative since its
// start), a last time for a target that ended, and for all when final.
func (w *worker) sendCounters(now time.Time, final bool) {
	for _, t := range w.e.liveTargets() {
		if t.reported {
			continue
		}
		if t.ended.Load() || final {
			t.reported = true
		}
		sum := func(v uint64) metricdata.Sum[int64] {
			return metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
				DataPoints: []metricdata.DataPoint[int64]{{StartTime: t.start, Time: now, Value: int64(v)}}}
		}
		w.sendMetrics(t, []metricdata.Metrics{
			{Name: MetricEvents, Description: "events of the target the exporter was given", Unit: "{event}", Data: sum(t.events.Load())},
			{Name: MetricEventsLost, Description: "events of the target the kernel lost", Unit: "{event}", Data: sum(t.lost.Load())},
		})
	}
}

// sendMetrics queues one request of t's metrics.
func (w *worker) sendMetrics(t *Target, ms []metricdata.Metrics) {
	n := uint64(0)
	for _, m := range ms {
		n += points(m.Data)
	}
	if n == 0 {
		return
	}
	if w.e.metricExp == nil {
		return // metrics are not sent (Settings.Signals)
	}
	rm := &metricdata.ResourceMetrics{Resource: t.res, ScopeMetrics: []metricdata.ScopeMetrics{{
		Scope:   instrumentation.Scope{Name: scopeName, Version: w.e.sess.Version},
		Metrics: ms,
	}}}
	exp := w.e.metricExp
	w.e.metrics.submit(w.e.runCtx, job{n: n, export: func(ctx context.Context, _ int) error { return exp.Export(ctx, rm) }})
}

// points counts a metric's data points.
func points(d metricdata.Aggregation) uint64 {
	switch d := d.(type) {
	case metricdata.Sum[int64]:
		return uint64(len(d.DataPoints))
	case metricdata.Sum[float64]:
		return uint64(len(d.DataPoints))
	case metricdata.Histogram[float64]:
		return uint64(len(d.DataPoints))
	}
	return 0
}

package otlp

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ReasonNoClock: a duration's span was not made because its target's
// clock offset was not known (SetClockOffset): it could not be placed.
const ReasonNoClock = "no clock offset"

// spanBatch is the most spans per request.
const spanBatch = 512

// spanBuffer holds ended spans until the worker sends them. Spans end on
// the worker (durations) and on the caller's goroutines (targets, the
// session), so it has a lock.
type spanBuffer struct {
	mu  sync.Mutex
	buf []sdktrace.ReadOnlySpan
	max int
}

// spanSink is the span processor of every provider: ended spans go into
// the exporter's buffer.
type spanSink struct{ e *Exporter }

func (*spanSink) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (s *spanSink) OnEnd(span sdktrace.ReadOnlySpan) {
	if s.e.spanExp == nil {
		return // traces are not sent (Settings.Signals)
	}
	b := &s.e.spanBuf
	b.mu.Lock()
	full := len(b.buf) >= b.max
	if !full {
		b.buf = append(b.buf, span)
	}
	b.mu.Unlock()
	if full {
		s.e.spans.acct.drop(ReasonQueueFull, 1)
	}
}
func (*spanSink) Shutdown(context.Context) error   { return nil }
func (*spanSink) ForceFlush(context.Context) error { return nil }

// flushSpans hands the buffered spans to the spans sender (the worker
// calls it).
func (e *Exporter) flushSpans() {
	e.spanBuf.mu.Lock()
	spans := e.spanBuf.buf
	e.spanBuf.buf = nil
	e.spanBuf.mu.Unlock()
	for len(spans) > 0 {
		n := min(len(spans), spanBatch)
		batch := spans[:n:n]
		spans = spans[n:]
		exp := e.spanExp
		e.spans.submit(e.runCtx, job{n: uint64(n), export: func(ctx context.Context, _ int) error { return exp.ExportSpans(ctx, batch) }})
	}
}

// durations are the events that have a duration of their own: the field
// that holds it, its unit, and whether the event's time is the start (a
// system call's entry) or the end (a connection's close).
var durations = map[string]struct {
	event, field string
	unit         time.Duration
	atStart      bool
	name         func(ev *wire.Event) string
}{
	"tcp":      {event: "close", field: "duration_us", unit: time.Microsecond, name: func(*wire.Event) string { return "ktrace.tcp.connection" }},
	"syscalls": {field: "duration_ns", unit: time.Nanosecond, atStart: true, name: func(ev *wire.Event) string { return "ktrace.syscalls." + ev.Fields["name"] }},
}

// durationSpan makes ev's span when it has a duration: a child of its
// target's span, from its start to its end in wall-clock time, with the
// record's attributes.
func (w *worker) durationSpan(t *Target, ev *wire.Event, offset time.Duration, known bool) {
	e := w.e
	d, ok := durations[e.sess.Hook]
	if !ok || (d.event != "" && ev.Event != d.event) {
		return
	}
	v, err := strconv.ParseInt(ev.Fields[d.field], 10, 64)
	if err != nil || v < 0 {
		return
	}
	if !known {
		e.spans.acct.drop(ReasonNoClock, 1)
		return
	}
	at, length := WallTime(ev.Time, offset), time.Duration(v)*d.unit
	start, end := at.Add(-length), at
	if d.atStart {
		start, end = at, at.Add(length)
	}
	_, span := t.tracer.Start(t.ctx, d.name(ev), trace.WithTimestamp(start), trace.WithAttributes(w.m.appendAttributes(nil, ev)...))
	span.End(trace.WithTimestamp(end))
}

package otlp

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"go.opentelemetry.io/otel/codes"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"
)

// Target is one traced container (or node) of an exporter's session. Its
// methods are safe for concurrent use.
type Target struct {
	e      *Exporter
	target wire.Target
	res    *resource.Resource
	start  time.Time

	// template is the target's record that each event's is made from.
	template sdklog.Record
	tracer   trace.Tracer
	// ctx carries the target's span: the records' trace and span IDs.
	ctx  context.Context
	span trace.Span

	offset      atomic.Int64
	offsetKnown atomic.Bool
	events      atomic.Uint64
	lost        atomic.Uint64
	ended       atomic.Bool

	// EmitJSON's: gap says that its items were dropped since the last one
	// queued; gapNewline that they held a newline, gapMid that the last
	// ended in the middle of a line.
	gap, gapNewline, gapMid bool

	// Owned by the worker: the start of a line cut across items, and
	// whether the rest of the current line is to be skipped (after a gap).
	carry    []byte
	skip     bool
	agg      aggregate
	reported bool // its counters were sent after it ended
}

// item is one queued Emit or EmitJSON.
type item struct {
	t    *Target
	ev   wire.Event
	text string
	json []byte
	n    int64 // events in it: 1, or the lines of json
	recv time.Time
	// gap, gapNewline, gapMid: the target's at the time (EmitJSON).
	gap, gapNewline, gapMid bool
}

// Emit queues one event for export and returns at once: it never blocks
// and never does I/O. text is the line -o text shows for it (the body of
// its record); "" builds one from the fields. ev is copied, but its Fields
// map is kept: do not change it afterwards. When the queue is full the
// event is dropped and counted (ReasonQueueFull).
func (t *Target) Emit(ev *wire.Event, text string) {
	t.events.Add(1)
	t.e.enqueue(item{t: t, ev: *ev, text: text, n: 1})
}

// EmitJSON queues -o json output of the target, as the helper streams it:
// one event per line, any cut (a line cut across two calls is joined). p
// is copied. Like Emit it never blocks; a line that is not an event is
// counted dropped (ReasonNotEvent). A line's "text" field, where the
// helper sends one, is the body of its record. One target's EmitJSON
// calls must not overlap: they are one stream.
func (t *Target) EmitJSON(p []byte) {
	if len(p) == 0 {
		return
	}
	n := int64(bytes.Count(p, []byte{'\n'}))
	t.events.Add(uint64(n))
	it := item{t: t, json: copyChunk(p), n: n, gap: t.gap, gapNewline: t.gapNewline, gapMid: t.gapMid}
	if t.e.enqueue(it) {
		t.gap, t.gapNewline, t.gapMid = false, false, false
		return
	}
	freeChunk(it.json)
	t.gap, t.gapNewline, t.gapMid = true, t.gapNewline || n > 0, p[len(p)-1] != '\n'
}

// chunks recycles EmitJSON's copies: the worker gives each back when it
// has decoded it, so a busy stream costs a copy, not an allocation (and
// its garbage), per call.
var chunks sync.Pool

func copyChunk(p []byte) []byte {
	if b, ok := chunks.Get().(*[]byte); ok && cap(*b) >= len(p) {
		return append((*b)[:0], p...)
	}
	return bytes.Clone(p)
}

func freeChunk(b []byte) {
	if cap(b) <= 1<<20 {
		chunks.Put(&b)
	}
}

// enqueue is Emit's and EmitJSON's path: the time, a read lock and a
// channel send that does not wait. The channel bounds the items; the
// bytes of EmitJSON's are bounded too. It says whether it is queued.
func (e *Exporter) enqueue(it item) bool {
	it.recv = e.set.Now()
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.stopped {
		e.afterStop.Add(uint64(it.n))
		return false
	}
	size := int64(len(it.json))
	if size > 0 && e.queuedBytes.Add(size) > e.set.QueueBytes {
		e.queuedBytes.Add(-size)
		e.queueFull.Add(uint64(it.n))
		return false
	}
	select {
	case e.q <- it:
		return true
	default:
		e.queuedBytes.Add(-size)
		e.queueFull.Add(uint64(it.n))
		return false
	}
}

// SetClockOffset sets how the target's event times become wall-clock
// times: wall = event time + d, d the offset between CLOCK_REALTIME and
// the trace clock that the target's helper measured. Until it is set,
// records have no Timestamp (backends then use ObservedTimestamp).
// Events whose time is already wall-clock time (tcpdump's) take 0.
func (t *Target) SetClockOffset(d time.Duration) {
	t.offset.Store(int64(d))
	t.offsetKnown.Store(true)
}

func (t *Target) clock() (time.Duration, bool) {
	return time.Duration(t.offset.Load()), t.offsetKnown.Load()
}

// SetLost sets the events the kernel lost for the target so far (the
// helper's count): the ktrace.events.lost counter.
func (t *Target) SetLost(n uint64) { t.lost.Store(n) }

// End ends the target's span, with status error when err is not nil:
// its stream ended (the pod went away, the helper failed). Its queued
// events are still sent.
func (t *Target) End(err error) { t.end(err, t.e.set.Now()) }

func (t *Target) end(err error, now time.Time) {
	if t.ended.CompareAndSwap(false, true) {
		endSpan(t.span, err, now)
	}
}

// endSpan ends s at now, with status error for err.
func endSpan(s trace.Span, err error, now time.Time) {
	if err != nil {
		s.SetStatus(codes.Error, err.Error())
	}
	s.End(trace.WithTimestamp(now))
}

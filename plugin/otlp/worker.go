package otlp

import (
	"bytes"
	"context"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	sdklog "go.opentelemetry.io/otel/sdk/log"
)

// worker turns queued events into log records, spans and metrics, and
// hands them to the senders in batches. One goroutine owns it.
type worker struct {
	e     *Exporter
	batch []sdklog.Record
	done  chan struct{}
	// lastCounters is when the event counters were last sent.
	lastCounters time.Time
	kind         aggKind
	m            *mapper
}

func newWorker(e *Exporter) *worker {
	return &worker{e: e, batch: make([]sdklog.Record, 0, e.set.BatchSize), done: make(chan struct{}),
		lastCounters: e.set.Now(), kind: aggKindOf(e.sess.Hook), m: newMapper(e.sess.Hook)}
}

// run works until Stop closes the queue, then sends what is left.
func (w *worker) run() {
	defer close(w.done)
	tick := time.NewTicker(w.e.set.BatchTimeout)
	defer tick.Stop()
	for {
		select {
		case it, ok := <-w.e.q:
			if !ok {
				w.finish()
				return
			}
			w.take(&it)
		case <-tick.C:
			w.tick(w.e.set.Now())
		}
	}
}

// take handles an item taken from the queue.
func (w *worker) take(it *item) {
	if it.json != nil {
		w.e.queuedBytes.Add(-int64(len(it.json)))
	}
	w.handle(it)
}

// handle maps one item, or after Stop's deadline only counts it.
func (w *worker) handle(it *item) {
	if w.e.runCtx.Err() != nil {
		w.e.logAcct.drop(ReasonDeadline, uint64(it.n))
		return
	}
	if it.json == nil {
		w.event(it.t, &it.ev, it.text, it.recv)
		return
	}
	w.jsonLines(it)
	freeChunk(it.json)
}

// jsonEvent is a line of -o json, with the text line the helper may add.
type jsonEvent struct {
	wire.Event
	Text string `json:"text"`
}

// jsonLines decodes the whole lines of an EmitJSON item, joining a line
// cut across items. After a gap (items dropped before this one) the line
// in progress is lost: its start (the carry) is dropped, and so is its
// end when this item begins in the middle of a line; each line counted
// once, where its newline was.
func (w *worker) jsonLines(it *item) {
	t, p := it.t, it.json
	if it.gap {
		t.carry = t.carry[:0]
		t.skip = !it.gapNewline || it.gapMid
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if !t.skip {
				t.carry = append(t.carry, p...)
			}
			return
		}
		line := p[:i]
		p = p[i+1:]
		if t.skip {
			t.skip = false
			w.e.logAcct.drop(ReasonQueueFull, 1)
			continue
		}
		if len(t.carry) > 0 {
			line = append(t.carry, line...)
			t.carry = t.carry[:0]
		}
		w.jsonLine(t, line, it.recv)
	}
}

func (w *worker) jsonLine(t *Target, line []byte, recv time.Time) {
	var ev wire.Event
	var text string
	if err := decodeEvent(line, &ev, &text); err != nil || ev.Event == "" {
		w.e.logAcct.drop(ReasonNotEvent, 1)
		return
	}
	w.event(t, &ev, text, recv)
}

// event maps one event: its record, its part of an aggregate, its span.
func (w *worker) event(t *Target, ev *wire.Event, text string, recv time.Time) {
	offset, known := t.clock()
	if w.e.logExps == nil {
		// Logs are not sent: the event still counts (and aggregates).
		w.e.logAcct.drop(ReasonNotSent, 1)
	} else {
		r := t.template
		w.m.fill(&r, ev, text, recv, offset, known)
		w.batch = append(w.batch, r)
		if len(w.batch) >= w.e.set.BatchSize {
			w.flushLogs()
		}
	}
	if w.kind != aggNone {
		w.aggregate(t, ev)
	}
	if w.e.set.DurationSpans && w.e.spanExp != nil {
		w.durationSpan(t, ev, offset, known)
	}
}

// templateSink is the processor of a target's LoggerProvider. The SDK's
// logger makes one record, the target's template, which carries what
// only the SDK can set (the resource and scope) and what every record of
// the target shares (trace and span IDs, limits); the worker fills a copy
// for each event with the record's setters, which costs a fraction of a
// Logger.Emit per event.
type templateSink struct{ rec *sdklog.Record }

func (s *templateSink) OnEmit(_ context.Context, r *sdklog.Record) error {
	c := r.Clone()
	s.rec = &c
	return nil
}

func (*templateSink) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (*templateSink) Shutdown(context.Context) error                         { return nil }
func (*templateSink) ForceFlush(context.Context) error                       { return nil }

// flushLogs hands the batch to the logs sender.
func (w *worker) flushLogs() {
	if len(w.batch) == 0 {
		return
	}
	batch := w.batch
	w.batch = make([]sdklog.Record, 0, w.e.set.BatchSize)
	exps := w.e.logExps
	w.e.logs.submit(w.e.runCtx, job{n: uint64(len(batch)), export: func(ctx context.Context, lane int) error {
		return exps[lane].Export(ctx, batch)
	}})
}

// tick sends what waited long enough: the batches, the aggregates of a
// hook interval that is complete, and the counters when due. What is
// queued already goes first, so that an interval's rows waiting there
// are not taken for late ones.
func (w *worker) tick(now time.Time) {
	for range len(w.e.q) {
		it := <-w.e.q
		w.take(&it)
	}
	w.flushLogs()
	w.e.flushSpans()
	for _, t := range w.e.liveTargets() {
		w.closeQuiet(t, now)
	}
	if now.Sub(w.lastCounters) >= w.e.set.MetricInterval {
		w.lastCounters = now
		w.sendCounters(now, false)
	}
}

// finish runs after Stop: every aggregate closed, the counters a last
// time, the batches, then the senders are told there is no more.
func (w *worker) finish() {
	now := w.e.set.Now()
	for _, t := range w.e.liveTargets() {
		w.closeGroup(t)
	}
	w.sendCounters(now, true)
	w.flushLogs()
	w.e.flushSpans()
	close(w.e.logs.jobs)
	close(w.e.metrics.jobs)
	close(w.e.spans.jobs)
}

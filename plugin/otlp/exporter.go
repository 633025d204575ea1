package otlp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// scopeName is the instrumentation scope of everything the exporter sends.
const scopeName = "github.com/ktrace-dev/kubectl-trace"

// logLanes is how many logs requests are in flight at once: two, so that
// one is encoded while the endpoint takes the other.
const logLanes = 2

// Settings tune an exporter; a zero field takes its default.
type Settings struct {
	// QueueSize bounds the items waiting between the caller and the
	// export worker, each an Emit or an EmitJSON call (default 32768), and
	// QueueBytes the bytes of EmitJSON's (default 16 MiB); beyond either
	// the item is dropped, counted.
	QueueSize  int
	QueueBytes int64
	// BatchSize is the most log records per request (default 2048).
	BatchSize int
	// BatchTimeout is the longest a record waits for its batch to fill
	// (default 200ms).
	BatchTimeout time.Duration
	// MetricInterval is how often the event counters are sent (default
	// 10s; also once at Stop). The aggregating hooks' metrics go at each of
	// the hook's own intervals.
	MetricInterval time.Duration
	// CheckTimeout bounds Check (default 5s).
	CheckTimeout time.Duration
	// Signals are the signals to send (SignalLogs, SignalMetrics,
	// SignalTraces); nil sends all three.
	Signals []string
	// DurationSpans sends a span for each event that has a duration of its
	// own (a TCP connection's close, a system call), besides its record.
	DurationSpans bool
	// Now is the clock of ObservedTimestamp and of the spans (time.Now).
	Now func() time.Time
}

func (s Settings) withDefaults() Settings {
	if s.QueueSize <= 0 {
		s.QueueSize = 32768
	}
	if s.QueueBytes <= 0 {
		s.QueueBytes = 16 << 20
	}
	if s.BatchSize <= 0 {
		s.BatchSize = 2048
	}
	if s.BatchTimeout <= 0 {
		s.BatchTimeout = 200 * time.Millisecond
	}
	if s.MetricInterval <= 0 {
		s.MetricInterval = 10 * time.Second
	}
	if s.CheckTimeout <= 0 {
		s.CheckTimeout = 5 * time.Second
	}
	if s.Signals == nil {
		s.Signals = []string{SignalLogs, SignalMetrics, SignalTraces}
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	return s
}

// Exporter sends one trace session's events to an OTLP endpoint: a log
// record per event, metrics for the event counters and the aggregating
// hooks, and a span per target (all in the session's trace) that the
// records link to. Emit never blocks and does no I/O: a bounded queue
// feeds a worker, and the worker feeds one sender per signal. Create it
// with New, Check the endpoint before tracing, AddTarget each target, and
// always Stop it: Stop flushes within its deadline and says what was
// exported and what was not, and why.
type Exporter struct {
	cfg  Config
	sess Session
	set  Settings

	// logExps are the logs lanes' exporters (each its own connection).
	logExps   []sdklog.Exporter
	metricExp sdkmetric.Exporter
	spanExp   sdktrace.SpanExporter
	logs      *sender
	metrics   *sender
	spans     *sender
	logAcct   *account

	// mu orders Emit's sends against Stop's close of q.
	mu      sync.RWMutex
	stopped bool
	q       chan item
	// queuedBytes, queueFull and afterStop are counted on the caller's
	// path, without a lock; the events are counted per target.
	queuedBytes atomic.Int64
	queueFull   atomic.Uint64
	afterStop   atomic.Uint64

	tmu     sync.Mutex
	targets []*Target

	sessionTP   *sdktrace.TracerProvider
	sessionSpan trace.Span
	sessionCtx  context.Context
	spanBuf     spanBuffer

	// runCtx is cancelled when Stop's deadline passes.
	runCtx    context.Context
	cancelRun context.CancelFunc
	w         *worker

	errMu    sync.Mutex
	lastErr  error
	startErr error
}

// New builds an exporter for the session. It does no I/O (connections are
// made on the first request); Check is the start check.
func New(cfg Config, s Session, set Settings) (*Exporter, error) {
	if !cfg.Enabled() {
		return nil, errors.New("otlp export: no endpoint: give --otlp or set OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	e := &Exporter{cfg: cfg, sess: s, set: set.withDefaults()}
	if err := e.newExporters(); err != nil {
		e.shutdown()
		return nil, err
	}
	e.q = make(chan item, e.set.QueueSize)
	e.runCtx, e.cancelRun = context.WithCancel(context.Background())
	e.logAcct = newAccount(&e.lastErr, &e.errMu)
	e.logs = newSender(e.logAcct, logLanes, logLanes)
	e.metrics = newSender(newAccount(&e.lastErr, &e.errMu), 64, 1)
	e.spans = newSender(newAccount(&e.lastErr, &e.errMu), 4, 1)
	e.spanBuf.max = e.set.QueueSize
	e.sessionTP = e.tracerProvider(sessionResource(cfg, s))
	e.sessionCtx, e.sessionSpan = e.sessionTP.Tracer(scopeName, trace.WithInstrumentationVersion(s.Version)).
		Start(context.Background(), "ktrace.session", trace.WithTimestamp(e.set.Now()))
	e.w = newWorker(e)
	for _, sd := range []*sender{e.logs, e.metrics, e.spans} {
		go sd.run(e.runCtx)
	}
	go e.w.run()
	return e, nil
}

// newExporters builds the SDK's exporter of each signal sent.
func (e *Exporter) newExporters() error {
	var err error
	if e.sends(SignalLogs) {
		for range logLanes {
			var exp sdklog.Exporter
			if exp, err = logExporter(e.cfg.Logs, exportRetry); err != nil {
				return fmt.Errorf("otlp export: logs exporter for %s: %w", e.cfg.Logs.URL, err)
			}
			e.logExps = append(e.logExps, exp)
		}
	}
	if e.sends(SignalMetrics) {
		if e.metricExp, err = metricExporter(e.cfg.Metrics, exportRetry, e.cfg.Metrics.Timeout); err != nil {
			return fmt.Errorf("otlp export: metrics exporter for %s: %w", e.cfg.Metrics.URL, err)
		}
	}
	if e.sends(SignalTraces) {
		if e.spanExp, err = spanExporter(e.cfg.Traces, exportRetry); err != nil {
			return fmt.Errorf("otlp export: traces exporter for %s: %w", e.cfg.Traces.URL, err)
		}
	}
	return nil
}

func (e *Exporter) sends(signal string) bool { return slices.Contains(e.set.Signals, signal) }

// tracerProvider is a provider for one resource whose ended spans go to
// the span buffer. Every span is sampled: there are few, and the records
// link to them.
func (e *Exporter) tracerProvider(res *resource.Resource) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithSpanProcessor(&spanSink{e: e}),
	)
}

// TraceID is the session's trace: every target's span and every record.
func (e *Exporter) TraceID() trace.TraceID { return e.sessionSpan.SpanContext().TraceID() }

// AddTarget starts exporting a target's events: its resource (semantic
// conventions, see docs/export.md) and its span, a child of the session's,
// from now until Target.End or Stop.
func (e *Exporter) AddTarget(t wire.Target) *Target {
	res := targetResource(e.cfg, e.sess, t)
	tg := &Target{e: e, target: t, res: res, start: e.set.Now()}
	tg.tracer = e.tracerProvider(res).Tracer(scopeName, trace.WithInstrumentationVersion(e.sess.Version))
	tg.ctx, tg.span = tg.tracer.Start(e.sessionCtx, "ktrace."+e.sess.Hook, trace.WithTimestamp(tg.start))
	sink := &templateSink{}
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sink),
		// Keys are unique by construction: no per-record deduplication.
		sdklog.WithAllowKeyDuplication())
	linked := tg.ctx
	if !e.sends(SignalTraces) {
		// No record links a span that is never sent.
		linked = context.Background()
	}
	lp.Logger(scopeName, log.WithInstrumentationVersion(e.sess.Version)).Emit(linked, log.Record{})
	tg.template = *sink.rec
	e.tmu.Lock()
	e.targets = append(e.targets, tg)
	e.tmu.Unlock()
	return tg
}

// liveTargets returns the targets added so far.
func (e *Exporter) liveTargets() []*Target {
	e.tmu.Lock()
	defer e.tmu.Unlock()
	return slices.Clone(e.targets)
}

// Stop ends the session (its span gets status error when err is not nil,
// and so does each target's that has not ended), takes no more events,
// and sends everything queued. It returns when all is sent or when ctx is
// done, whichever comes first; what was not sent by then is counted
// dropped (ReasonDeadline). The exporter cannot be used after.
func (e *Exporter) Stop(ctx context.Context, err error) Summary {
	e.mu.Lock()
	already := e.stopped
	e.stopped = true
	e.mu.Unlock()
	if already {
		return e.summary()
	}
	now := e.set.Now()
	for _, t := range e.liveTargets() {
		t.end(err, now)
	}
	endSpan(e.sessionSpan, err, now)
	close(e.q)
	select {
	case <-e.w.done:
		for _, sd := range []*sender{e.logs, e.metrics, e.spans} {
			select {
			case <-sd.done:
			case <-ctx.Done():
			}
		}
	case <-ctx.Done():
	}
	e.cancelRun()
	<-e.w.done
	for _, sd := range []*sender{e.logs, e.metrics, e.spans} {
		<-sd.done
	}
	e.shutdown()
	return e.summary()
}

// shutdown closes the SDK exporters' connections; nothing is left to send.
func (e *Exporter) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, exp := range e.logExps {
		_ = exp.Shutdown(ctx)
	}
	if e.metricExp != nil {
		_ = e.metricExp.Shutdown(ctx)
	}
	if e.spanExp != nil {
		_ = e.spanExp.Shutdown(ctx)
	}
}

// eventsTotal sums the targets' events.
func (e *Exporter) eventsTotal() uint64 {
	var n uint64
	for _, t := range e.liveTargets() {
		n += t.events.Load()
	}
	return n
}

func (e *Exporter) summary() Summary {
	logs := e.logAcct.summary()
	for reason, n := range map[string]uint64{ReasonQueueFull: e.queueFull.Load(), ReasonAfterStop: e.afterStop.Load()} {
		if n > 0 {
			logs.Dropped[reason] += n
		}
	}
	e.errMu.Lock()
	defer e.errMu.Unlock()
	return Summary{
		Endpoint:   e.cfg.Logs.Protocol + " " + e.cfg.Logs.URL.String(),
		Events:     e.eventsTotal(),
		Logs:       logs,
		Spans:      e.spans.acct.summary(),
		Metrics:    e.metrics.acct.summary(),
		StartError: e.startErr,
		LastError:  e.lastErr,
	}
}

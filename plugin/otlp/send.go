package otlp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Why something was not exported (the keys of SignalSummary.Dropped).
const (
	// ReasonQueueFull: the exporter had fallen behind (a slow or
	// unreachable endpoint) and its queue was full when the event came.
	ReasonQueueFull = "queue full"
	// ReasonAfterStop: the event came after Stop.
	ReasonAfterStop = "after stop"
	// ReasonNotEvent: a line given to EmitJSON was not an event.
	ReasonNotEvent = "not an event"
	// ReasonUnreachable: no connection to the endpoint.
	ReasonUnreachable = "endpoint unreachable"
	// ReasonTimeout: the endpoint did not answer within the export timeout.
	ReasonTimeout = "timed out"
	// ReasonRejected: the endpoint answered with an error (or rejected
	// part of a request).
	ReasonRejected = "rejected by the endpoint"
	// ReasonDeadline: Stop's deadline passed before it was sent.
	ReasonDeadline = "stop deadline passed"
	// ReasonNotSent: logs are not among Settings.Signals (the events are
	// counted all the same).
	ReasonNotSent = "logs not sent"
)

// SignalSummary counts one signal's items: log records, spans or metric
// data points.
type SignalSummary struct {
	Exported uint64
	// Dropped counts what was not exported, by reason (Reason*).
	Dropped map[string]uint64
}

// DroppedTotal is the sum of Dropped.
func (s SignalSummary) DroppedTotal() uint64 {
	var n uint64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

// Summary is what an exporter did, returned by Stop.
type Summary struct {
	// Endpoint is the logs endpoint, protocol and URL, for messages.
	Endpoint string
	// Events counts the events the caller gave (each becomes a log record:
	// Events == Logs.Exported + Logs.DroppedTotal()).
	Events  uint64
	Logs    SignalSummary
	Spans   SignalSummary
	Metrics SignalSummary
	// StartError is the start check's failure, nil when it passed (or did
	// not run).
	StartError error
	// LastError is the last export error, nil when every export succeeded.
	LastError error
}

// String is the summary in one line, for the trace command's final report:
// "otlp http://c:4318/v1/logs: 1000 events, 990 exported, 10 dropped
// (10 endpoint unreachable); ...".
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "otlp %s: %d events, %d exported", s.Endpoint, s.Events, s.Logs.Exported)
	if n := s.Logs.DroppedTotal(); n > 0 {
		fmt.Fprintf(&b, ", %d dropped (%s)", n, reasons(s.Logs.Dropped))
	}
	for _, sig := range []struct {
		name string
		s    SignalSummary
	}{{"spans", s.Spans}, {"metric points", s.Metrics}} {
		if n := sig.s.DroppedTotal(); n > 0 {
			fmt.Fprintf(&b, "; %d %s dropped (%s)", n, sig.name, reasons(sig.s.Dropped))
		}
	}
	if s.StartError != nil {
		b.WriteString("; at start the endpoint did not answer")
	}
	if s.LastError != nil {
		fmt.Fprintf(&b, "; last error: %v", s.LastError)
	}
	return b.String()
}

func reasons(m map[string]uint64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = strconv.FormatUint(m[k], 10) + " " + k
	}
	return strings.Join(parts, ", ")
}

// account counts one signal's outcomes; safe for concurrent use.
type account struct {
	mu       sync.Mutex
	exported uint64
	dropped  map[string]uint64
	lastErr  *error // shared by the exporter's accounts
	errMu    *sync.Mutex
}

func newAccount(lastErr *error, errMu *sync.Mutex) *account {
	return &account{dropped: map[string]uint64{}, lastErr: lastErr, errMu: errMu}
}

func (a *account) drop(reason string, n uint64) {
	if n == 0 {
		return
	}
	a.mu.Lock()
	a.dropped[reason] += n
	a.mu.Unlock()
}

// result counts a request of n items that ended with err.
func (a *account) result(n uint64, err error, stopped bool) {
	if err == nil {
		a.mu.Lock()
		a.exported += n
		a.mu.Unlock()
		return
	}
	rejected, partial := partialRejected(err)
	if partial {
		rejected = min(rejected, n)
		a.mu.Lock()
		a.exported += n - rejected
		a.mu.Unlock()
		a.drop(ReasonRejected, rejected)
	} else {
		a.drop(classify(err, stopped), n)
	}
	a.errMu.Lock()
	*a.lastErr = err
	a.errMu.Unlock()
}

func (a *account) summary() SignalSummary {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := make(map[string]uint64, len(a.dropped))
	for k, v := range a.dropped {
		d[k] = v
	}
	return SignalSummary{Exported: a.exported, Dropped: d}
}

// partialSuccess matches the SDK exporters' partial-success error
// ("OTLP partial success: MSG (N logs rejected)"): the request was taken,
// less N items. The SDK's type is internal; its text is the interface.
var partialSuccess = regexp.MustCompile(`OTLP partial success: .*\((\d+) \S+ rejected\)`)

func partialRejected(err error) (uint64, bool) {
	m := partialSuccess.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, false
	}
	n, perr := strconv.ParseUint(m[1], 10, 64)
	return n, perr == nil
}

// classify names why a request failed. stopped says whether Stop's
// deadline had passed, which cancels every request.
//
// The endpoint's answer comes first: a request that was being retried
// against an unreachable endpoint when the deadline cancelled it failed
// because the endpoint was unreachable.
func classify(err error, stopped bool) string {
	var op *net.OpError
	var dns *net.DNSError
	if s, ok := status.FromError(unwrapToStatus(err)); ok && s.Code() != codes.Unknown {
		switch s.Code() {
		case codes.Unavailable:
			return ReasonUnreachable
		case codes.DeadlineExceeded:
			return ReasonTimeout
		case codes.Canceled:
			if stopped {
				return ReasonDeadline
			}
		}
		return ReasonRejected
	}
	switch {
	case errors.As(err, &op), errors.As(err, &dns):
		return ReasonUnreachable
	case stopped && errors.Is(err, context.Canceled):
		return ReasonDeadline
	case errors.Is(err, context.DeadlineExceeded):
		return ReasonTimeout
	}
	return ReasonRejected
}

// unwrapToStatus finds the gRPC status in a chain that the SDK's retry
// wraps with fmt.Errorf ("max retry time elapsed: rpc error: …").
func unwrapToStatus(err error) error {
	var se interface{ GRPCStatus() *status.Status }
	if errors.As(err, &se) {
		return se.(error)
	}
	return err
}

// job is one export request of n items, sent on a lane (its exporter).
type job struct {
	n      uint64
	export func(ctx context.Context, lane int) error
}

// sender runs one signal's requests off the event path, on lanes
// requests at a time: an SDK exporter sends one request at a time and
// waits for the answer, so with one lane the exporter's encoding and the
// endpoint's work never overlap.
type sender struct {
	jobs  chan job
	acct  *account
	lanes int
	done  chan struct{}
}

func newSender(acct *account, depth, lanes int) *sender {
	return &sender{jobs: make(chan job, depth), acct: acct, lanes: lanes, done: make(chan struct{})}
}

// run sends until jobs is closed. ctx is cancelled when Stop's deadline
// passes: what is in flight fails, the rest fails at once.
func (s *sender) run(ctx context.Context) {
	var wg sync.WaitGroup
	for lane := range s.lanes {
		wg.Go(func() {
			for j := range s.jobs {
				if ctx.Err() != nil {
					s.acct.drop(ReasonDeadline, j.n)
					continue
				}
				err := j.export(ctx, lane)
				s.acct.result(j.n, err, ctx.Err() != nil)
			}
		})
	}
	wg.Wait()
	close(s.done)
}

// submit hands j to the sender, waiting while it is busy: the queue in
// front of the worker absorbs the wait. After Stop's deadline (ctx done)
// it gives up and counts j dropped.
func (s *sender) submit(ctx context.Context, j job) {
	select {
	case s.jobs <- j:
	case <-ctx.Done():
		s.acct.drop(ReasonDeadline, j.n)
	}
}

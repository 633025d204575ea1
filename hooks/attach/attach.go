// Package attach is the contract between the helper's lifecycle (package
// runner) and the hook runtimes (packages ftrace, ebpf and tcpdump): what a
// runtime is given to attach a hook (Attachment, its Targets), the attached
// hook it returns (Session), where the session sends what it traces (Sink)
// and the totals it reports (Stats). A runtime implements Runtime; its
// sessions may take targets while they run (Targets) and follow threads the
// runner finds (Threads). Nothing else is shared, and every runtime uses
// these types as they are.
//
// It is plain Go, with no Linux-only code: what travels between the plugin
// and the helper is package wire, what a hook is, package hooks.
package attach

import (
	"context"
	"io"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Runtime attaches the hooks of one kind (hooks.KindFtrace, …).
type Runtime interface {
	// Open attaches a.Hook to a.Targets. The kernel buffers events from
	// then on, so nothing is lost between Open and Stream. An error leaves
	// nothing attached and nothing behind in the kernel.
	Open(ctx context.Context, a Attachment) (Session, error)
}

// OpenFunc is a Runtime in one function.
type OpenFunc func(ctx context.Context, a Attachment) (Session, error)

// Open calls f.
func (f OpenFunc) Open(ctx context.Context, a Attachment) (Session, error) { return f(ctx, a) }

// Opened returns s as a Session, or a nil Session (not one holding a nil
// pointer) with err: a runtime's Open around its own constructor.
func Opened[S Session](s S, err error) (Session, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Attachment is what a runtime is given to attach one hook.
type Attachment struct {
	// Request is the session's request (its SessionID, Output, Framed,
	// Text, Mode …).
	Request wire.Request
	// Hook is the hook's descriptor: its Events, Params and Needs.
	Hook hooks.Descriptor
	// Args are the hook's parameters, checked against Hook and with its
	// defaults filled in (hooks.Descriptor.ResolveArgs); a runtime checks
	// them only against what it finds on the node.
	Args map[string]string
	// Targets are the resolved targets; a session names a target by its
	// index here (its slot), then by the slots of Targets.AddTarget.
	Targets []Target
	// Fields asks for wire.Event.Fields (JSON output).
	Fields bool
	// ProcRoot is the host's /proc, where the targets' ids are seen.
	ProcRoot string
	// Self, for a whole node (a target that IsNode), are the global ids of
	// the helper's own threads, which the trace leaves out where it can:
	// its reading and writing of the trace would otherwise fill it.
	Self []int
	// Warn reports something the user should know; the session goes on.
	Warn func(msg string)
	// Log passes on a line a tool printed (tcpdump's "listening on …"): it
	// reaches the plugin's stderr as it is, not as a status.
	Log func(line string)
}

// Session is an attached hook.
type Session interface {
	// Output says what Stream writes; it does not change.
	Output() Output
	// Stream hands the hook's trace data to out until ctx is done, then
	// stops the hook, drains what the kernel still holds and returns. An
	// error from out ends the stream and is returned. Stream runs once.
	Stream(ctx context.Context, out Sink) error
	// Stats returns the totals; they are final once Stream (or Close,
	// without a Stream) has returned.
	Stats() Stats
	// Close detaches the hook and frees what it holds in the kernel. It is
	// safe to call more than once, with or without Stream, and while
	// Stream runs (Stream then returns nil).
	Close() error
}

// Output is what a session writes.
type Output struct {
	// Raw: bytes already in the request's output format (Sink.Raw: pcap,
	// tcpdump's lines), not events (Sink.Emit). The runner cuts them into
	// records to count them and apply the limits.
	Raw bool
	// Clock is the clock of the events' Time (wire.ClockMonotonic,
	// wire.ClockRealtime), which the runner relates to the wall clock; ""
	// when it cannot be related.
	Clock string
}

// Sink is where a session's trace data goes. Its methods may be called
// from several goroutines.
type Sink interface {
	// Emit writes one event. ev is reused after the call: the sink copies
	// what it keeps. details is the text output's details, which it prints
	// after the event's name.
	Emit(ev *wire.Event, details string) error
	// Raw returns the writer of slot's bytes, for a session whose Output
	// is Raw; it may be called again, for a slot added while the stream
	// runs. Each Write holds whole records (pcap records, lines); a pcap
	// stream starts with its file header. Writes do not fail when a limit
	// is reached (the runner drops the rest and ends the stream's ctx); an
	// error ends the stream. In a session that is not framed every slot
	// has the same writer, and a session of several targets tells their
	// lines apart itself.
	Raw(slot int) io.Writer
}

// Stats are a session's totals.
type Stats struct {
	// Events is how many events the session handed to the sink (for a Raw
	// session, its own count: the runner counts the records it wrote).
	Events uint64
	// Lost is how many the kernel dropped, or the session read but could
	// not deliver.
	Lost uint64
}

// Targets is implemented by sessions that take and drop targets while they
// run (wire.Control.Add and Remove). Both are called from another
// goroutine than Stream, from the go byte on.
type Targets interface {
	// AddTarget traces t under slot, the next slot: the number of slots so
	// far, counting those whose AddTarget failed, which stay unused. An
	// error leaves the slot unused and the session going.
	AddTarget(slot int, t Target) error
	// RemoveTarget stops collecting slot. The runner drops whatever the
	// session still emits for it; it is called at most once per slot.
	RemoveTarget(slot int) error
}

// Threads is implemented by sessions that scope by thread id: the runner
// hands them the threads that joined a target after Open (kubectl exec),
// which are no children of the traced tasks.
type Threads interface {
	AddThreads(slot int, tids []int) error
}

package runner

import (
	"context"
	"io"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Attacher attaches one kind of hook (hooks.KindFtrace, …) to resolved
// targets. Run dispatches to the Attacher registered for the hook's kind.
type Attacher interface {
	Attach(ctx context.Context, a Attachment) (Hook, error)
}

// AttacherFunc adapts a function to Attacher.
type AttacherFunc func(ctx context.Context, a Attachment) (Hook, error)

// Attach calls f.
func (f AttacherFunc) Attach(ctx context.Context, a Attachment) (Hook, error) { return f(ctx, a) }

// Attachment is what an Attacher gets.
type Attachment struct {
	Request wire.Request
	Hook    hooks.Descriptor
	// Targets are the resolved targets; a hook's events name a target by
	// its index here.
	Targets []Resolution
	// Fields asks for wire.Event.Fields (JSON output).
	Fields bool
	// ProcRoot is the host's /proc (Config.ProcRoot).
	ProcRoot string
	// Warn reports something the user should know; the session goes on.
	Warn func(msg string)
	// Log passes on a line a tool printed (tcpdump's "listening on …"):
	// it reaches the plugin's stderr as it is, not as a status.
	Log func(line string)
}

// Hook is an attached hook. The kernel buffers its events from Attach on,
// so nothing is lost between attach and the plugin's go byte.
type Hook interface {
	// Stream hands events to emit until ctx is done, then stops the hook,
	// drains what the kernel still holds and returns. An error from emit
	// ends the stream and is returned.
	Stream(ctx context.Context, emit EmitFunc) error
	// Stats returns the totals; they are final once Stream has returned.
	Stats() Stats
	// Close detaches the hook and frees what it holds in the kernel. It is
	// safe to call more than once, with or without Stream.
	Close() error
}

// RawHook is a hook whose trace data is bytes already in the request's
// output format: pcap, or text lines. Run streams such a hook with
// StreamRaw, never Stream, through the same lifecycle, and cuts the bytes
// into records (pcap records, lines) to count events and apply the limits.
type RawHook interface {
	Hook
	// StreamRaw writes trace data to w until ctx is done, then stops the
	// hook, writes what it flushes and returns. When several goroutines
	// write, each Write must hold whole records. Writes do not fail when a
	// limit is reached (Run drops the rest and cancels ctx); an error from
	// w ends the stream and is returned.
	StreamRaw(ctx context.Context, w io.Writer) error
}

// Refresher is implemented by hooks that scope by PID: Run hands them the
// threads that joined a target after Attach (kubectl exec), found by
// Members.
type Refresher interface {
	AddPIDs(target int, tids []int) error
}

// EmitFunc receives one event. ev is reused for the next event. details is
// the kernel's own text for the event, which text output prints as is.
type EmitFunc func(ev *wire.Event, details string) error

// Stats are a session's totals.
type Stats struct {
	// Events is how many events were emitted.
	Events uint64
	// Lost is how many events the kernel dropped.
	Lost uint64
}

// A hook's targets are numbered by slot: Attachment.Targets' order, then
// one more slot for each AddTarget, whether it succeeded or not. A slot is
// the hook's own number; Run maps it to the target's index in the session
// (wire.Status.Index, the frames' tag), which also counts the targets that
// were not found on this node.

// TargetAdder is implemented by hooks that can take one more target while
// they run (wire.Control.Add): slot is the next slot, r the new target,
// resolved. AddTarget is called from another goroutine than Stream, from
// the go byte on; an error leaves the slot unused and the session going.
type TargetAdder interface {
	AddTarget(slot int, r Resolution) error
}

// TargetRemover is implemented by hooks that can stop collecting one
// target while they run (wire.Control.Remove, or its processes are gone).
// Run drops whatever the hook still emits for the slot, so a hook without
// it only wastes work; RemoveTarget is called at most once per slot.
type TargetRemover interface {
	RemoveTarget(slot int) error
}

// TargetRawHook is a RawHook that can write each target's bytes apart, for
// framed output: StreamRawTargets is StreamRaw with w(slot) the writer of
// each target's bytes (text lines without any prefix naming the target;
// pcap starting with its file header). w may be called again for slots
// added while it runs. A raw hook without it can only be framed with one
// target.
type TargetRawHook interface {
	RawHook
	StreamRawTargets(ctx context.Context, w func(slot int) io.Writer) error
}

//go:build linux

package runner

import (
	"context"
	"fmt"
	"os"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/ftrace"
	"github.com/ktrace-dev/kubectl-trace/tracer-image/pidns"
)

// DefaultAttachers returns the hook runtimes of this platform, by kind.
func DefaultAttachers() map[string]Attacher {
	return map[string]Attacher{
		hooks.KindFtrace:  FtraceAttacher{},
		hooks.KindEBPF:    ebpfAttacher(),
		hooks.KindTcpdump: TcpdumpAttacher{},
	}
}

// FtraceAttacher attaches hooks of kind ftrace: a private tracefs instance
// scoped to the targets' threads (package ftrace).
type FtraceAttacher struct {
	// Tracefs is where tracefs is mounted; empty finds it or mounts one.
	Tracefs string
	// BufferKB is the instance's buffer per CPU; 0 keeps the default.
	BufferKB int
}

// Attach opens the ftrace session.
func (f FtraceAttacher) Attach(_ context.Context, a Attachment) (Hook, error) {
	opts := ftrace.Options{
		SessionID: a.Request.SessionID,
		Hook:      a.Hook.Name,
		Args:      a.Request.Args,
		Events:    a.Hook.Events,
		Fields:    a.Fields,
		Tracefs:   f.Tracefs,
		ProcRoot:  a.ProcRoot,
		BufferKB:  f.BufferKB,
	}
	for _, r := range a.Targets {
		if r.GlobalErr != nil {
			// The ids are the helper's PID namespace's, which the kernel's
			// filter would compare with global ids: a wrong trace, not an
			// empty one.
			return nil, fmt.Errorf("%s: the helper sees the node's processes in a PID namespace of their own and could not translate their ids to the kernel's (%w): ftrace hooks filter by those ids; use an eBPF hook, which filters by mount namespace", r.Target, r.GlobalErr)
		}
		opts.Targets = append(opts.Targets, ftrace.Target{Target: r.Target, TIDs: r.TIDs})
		if r.Method == MethodNode {
			opts.AllTasks = true
		}
	}
	if opts.AllTasks {
		tids, err := selfTIDs()
		if err != nil {
			a.Warn(fmt.Sprintf("the helper's own events are in the trace: %v", err))
		}
		opts.ExcludeTIDs = tids
	}
	s, err := ftrace.Open(opts)
	if err != nil {
		return nil, err
	}
	for _, name := range s.Stale() {
		a.Warn(fmt.Sprintf("removed tracefs instance %q left by a helper that is gone", name))
	}
	for _, w := range s.Warnings() {
		a.Warn(w)
	}
	return ftraceHook{s}, nil
}

// selfTIDs returns the global ids of the helper's threads, which a
// whole-node trace leaves out: its own reading and writing of the trace
// would otherwise fill it.
func selfTIDs() ([]int, error) {
	tids, err := listTasks(os.DirFS("/proc"), os.Getpid())
	if err != nil {
		return nil, err
	}
	tr, err := pidns.ForProc("/proc")
	if err != nil {
		return nil, err
	}
	return tr.GlobalAll(tids), nil
}

type ftraceHook struct{ s *ftrace.Session }

func (h ftraceHook) Stream(ctx context.Context, emit EmitFunc) error {
	return h.s.Stream(ctx, ftrace.EmitFunc(emit))
}

func (h ftraceHook) Stats() Stats {
	st := h.s.Stats()
	return Stats{Events: st.Events, Lost: st.Lost}
}

func (h ftraceHook) Close() error { return h.s.Close() }

func (h ftraceHook) AddPIDs(target int, tids []int) error { return h.s.AddPIDs(target, tids) }

func (h ftraceHook) AddTarget(slot int, r Resolution) error {
	if r.GlobalErr != nil {
		return fmt.Errorf("translating the ids of %s to the kernel's: %w", r.Target, r.GlobalErr)
	}
	return h.s.AddTarget(slot, ftrace.Target{Target: r.Target, TIDs: r.TIDs})
}

func (h ftraceHook) RemoveTarget(slot int) error { return h.s.RemoveTarget(slot) }

//go:build linux

package runner

import (
	"context"
	"io"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/tcpdump"
	"github.com/ktrace-dev/kubectl-trace/tracer-image/pidns"
)

// TcpdumpAttacher attaches hooks of kind tcpdump: tcpdump running in each
// target's network namespace (package tcpdump).
type TcpdumpAttacher struct {
	// Tcpdump is the program; empty finds tcpdump in $PATH.
	Tcpdump string
}

// Attach starts tcpdump and returns once it captures. Text and pcap output
// is raw (RawHook: tcpdump's bytes as they are); json output is events.
func (t TcpdumpAttacher) Attach(ctx context.Context, a Attachment) (Hook, error) {
	opts := tcpdump.Options{
		Output:   a.Request.Output,
		Args:     a.Request.Args,
		Hook:     a.Hook,
		ProcRoot: a.ProcRoot,
		Tcpdump:  t.Tcpdump,
		Log:      a.Log,
		Warn:     a.Warn,
		// A framed session keeps each target's output apart.
		PerTarget: a.Request.Framed,
	}
	for _, r := range a.Targets {
		opts.Targets = append(opts.Targets, tcpdumpTarget(a.ProcRoot, r))
	}
	s, err := tcpdump.Open(ctx, opts)
	if err != nil {
		return nil, err
	}
	h := tcpdumpHook{s: s, procRoot: a.ProcRoot}
	if a.Request.Output == hooks.OutputJSON {
		return h, nil
	}
	return tcpdumpRawHook{h}, nil
}

// tcpdumpTarget is where r's network namespace is read: its processes', or
// for a whole node the node's own namespace, that of its init (or of
// kthreadd, PID 2, where init's is not readable: kernel threads are
// always in the initial namespaces). PID 2 is kthreadd only in the initial
// PID namespace; on a node in one of its own it can be any process.
func tcpdumpTarget(procRoot string, r Resolution) tcpdump.Target {
	if r.Method == MethodNode {
		pids := []int{1}
		if initial, err := pidns.IsInitial(procRoot); err == nil && initial {
			pids = append(pids, 2)
		}
		return tcpdump.Target{Target: r.Target, PIDs: pids}
	}
	return tcpdump.Target{Target: r.Target, PIDs: r.PIDs}
}

type tcpdumpHook struct {
	s        *tcpdump.Session
	procRoot string
}

func (h tcpdumpHook) Stream(ctx context.Context, emit EmitFunc) error {
	return h.s.Stream(ctx, tcpdump.EmitFunc(emit))
}

func (h tcpdumpHook) Stats() Stats {
	st := h.s.Stats()
	return Stats{Events: st.Events, Lost: st.Lost}
}

func (h tcpdumpHook) Close() error { return h.s.Close() }

func (h tcpdumpHook) AddTarget(slot int, r Resolution) error {
	return h.s.AddTarget(slot, tcpdumpTarget(h.procRoot, r))
}

func (h tcpdumpHook) RemoveTarget(slot int) error { return h.s.RemoveTarget(slot) }

type tcpdumpRawHook struct{ tcpdumpHook }

func (h tcpdumpRawHook) StreamRaw(ctx context.Context, w io.Writer) error {
	return h.s.StreamRaw(ctx, w)
}

func (h tcpdumpRawHook) StreamRawTargets(ctx context.Context, w func(slot int) io.Writer) error {
	return h.s.StreamRawTargets(ctx, w)
}

//go:build linux

package runner

import (
	"os"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf"
	"github.com/ktrace-dev/kubectl-trace/hooks/ftrace"
	"github.com/ktrace-dev/kubectl-trace/hooks/tcpdump"
	"github.com/ktrace-dev/kubectl-trace/tracer-image/pidns"
	"golang.org/x/sys/unix"
)

// DefaultRuntimes returns the hook runtimes of this platform, by kind.
func DefaultRuntimes() map[string]attach.Runtime {
	return map[string]attach.Runtime{
		hooks.KindFtrace:  ftrace.Runtime{},
		hooks.KindEBPF:    ebpf.Runtime{},
		hooks.KindTcpdump: tcpdump.Runtime{},
	}
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

// monotonicOffset returns CLOCK_REALTIME minus CLOCK_MONOTONIC, in
// nanoseconds: what to add to a monotonic time for the wall-clock time.
// Each reading of the wall clock is taken between two of the monotonic
// one, and the pair read closest together of a few tries wins, so the
// offset is good to about the cost of one clock_gettime (a vDSO call of
// well under a microsecond), preemption aside.
func monotonicOffset() (int64, error) {
	var best, off int64 = -1, 0
	for range 5 {
		var m0, r, m1 unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &m0); err != nil {
			return 0, err
		}
		if err := unix.ClockGettime(unix.CLOCK_REALTIME, &r); err != nil {
			return 0, err
		}
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &m1); err != nil {
			return 0, err
		}
		if gap := m1.Nano() - m0.Nano(); best < 0 || gap < best {
			best, off = gap, r.Nano()-(m0.Nano()+gap/2)
		}
	}
	return off, nil
}

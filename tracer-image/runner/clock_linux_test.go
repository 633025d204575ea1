package runner

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// The started and stats lines name the hook's clock and, for the
// monotonic clock, its offset to the wall clock, as the test measures it
// too; the realtime clock has none; a clock that cannot be related has no
// line of it (TestRunStatuses).
func TestRunClockOffset(t *testing.T) {
	procRoot, cgroupRoot, _ := fakeNode(t)
	for _, clock := range []string{wire.ClockMonotonic, wire.ClockRealtime} {
		t.Run(clock, func(t *testing.T) {
			h := &fakeHook{before: []wire.Event{ev1}, clock: clock}
			var stdout, stderr syncBuffer
			err := Run(context.Background(), request(hooks.OutputJSON, "containerd://"+id), Config{ProcRoot: procRoot, CgroupRoot: cgroupRoot,
				Stdin: strings.NewReader("g"), Stdout: &stdout, Stderr: &stderr, RefreshInterval: -1,
				Runtimes: map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(context.Context, attach.Attachment) (attach.Session, error) { return h, nil })}})
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			var mono, real unix.Timespec
			unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
			unix.ClockGettime(unix.CLOCK_REALTIME, &real)
			offset := real.Nano() - mono.Nano()
			n := 0
			for _, s := range parseStatuses(t, stderr.String()) {
				if s.Kind != wire.StatusStarted && s.Kind != wire.StatusStats {
					continue
				}
				n++
				if s.Clock != clock {
					t.Errorf("%s status names clock %q, want %q", s.Kind, s.Clock, clock)
				}
				want := int64(0)
				if clock == wire.ClockMonotonic {
					want = offset
				}
				if d := time.Duration(s.ClockOffset - want).Abs(); d > time.Millisecond {
					t.Errorf("%s status: offset %d, the test measures %d: %v apart", s.Kind, s.ClockOffset, want, d)
				}
			}
			if n != 2 {
				t.Errorf("%d started and stats lines, want 2:\n%s", n, stderr.String())
			}
		})
	}
}

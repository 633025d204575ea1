//go:build linux && privileged

package runner

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/test/testenv"
)

// An event's Time plus the offset the started status reports is the wall
// time of the event, to within a millisecond: the target reads the wall
// clock just before and after the call the event is of, and the event's
// wall time falls between the two, give or take 1 ms. ftrace's instance
// runs on trace_clock "mono", the eBPF programs on bpf_ktime_get_ns.
func TestClockOffset(t *testing.T) {
	const rounds = 20
	path := filepath.Join(t.TempDir(), "ktstamp-file")
	tests := []struct {
		hook string
		args map[string]string
		work testenv.Work
		// is says whether an event is one of the target's calls.
		is func(ev wire.Event) bool
	}{
		{hook: "syscalls", args: map[string]string{"syscalls": "getppid"}, work: testenv.Work{Kind: "stamped"},
			is: func(ev wire.Event) bool { return ev.Comm == "ktstamp" && ev.Fields["name"] == "getppid" }},
		{hook: "open", work: testenv.Work{Kind: "stamped", Path: path},
			is: func(ev wire.Event) bool { return ev.Fields["path"] == path }},
	}
	for _, tt := range tests {
		t.Run(tt.hook, func(t *testing.T) {
			c := testenv.NewContainer(t)
			p := testenv.Start(t, "ktstamp", tt.work, syscall.CLONE_NEWNS|syscall.CLONE_NEWNET)
			c.Add(t, p.PID())
			d, _ := hooks.Lookup(tt.hook)
			args, err := d.ResolveArgs(tt.args)
			if err != nil {
				t.Fatal(err)
			}
			req := wire.Request{Version: wire.ProtocolVersion, SessionID: fmt.Sprintf("clock-%d", time.Now().UnixNano()),
				Hook: tt.hook, Args: args, Output: hooks.OutputJSON, Targets: []wire.Target{c.Target()}}
			var stamps [][2]int64
			s := runSession(t, req, Config{RefreshInterval: -1}, func() {
				for range rounds {
					p.Go(t)
					f := strings.Fields(p.Line(t))
					before, _ := strconv.ParseInt(f[1], 10, 64)
					after, _ := strconv.ParseInt(f[2], 10, 64)
					stamps = append(stamps, [2]int64{before, after})
				}
			})
			if s.err != nil {
				t.Fatalf("Run: %v\n%s", s.err, s.stderr.String())
			}
			statuses := parseStatuses(t, s.stderr.String())
			i := slices.IndexFunc(statuses, func(st wire.Status) bool { return st.Kind == wire.StatusStarted })
			if i < 0 || statuses[i].Clock != wire.ClockMonotonic || statuses[i].ClockOffset == 0 {
				t.Fatalf("no monotonic clock offset on the started line: %+v", statuses)
			}
			offset := statuses[i].ClockOffset
			var walls []int64
			for _, ev := range parseEvents(t, s.stdout.String(), req.Targets[0]) {
				if tt.is(ev) {
					walls = append(walls, int64(ev.Time*1e9)+offset)
				}
			}
			if len(walls) != rounds {
				t.Fatalf("%d events of the target's calls, want %d", len(walls), rounds)
			}
			slices.Sort(walls)
			var worst time.Duration
			for k, w := range walls {
				before, after := stamps[k][0], stamps[k][1]
				off := time.Duration(max(before-w, w-after, 0))
				worst = max(worst, off)
				if off > time.Millisecond {
					t.Errorf("call %d: the event's wall time %d is %v outside [%d, %d], which the target read around it", k, w, off, before, after)
				}
			}
			t.Logf("%s: %d events, each within %v of the wall times around its call (offset %d ns)", tt.hook, len(walls), worst, offset)
			// Nothing is left behind, for the next test to count.
			if left := testenv.WaitProgramsGone(t, "kt_", 5*time.Second); len(left) != 0 {
				t.Errorf("programs left: %v", left)
			}
			if left := testenv.Instances(t, "kubectl-trace-"+req.SessionID+"-"); len(left) != 0 {
				t.Errorf("instances left: %v", left)
			}
		})
	}
}

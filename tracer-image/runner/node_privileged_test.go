//go:build linux && privileged

package runner

import (
	"bufio"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf"
	"github.com/ktrace-dev/kubectl-trace/hooks/ftrace"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/test/testenv"
)

// nodeWorkloads are two "containers" (own cgroups, mount and network
// namespaces) and a plain host process, each exec'ing bin in a loop with
// its own arguments, started before the session (so none is a child of
// the helper, which a whole-node trace leaves out).
func nodeWorkloads(t *testing.T, bin string) (procs []*testenv.Proc, names []string) {
	t.Helper()
	for i := 0; i < 2; i++ {
		c := testenv.NewContainer(t)
		name := "ktnodepod" + strconv.Itoa(i)
		p := testenv.Start(t, name, testenv.Work{Kind: "exec", Path: bin, Args: []string{name}, Every: 20 * time.Millisecond},
			syscall.CLONE_NEWNS|syscall.CLONE_NEWNET)
		c.Add(t, p.PID())
		procs, names = append(procs, p), append(names, name)
	}
	host := testenv.Start(t, "ktnodehost", testenv.Work{Kind: "exec", Path: bin, Args: []string{"ktnodehost"}, Every: 20 * time.Millisecond}, 0)
	return append(procs, host), append(names, "ktnodehost")
}

// nodeRun is ebpfRun with the runtimes given.
func nodeRun(t *testing.T, req wire.Request, runtimes map[string]attach.Runtime, during func()) (string, []wire.Status, error) {
	t.Helper()
	s := runSession(t, req, Config{Runtimes: runtimes}, during)
	return s.stdout.String(), ebpfStatuses(t, s.stderr.String()), s.err
}

func nodeRequest(hook string) wire.Request {
	r := ebpfRequest(hook, hooks.OutputJSON, nil, wire.Target{Kind: wire.TargetNode, Node: "n1"})
	return r
}

// nodeEvents decodes the JSON events and checks that each names the node
// and no pod.
func nodeEvents(t *testing.T, stdout string) []wire.Event {
	t.Helper()
	var evs []wire.Event
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev wire.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if ev.Node != "n1" || ev.Namespace != "" || ev.Pod != "" || ev.Container != "" {
			t.Fatalf("event does not name the whole node: %s", sc.Text())
		}
		evs = append(evs, ev)
	}
	return evs
}

// A whole-node sched session (ftrace, no PID filter) sees the tasks of two
// containers and of a host process, none of which it was told about.
func TestRunNodeFtraceSched(t *testing.T) {
	bin := testenv.CopyBinary(t, "/bin/true", "ktnode-child")
	procs, names := nodeWorkloads(t, bin)
	instancesBefore := tracefsInstances(t)
	stdout, statuses, err := nodeRun(t, nodeRequest("sched"), map[string]attach.Runtime{hooks.KindFtrace: ftrace.Runtime{}}, func() {
		for _, p := range procs {
			p.Go(t)
		}
		time.Sleep(time.Second)
	})
	if err != nil {
		t.Fatalf("Run: %v\nstatuses: %+v", err, statuses)
	}
	var kinds []string
	for _, s := range statuses {
		kinds = append(kinds, s.Kind)
	}
	if want := "ready,resolved,started,stats"; strings.Join(kinds, ",") != want {
		t.Errorf("status kinds %v, want %s: %+v", kinds, want, statuses)
	}
	evs := nodeEvents(t, stdout)
	// Each workload forks its child: sched_process_fork in its own name.
	forks := map[string]int{}
	helper := map[int]bool{}
	if entries, err := os.ReadDir("/proc/self/task"); err == nil {
		for _, e := range entries {
			tid, _ := strconv.Atoi(e.Name())
			helper[tid] = true
		}
	}
	self := map[string]int{}
	for _, ev := range evs {
		if ev.Event == "sched_process_fork" {
			forks[ev.Comm]++
		}
		if helper[ev.PID] {
			// The helper's own events are left out, in the kernel
			// (set_event_notrace_pid) and for the switches and wakeups
			// it still records, by the tracker.
			self[ev.Event]++
		}
	}
	t.Logf("%d events, forks by comm %v", len(evs), forks)
	for _, n := range names {
		if forks[n] < 10 {
			t.Errorf("%s forked %d times in the trace, want >= 10 (every task of the node): %v", n, forks[n], forks)
		}
	}
	if len(self) > 0 {
		t.Errorf("events of the helper's own threads: %v", self)
	}
	if after := tracefsInstances(t); after != instancesBefore {
		t.Errorf("tracefs instances: %d before, %d after", instancesBefore, after)
	}
}

// A whole-node exec session (eBPF, match_all) sees the execs of two
// containers and of a host process.
func TestRunNodeEBPFExec(t *testing.T) {
	bin := testenv.CopyBinary(t, "/bin/true", "ktnode-child")
	procs, names := nodeWorkloads(t, bin)
	before := testenv.AllPrograms(t)
	stdout, statuses, err := nodeRun(t, nodeRequest("exec"), map[string]attach.Runtime{hooks.KindEBPF: ebpf.Runtime{}}, func() {
		for _, p := range procs {
			p.Go(t)
		}
		time.Sleep(1500 * time.Millisecond)
	})
	if err != nil {
		t.Fatalf("Run: %v\nstatuses: %+v", err, statuses)
	}
	execs := map[string]int{}
	for _, ev := range nodeEvents(t, stdout) {
		if ev.Fields["filename"] == bin {
			execs[strings.TrimPrefix(ev.Fields["argv"], bin+" ")]++
		}
	}
	t.Logf("execs by argv %v", execs)
	for _, n := range names {
		if execs[n] < 20 {
			t.Errorf("%d execs of %s in the trace, want >= 20 (every task of the node): %v", execs[n], n, execs)
		}
	}
	if left := testenv.WaitProgramsGone(t, "kt_", 5*time.Second); len(left) != 0 {
		t.Errorf("programs left: %v", left)
	}
	if after := testenv.AllPrograms(t); after != before {
		t.Errorf("BPF programs on the machine: %d before, %d after", before, after)
	}
}

// tracefsInstances counts the tracefs instances, through a tracefs mount
// of the test's own.
func tracefsInstances(t *testing.T) int {
	t.Helper()
	return len(testenv.Instances(t, ""))
}

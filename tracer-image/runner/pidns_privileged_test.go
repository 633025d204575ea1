//go:build linux && privileged

// Privileged tests of the pid namespace translation: a target seen through
// the proc mount of a child pid namespace, as an ephemeral container or a
// helper on a node with a pid namespace of its own sees it. Run as root on
// a real kernel with
//
//	go test -tags privileged -run PIDNamespace ./tracer-image/runner/
package runner

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/test/testenv"
	"github.com/ktrace-dev/kubectl-trace/tracer-image/pidns"
)

// checkGlobal asserts that every tid is a global id of a thread of the
// child namespace (NSpid "<global> <local>").
func checkGlobal(t *testing.T, what string, tids []int) {
	t.Helper()
	if len(tids) == 0 {
		t.Fatalf("%s: no thread", what)
	}
	for _, tid := range tids {
		nspid, err := testenv.NSpid(tid)
		if err != nil {
			t.Fatalf("%s: tid %d: %v", what, tid, err)
		}
		if len(nspid) != 2 || nspid[0] != tid {
			t.Errorf("%s: tid %d is not a global id of a child namespace's thread: NSpid %v", what, tid, nspid)
		}
	}
}

func TestResolvePIDNamespace(t *testing.T) {
	c := testenv.NewContainer(t)
	ns := testenv.NewPIDNamespace(t, 2)
	tr, err := pidns.ForProc(ns.ProcRoot)
	if err != nil {
		t.Fatal(err)
	}
	local := ns.Workers[0]
	global, ok := tr.Global(local)
	if !ok {
		t.Fatalf("worker %d: no global id", local)
	}
	if nspid, _ := testenv.NSpid(global); len(nspid) != 2 || nspid[1] != local {
		t.Fatalf("worker %d -> %d, NSpid %v", local, global, nspid)
	}
	c.Add(t, global)
	tg := wire.Target{Node: "n1", Namespace: "test", Pod: "kt", PodUID: "u1", Container: "kttarget", ContainerID: "containerd://" + c.ID}

	r, err := Resolve(ns.ProcRoot, tg)
	if err != nil {
		t.Fatal(err)
	}
	if r.GlobalErr != nil {
		t.Fatal(r.GlobalErr)
	}
	if !slices.Equal(r.PIDs, []int{local}) {
		t.Errorf("PIDs %v, want the local pid [%d]", r.PIDs, local)
	}
	checkGlobal(t, "Resolve", r.TIDs)
	if !slices.Contains(r.TIDs, global) {
		t.Errorf("TIDs %v lack the worker's global id %d", r.TIDs, global)
	}
	// The test reads cgroup.procs in the initial namespace: Members scans
	// the proc mount again instead, and finds the same.
	m, err := Members(ns.ProcRoot, "/sys/fs/cgroup", r)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.PIDs, r.PIDs) || !slices.Equal(m.TIDs, r.TIDs) {
		t.Errorf("Members %+v, want PIDs %v TIDs %v", m, r.PIDs, r.TIDs)
	}
	// The host's /proc needs no translation.
	rh, err := Resolve("/proc", tg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rh.PIDs, []int{global}) || !slices.Equal(rh.TIDs, r.TIDs) {
		t.Errorf("host view: PIDs %v TIDs %v, want [%d] %v", rh.PIDs, rh.TIDs, global, r.TIDs)
	}
}

// An ephemeral container whose cgroup namespace hides the container id:
// the target is every process of the shared pid namespace in another
// mount namespace than the helper's.
func TestResolveEphemeralMountNS(t *testing.T) {
	ns := testenv.NewPIDNamespace(t, 2)
	tg := wire.Target{Node: "n1", Namespace: "test", Pod: "kt", PodUID: "u1", Container: "kttarget",
		ContainerID: "containerd://0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	if _, err := ResolveMode(ns.ProcRoot, tg, wire.ModeNode); err == nil {
		t.Fatal("node mode found a container that does not exist")
	}
	r, err := ResolveMode(ns.ProcRoot, tg, wire.ModeEphemeral)
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != attach.MethodMountNS {
		t.Errorf("method %q, want %q", r.Method, attach.MethodMountNS)
	}
	want := append([]int{1}, ns.Workers...)
	slices.Sort(want)
	if !slices.Equal(r.PIDs, want) {
		t.Errorf("PIDs %v, want %v (init and workers)", r.PIDs, want)
	}
	checkGlobal(t, "ResolveMode", r.TIDs)
	m, err := Members(ns.ProcRoot, "/sys/fs/cgroup", r)
	if err != nil {
		t.Fatal(err)
	}
	if m.Source != attach.MethodMountNS || !slices.Equal(m.PIDs, r.PIDs) {
		t.Errorf("Members %+v, want PIDs %v from %s", m, r.PIDs, attach.MethodMountNS)
	}
	checkGlobal(t, "Members", m.TIDs)
	// Nothing of the helper's own mount namespace is taken.
	self, _ := os.Readlink("/proc/self/ns/mnt")
	for _, pid := range r.PIDs {
		if mnt, _ := os.Readlink(ns.ProcRoot + "/" + itoa(pid) + "/ns/mnt"); mnt == self {
			t.Errorf("pid %d shares the helper's mount namespace", pid)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// The sched hook on a target seen through a child namespace's proc: its
// set_event_pid gets global ids, so events come.
func TestRunPIDNamespaceSched(t *testing.T) {
	c := testenv.NewContainer(t)
	ns := testenv.NewPIDNamespace(t, 1)
	tr, err := pidns.ForProc(ns.ProcRoot)
	if err != nil {
		t.Fatal(err)
	}
	global, ok := tr.Global(ns.Workers[0])
	if !ok {
		t.Fatal("worker: no global id")
	}
	c.Add(t, global)
	r, err := Resolve(ns.ProcRoot, wire.Target{ContainerID: "containerd://" + c.ID})
	if err != nil {
		t.Fatal(err)
	}
	req := privRequest(hooks.OutputJSON, "containerd://"+c.ID)
	s := runSession(t, req, Config{ProcRoot: ns.ProcRoot, RefreshInterval: 200 * time.Millisecond}, func() {
		time.Sleep(1500 * time.Millisecond)
	})
	if s.err != nil {
		t.Fatalf("Run: %v; stderr: %s", s.err, s.stderr.String())
	}
	lines := parseJSON(t, s.stdout.String(), req.Targets[0])
	if len(lines) == 0 {
		t.Fatalf("no event; stderr: %s", s.stderr.String())
	}
	// The events' pids are global ids of the worker's threads: those
	// resolved, and those the Go runtime started since (event-fork).
	byEvent := map[string]int{}
	known := map[int]bool{}
	for _, tid := range r.TIDs {
		known[tid] = true
	}
	for _, l := range lines {
		byEvent[l.event]++
		if known[l.pid] {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(l.pid) + "/status")
		if err == nil && strings.Contains(string(b), "\nTgid:\t"+strconv.Itoa(global)+"\n") {
			known[l.pid] = true
			continue
		}
		t.Errorf("event of pid %d, not a global tid of the target (worker %d, resolved %v): %+v", l.pid, global, r.TIDs, l)
		break
	}
	t.Logf("%d events: %v", len(lines), byEvent)
}

//go:build linux && privileged

// Privileged tests: run as root on a real kernel with
//
//	go test -tags privileged ./tracer-image/pidns/
package pidns

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/ktrace-dev/kubectl-trace/test/testenv"
)

func init() { testenv.Main() }

// localTIDs lists every thread id that procRoot shows.
func localTIDs(t *testing.T, procRoot string) map[int][]int {
	t.Helper()
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		tasks, err := os.ReadDir(filepath.Join(procRoot, e.Name(), "task"))
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range tasks {
			tid, _ := strconv.Atoi(tk.Name())
			out[pid] = append(out[pid], tid)
		}
	}
	return out
}

func TestInitialNamespaceIsIdentity(t *testing.T) {
	initial, err := IsInitial("/proc")
	if err != nil || !initial {
		t.Fatalf("IsInitial(/proc) = %v, %v; the privileged tests run in the initial pid namespace", initial, err)
	}
	tr, err := ForProc("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Identity {
		t.Fatal("ForProc(/proc): not the identity")
	}
	// The iterator agrees: in the initial namespace every id is global.
	self, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Take(self)
	if err != nil {
		t.Fatal(err)
	}
	if s.Level != 0 {
		t.Errorf("level of the initial namespace = %d, want 0", s.Level)
	}
	pid := os.Getpid()
	found := false
	for _, tk := range s.Tasks {
		if tk.NR != tk.TID {
			t.Fatalf("task %+v: id in the initial namespace differs from its global id", tk)
		}
		found = found || tk.TID == pid
	}
	if !found {
		t.Errorf("the iterator did not see this process (%d)", pid)
	}
}

func TestChildNamespaceTranslation(t *testing.T) {
	ns := testenv.NewPIDNamespace(t, 2)
	initial, err := IsInitial(ns.ProcRoot)
	if err != nil || initial {
		t.Fatalf("IsInitial(%s) = %v, %v, want false", ns.ProcRoot, initial, err)
	}
	// Threads first, snapshot second: the workers are Go programs that may
	// still start threads, and a thread born after the snapshot has no id
	// in it (the runner refreshes for that).
	local := localTIDs(t, ns.ProcRoot)
	tr, err := ForProc(ns.ProcRoot)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Identity {
		t.Fatal("child namespace translated as the identity")
	}
	if tr.snap.Level != 1 {
		t.Errorf("level = %d, want 1", tr.snap.Level)
	}
	if len(local) != 1+len(ns.Workers) {
		t.Fatalf("child namespace shows processes %v, want init and %d workers", slices.Collect(func(y func(int) bool) {
			for p := range local {
				if !y(p) {
					return
				}
			}
		}), len(ns.Workers))
	}
	threads := 0
	for pid, tids := range local {
		gpid, ok := tr.Global(pid)
		if !ok {
			t.Fatalf("local pid %d: no global id", pid)
		}
		if pid == 1 && gpid != ns.Init {
			t.Errorf("local pid 1 -> %d, want the init's global pid %d", gpid, ns.Init)
		}
		for _, tid := range tids {
			threads++
			g, ok := tr.Global(tid)
			if !ok {
				t.Fatalf("local tid %d: no global id", tid)
			}
			nspid, err := testenv.NSpid(g)
			if err != nil {
				t.Fatal(err)
			}
			// NSpid: "<global> <local>".
			if len(nspid) != 2 || nspid[0] != g || nspid[1] != tid {
				t.Errorf("local tid %d -> global %d, but /proc/%d/status has NSpid %v", tid, g, g, nspid)
			}
			if l, ok := tr.Local(g); !ok || l != tid {
				t.Errorf("Local(%d) = %d, %v, want %d", g, l, ok, tid)
			}
		}
		all := tr.GlobalAll(tids)
		if len(all) != len(tids) {
			t.Errorf("GlobalAll(%v) = %v", tids, all)
		}
	}
	if threads <= len(local) {
		t.Errorf("only %d threads in %d processes: the workers are Go processes and should have several", threads, len(local))
	}
	t.Logf("%d processes, %d threads translated; init is global pid %d", len(local), threads, ns.Init)

	// A task outside the namespace has no id there.
	if l, ok := tr.Local(os.Getpid()); ok {
		t.Errorf("Local(test process) = %d, want not visible", l)
	}
}

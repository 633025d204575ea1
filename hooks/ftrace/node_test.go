package ftrace

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// With allTasks (a whole node) every task is target 0's: events between
// two tasks the set never held are kept, the idle task included, and a
// task leaves the set at its final switch-out as a target's does.
func TestTrackerAllTasks(t *testing.T) {
	lines := []string{
		`            link-19429   [001] d..2.   429.978929: sched_switch: prev_comm=link prev_pid=19429 prev_prio=120 prev_state=R ==> next_comm=sleep next_pid=19444 next_prio=120`,
		`           sleep-19444   [001] d..2.   429.979000: sched_switch: prev_comm=sleep prev_pid=19444 prev_prio=120 prev_state=X ==> next_comm=swapper/1 next_pid=0 next_prio=120`,
		`          <idle>-0       [001] d..2.   429.979100: sched_wakeup: comm=bash pid=700 prio=120 target_cpu=001`,
		`            bash-700     [001] d..2.   429.979200: sched_process_fork: comm=bash pid=700 child_comm=bash child_pid=701`,
	}
	tr := newTracker()
	tr.allTasks = true
	var got []result
	for _, s := range lines {
		l, err := ParseLine(s)
		if err != nil {
			t.Fatalf("ParseLine(%q): %v", s, err)
		}
		r, ok := tr.attribute(&l)
		if !ok {
			got = append(got, dropped)
			continue
		}
		got = append(got, result{PID: r.pid, Comm: r.comm, Target: r.target})
	}
	want := []result{{PID: 19429, Comm: "link"}, {PID: 19444, Comm: "sleep"}, {PID: 700, Comm: "bash"}, {PID: 700, Comm: "bash"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("attribute (-want +got):\n%s", diff)
	}
	if _, ok := tr.tasks[19444]; ok {
		t.Error("a task that exited is still in the set after its final switch-out")
	}
	if tr.foreignEvents() != 0 {
		t.Errorf("foreign events %d, want none on a whole node", tr.foreignEvents())
	}
	if _, ok := tr.tasks[701]; !ok {
		t.Error("the forked child is not in the set")
	}
	// A removed node (its session ended) takes no task any more.
	tr.remove(0)
	if tr.has(42) {
		t.Error("a removed whole node still takes tasks")
	}
}

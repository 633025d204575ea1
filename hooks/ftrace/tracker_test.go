package ftrace

import (
	"bufio"
	"os"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// result is what attribute decided for one line: the traced task, or
// nothing (pid -1) when the line must be dropped.
type result struct {
	PID    int
	Comm   string
	Target int
}

var dropped = result{PID: -1}

func TestTrackerAttribute(t *testing.T) {
	tests := []struct {
		name    string
		initial map[int][]int // target -> tids
		lines   []string
		want    []result
		// wantTasks is the set after the lines.
		wantTasks []int
	}{
		{
			name:    "switch into the target from an outsider is the target's",
			initial: map[int][]int{0: {19442}},
			lines: []string{
				`            link-19430   [001] d..2.   429.674962: sched_switch: prev_comm=link prev_pid=19430 prev_prio=120 prev_state=R ==> next_comm=bash next_pid=19442 next_prio=120`,
			},
			want:      []result{{PID: 19442, Comm: "bash"}},
			wantTasks: []int{19442},
		},
		{
			name:    "switch out of the target is the target's",
			initial: map[int][]int{0: {19442}},
			lines: []string{
				`              sh-19442   [001] d..2.   429.676841: sched_switch: prev_comm=sh prev_pid=19442 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120`,
			},
			want:      []result{{PID: 19442, Comm: "sh"}},
			wantTasks: []int{19442},
		},
		{
			name:    "switch between two outsiders is dropped",
			initial: map[int][]int{0: {19442}},
			lines: []string{
				`            link-19429   [001] d..2.   429.978929: sched_switch: prev_comm=link prev_pid=19429 prev_prio=120 prev_state=R ==> next_comm=sleep next_pid=19444 next_prio=120`,
			},
			want:      []result{dropped},
			wantTasks: []int{19442},
		},
		{
			name:    "wakeup of the target by an outsider is the wakee's",
			initial: map[int][]int{0: {19444}},
			lines: []string{
				`            link-19429   [001] d.h3.   429.977564: sched_wakeup: comm=sleep pid=19444 prio=120 target_cpu=001`,
			},
			want:      []result{{PID: 19444, Comm: "sleep"}},
			wantTasks: []int{19444},
		},
		{
			name:    "wakeup of an outsider by the target is the waker's, with its known comm",
			initial: map[int][]int{0: {19444}},
			lines: []string{
				`            link-19429   [001] d..2.   429.978929: sched_switch: prev_comm=link prev_pid=19429 prev_prio=120 prev_state=R ==> next_comm=sleep next_pid=19444 next_prio=120`,
				`           <...>-19444   [001] d.h3.   429.977564: sched_wakeup: comm=link pid=19427 prio=120 target_cpu=000`,
			},
			want:      []result{{PID: 19444, Comm: "sleep"}, {PID: 19444, Comm: "sleep"}},
			wantTasks: []int{19444},
		},
		{
			name:    "migration of an outsider while the target runs is dropped",
			initial: map[int][]int{0: {19444}},
			lines: []string{
				`           sleep-19444   [001] dN.2.   429.676620: sched_migrate_task: comm=link pid=19427 prio=120 orig_cpu=0 dest_cpu=1`,
			},
			want:      []result{dropped},
			wantTasks: []int{19444},
		},
		{
			name:    "migration of the target is the target's",
			initial: map[int][]int{0: {19427}},
			lines: []string{
				`           sleep-19444   [001] dN.2.   429.676620: sched_migrate_task: comm=link pid=19427 prio=120 orig_cpu=0 dest_cpu=1`,
			},
			want:      []result{{PID: 19427, Comm: "link"}},
			wantTasks: []int{19427},
		},
		{
			name:    "fork is the parent's and the child joins the parent's target",
			initial: map[int][]int{0: {1}, 1: {19442}},
			lines: []string{
				`              sh-19442   [001] .....   429.675845: sched_process_fork: comm=sh pid=19442 child_comm=sh child_pid=19444`,
				`              sh-19442   [001] d..2.   429.676544: sched_switch: prev_comm=sh prev_pid=19442 prev_prio=120 prev_state=D ==> next_comm=sh next_pid=19444 next_prio=120`,
				`           <...>-19444   [001] d..2.   429.676624: sched_switch: prev_comm=sh prev_pid=19444 prev_prio=120 prev_state=D ==> next_comm=link next_pid=19427 next_prio=120`,
			},
			want: []result{
				{PID: 19442, Comm: "sh", Target: 1},
				{PID: 19442, Comm: "sh", Target: 1},
				{PID: 19444, Comm: "sh", Target: 1},
			},
			wantTasks: []int{1, 19442, 19444},
		},
		{
			name:    "fork by an outsider adds nothing",
			initial: map[int][]int{0: {19442}},
			lines: []string{
				`              sh-500   [001] .....   429.675845: sched_process_fork: comm=sh pid=500 child_comm=sh child_pid=501`,
			},
			want:      []result{dropped},
			wantTasks: []int{19442},
		},
		{
			name:    "exec takes the file's base name as comm",
			initial: map[int][]int{0: {19445}},
			lines: []string{
				`              sh-19445   [001] .....   429.979938: sched_process_exec: filename=/usr/local/bin/a-very-long-program-name pid=19445 old_pid=19445`,
			},
			want:      []result{{PID: 19445, Comm: "a-very-long-pro"}},
			wantTasks: []int{19445},
		},
		{
			name:    "exec by a non-leader thread takes the leader's pid",
			initial: map[int][]int{0: {100, 101}},
			lines: []string{
				`           <...>-101   [000] .....   9.000000: sched_process_exec: filename=/bin/true pid=100 old_pid=101`,
			},
			want:      []result{{PID: 100, Comm: "true"}},
			wantTasks: []int{100},
		},
		{
			name:    "exit is the task's, which stays until its final switch-out",
			initial: map[int][]int{0: {19442, 19446}},
			lines: []string{
				`            true-19446   [001] .....   429.980927: sched_process_exit: comm=true pid=19446 prio=120 group_dead=true`,
				`            true-19446   [001] dN.5.   429.980981: sched_wakeup: comm=sh pid=19442 prio=120 target_cpu=001`,
				`            true-19446   [001] d..2.   429.981023: sched_switch: prev_comm=true prev_pid=19446 prev_prio=120 prev_state=Z ==> next_comm=link next_pid=19427 next_prio=120`,
				`            link-19427   [001] d..2.   429.981064: sched_switch: prev_comm=link prev_pid=19427 prev_prio=120 prev_state=S ==> next_comm=true next_pid=19446 next_prio=120`,
			},
			want: []result{
				{PID: 19446, Comm: "true"},
				{PID: 19442, Comm: "sh"},
				{PID: 19446, Comm: "true"},
				dropped,
			},
			wantTasks: []int{19442},
		},
		{
			name:    "unknown event is the current task's",
			initial: map[int][]int{0: {7}},
			lines: []string{
				`           <...>-7   [000] .....   9.000000: sys_enter: NR 39 (0, 0, 0, 0, 0, 0)`,
				`           other-8   [000] .....   9.000001: sys_enter: NR 39 (0, 0, 0, 0, 0, 0)`,
			},
			want:      []result{{PID: 7, Comm: ""}, dropped},
			wantTasks: []int{7},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker()
			for target, tids := range tt.initial {
				tr.add(target, tids, nil)
			}
			var got []result
			for _, s := range tt.lines {
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
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("attribute mismatch (-want +got):\n%s", diff)
			}
			var tasks []int
			for pid := range tr.tasks {
				tasks = append(tasks, pid)
			}
			sort.Ints(tasks)
			if diff := cmp.Diff(tt.wantTasks, tasks); diff != "" {
				t.Errorf("tasks mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// The whole capture in testdata: a shell (19442) forking sleep and true.
// Every event must be attributed to the shell or its children, never to
// the outsiders that share its switches and wakeups (link-*, idle).
func TestTrackerCapture(t *testing.T) {
	f, err := os.Open("testdata/sched_pipe.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := newTracker()
	tr.add(0, []int{19442}, nil)
	traced := map[int]int{}
	var dropped int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l, err := ParseLine(sc.Text())
		if err != nil {
			t.Fatalf("ParseLine(%q): %v", sc.Text(), err)
		}
		r, ok := tr.attribute(&l)
		if !ok {
			dropped++
			continue
		}
		traced[r.pid]++
	}
	var pids []int
	for pid := range traced {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	if diff := cmp.Diff([]int{19442, 19444, 19445, 19446, 19447, 19448}, pids); diff != "" {
		t.Errorf("traced pids mismatch (-want +got):\n%s", diff)
	}
	// The two migrations of link-19427 while the shell ran.
	if dropped != 2 || tr.foreignEvents() != 2 {
		t.Errorf("dropped %d (foreign %d), want 2", dropped, tr.foreignEvents())
	}
}

// A removed target's tasks leave the set and never join it again; a
// target added later is another index, and the only-target trust ends.
func TestTrackerAddRemoveTargets(t *testing.T) {
	tr := newTracker()
	tr.trustCurrent = true
	tr.add(0, []int{10, 11}, nil)
	tr.add(1, []int{20}, nil)
	tr.remove(0)
	if tr.has(10) || tr.has(11) || !tr.has(20) {
		t.Errorf("after remove: has 10 %v, 11 %v, 20 %v", tr.has(10), tr.has(11), tr.has(20))
	}
	if added := tr.add(0, []int{12}, nil); len(added) != 0 || tr.has(12) {
		t.Errorf("a removed target took threads %v", added)
	}
	if !tr.isRemoved(0) || tr.isRemoved(1) {
		t.Error("isRemoved wrong")
	}
	tr.add(2, []int{30}, nil)
	if tk, ok := tr.lookup(30, ""); !ok || tk.target != 2 {
		t.Errorf("lookup(30) = %+v, %v", tk, ok)
	}
	l := Line{TaskPID: 99, Event: "x"}
	if _, ok := tr.running(&l); ok {
		t.Error("an unknown task was taken on trust with several targets")
	}
}

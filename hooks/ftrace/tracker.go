package ftrace

import (
	"path"
	"strconv"
	"strings"
	"sync"
)

// tracker mirrors the kernel's PID filter: the targets' tasks, with the
// target each belongs to and its last known comm. It decides which task an
// event is about, because the kernel records sched_switch and sched_wakeup
// when either side is in the filter and its task column may name a task
// that is not the target's.
//
// The set grows with the initial threads, with sched_process_fork children
// (options/event-fork does the same in the kernel) and with the runner's
// refreshes; a task leaves it at its final switch-out after
// sched_process_exit, so that last switch is still shown.
type tracker struct {
	mu      sync.Mutex
	tasks   map[int]*task
	scratch []field
	foreign uint64

	// reapAfter, when positive, makes a task leave the set that many
	// seconds (of trace time) after its sched_process_exit, for hooks that
	// do not enable sched_switch and so never see the final switch-out.
	reapAfter float64
	exited    []exited
	// trustCurrent makes current() take a task it does not know as the
	// only target's: in an instance scoped with set_event_pid the kernel
	// records other events only for the tasks in its filter, which may
	// hold children whose fork the tracker has not seen (a lost event).
	// Only with a single target, whose index is then certain.
	trustCurrent bool
	targets      int
	// lookupComm names a task current() takes on trust when the line
	// does not (the binary reader's lines never do); nil leaves it "".
	lookupComm func(pid int) string
	// removed are the targets no longer traced: their tasks left the set,
	// and none joins it again.
	removed map[int]bool
	// allTasks makes every task target 0's (a whole node, config.allTasks):
	// a task the set does not hold joins it when an event names it.
	allTasks bool
	// isExcluded, with allTasks, says whether a task the set does not
	// hold is left out (the helper's own threads, which the kernel still
	// records when another task wakes them or switches with them); the
	// answers are kept in excluded.
	isExcluded func(pid int) bool
	excluded   map[int]bool
}

// task returns the set's task pid, or nil when it is no target's. With
// allTasks every pid (0, the idle task, too) is, unless target 0 was
// removed.
func (t *tracker) task(pid int) *task {
	tk := t.tasks[pid]
	if tk == nil && t.allTasks && pid >= 0 && !t.removed[0] {
		if t.excluded[pid] {
			return nil
		}
		if t.isExcluded != nil && t.isExcluded(pid) {
			if t.excluded == nil {
				t.excluded = map[int]bool{}
			}
			t.excluded[pid] = true
			return nil
		}
		tk = &task{target: 0}
		if t.lookupComm != nil && pid > 0 {
			tk.comm = t.lookupComm(pid)
		}
		t.tasks[pid] = tk
	}
	return tk
}

type task struct {
	target int
	comm   string
	dying  bool
}

// exited is a task that exited at time at, to be reaped.
type exited struct {
	pid int
	tk  *task
	at  float64
}

// traced is the task an event is about.
type traced struct {
	pid    int
	comm   string
	target int
}

func newTracker() *tracker {
	return &tracker{tasks: make(map[int]*task)}
}

// add puts tids into target's set and returns those that were not in it.
// comm, when not nil, names a new task (from /proc/<tid>/comm).
func (t *tracker) add(target int, tids []int, comm func(int) string) []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	var added []int
	if t.removed[target] {
		return nil
	}
	for _, tid := range tids {
		if tk, ok := t.tasks[tid]; ok && !tk.dying {
			continue
		}
		if target >= t.targets {
			t.targets = target + 1
		}
		tk := &task{target: target}
		if comm != nil {
			tk.comm = comm(tid)
		}
		t.tasks[tid] = tk
		added = append(added, tid)
	}
	return added
}

// remove takes target's tasks out of the set, for good.
func (t *tracker) remove(target int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.removed == nil {
		t.removed = map[int]bool{}
	}
	t.removed[target] = true
	if target >= t.targets {
		t.targets = target + 1
	}
	for pid, tk := range t.tasks {
		if tk.target == target {
			delete(t.tasks, pid)
		}
	}
}

// isRemoved says whether target was removed.
func (t *tracker) isRemoved(target int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.removed[target]
}

// lookup returns the traced task pid, if it is a target's; comm, when not
// empty, updates its name.
func (t *tracker) lookup(pid int, comm string) (traced, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tk := t.task(pid)
	if tk == nil {
		return traced{}, false
	}
	if comm != "" && comm != "<...>" {
		tk.comm = comm
	}
	return traced{pid: pid, comm: tk.comm, target: tk.target}, true
}

// running returns the traced task that was current when l was recorded,
// if it is a target's. It never counts l as foreign: the caller decides.
func (t *tracker) running(l *Line) (traced, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.current(l)
}

// dropped counts an event about no target task.
func (t *tracker) dropped() {
	t.mu.Lock()
	t.foreign++
	t.mu.Unlock()
}

// has reports whether pid is one of the targets' tasks.
func (t *tracker) has(pid int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.task(pid) != nil
}

// size returns how many tasks the set holds.
func (t *tracker) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.tasks)
}

// foreignEvents returns how many events were about no target task.
func (t *tracker) foreignEvents() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.foreign
}

// attribute returns the target task l is about and updates the set; ok is
// false when the event is about no target task (it must then be dropped).
func (t *tracker) attribute(l *Line) (traced, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.scratch = scanFields(t.scratch[:0], l.Details)
	var (
		tr traced
		ok bool
	)
	switch l.Event {
	case "sched_switch":
		tr, ok = t.switched()
	case "sched_wakeup", "sched_wakeup_new", "sched_waking":
		tr, ok = t.woken(l)
	case "sched_migrate_task":
		tr, ok = t.named("pid", "comm")
	case "sched_process_fork":
		tr, ok = t.forked()
	case "sched_process_exec":
		tr, ok = t.execed()
	case "sched_process_exit":
		tr, ok = t.exiting(l)
	default:
		tr, ok = t.other(l)
	}
	if !ok {
		t.foreign++
	}
	return tr, ok
}

// get returns the value of key in the event's fields (t.scratch), "" when
// it has none.
func (t *tracker) get(key string) string {
	for _, f := range t.scratch {
		if f.key == key {
			return f.value
		}
	}
	return ""
}

// getPID returns the pid in key, -1 when there is none.
func (t *tracker) getPID(key string) int {
	n, err := strconv.Atoi(t.get(key))
	if err != nil {
		return -1
	}
	return n
}

// named attributes the event to the task in its field pidKey, whose comm
// is in commKey, if it is a target's.
func (t *tracker) named(pidKey, commKey string) (traced, bool) {
	pid := t.getPID(pidKey)
	tk := t.task(pid)
	if tk == nil {
		return traced{}, false
	}
	tk.comm = t.get(commKey)
	return traced{pid: pid, comm: tk.comm, target: tk.target}, true
}

// other attributes an event the tracker does not know: to the current
// task, else to the task in its pid field (whose comm, if it names one).
func (t *tracker) other(l *Line) (traced, bool) {
	if tr, ok := t.current(l); ok {
		return tr, true
	}
	pid := t.getPID("pid")
	tk := t.task(pid)
	if tk == nil {
		return traced{}, false
	}
	if c := t.get("comm"); c != "" {
		tk.comm = c
	}
	return traced{pid: pid, comm: tk.comm, target: tk.target}, true
}

// switched attributes a sched_switch to its target side: the task switched
// out when it is a target's, else the one switched in.
func (t *tracker) switched() (traced, bool) {
	next, nok := t.named("next_pid", "next_comm")
	prevPID := t.getPID("prev_pid")
	prev, pok := t.named("prev_pid", "prev_comm")
	if !pok {
		return next, nok
	}
	// The final switch-out of a task that exited.
	if state := t.get("prev_state"); strings.ContainsAny(state, "ZX") {
		delete(t.tasks, prevPID)
	}
	return prev, true
}

// woken attributes a wakeup to the wakee if it is a target's, else to the
// target's task that woke someone else.
func (t *tracker) woken(l *Line) (traced, bool) {
	if tr, ok := t.named("pid", "comm"); ok {
		return tr, true
	}
	if t.allTasks {
		// On a whole node every wakee is the target's but one left out:
		// its wakeup is not shown.
		return traced{}, false
	}
	return t.current(l)
}

// forked attributes a fork to the parent, in whose context it is
// recorded; the child joins the parent's target, as options/event-fork
// makes it join the kernel's filter.
func (t *tracker) forked() (traced, bool) {
	tr, ok := t.named("pid", "comm")
	if !ok {
		return tr, false
	}
	if child := t.getPID("child_pid"); child > 0 {
		t.tasks[child] = &task{target: tr.target, comm: t.get("child_comm")}
	}
	return tr, true
}

// execed attributes an exec. A non-leader thread that execs takes the
// leader's pid (old_pid is the thread's). The new comm is the file's base
// name, which the event does not print.
func (t *tracker) execed() (traced, bool) {
	pid, old := t.getPID("pid"), t.getPID("old_pid")
	tk := t.tasks[old]
	if tk == nil {
		tk = t.task(pid)
	}
	if tk == nil {
		return traced{}, false
	}
	if old != pid {
		delete(t.tasks, old)
	}
	tk.comm = execComm(t.get("filename"))
	tk.dying = false
	t.tasks[pid] = tk
	return traced{pid: pid, comm: tk.comm, target: tk.target}, true
}

// exiting attributes an exit and marks the task dying: it leaves the set
// at its final switch-out, or reapAfter later.
func (t *tracker) exiting(l *Line) (traced, bool) {
	defer t.reap(l.Time)
	pid := t.getPID("pid")
	tr, ok := t.named("pid", "comm")
	if !ok {
		return tr, false
	}
	tk := t.tasks[pid]
	tk.dying = true
	if t.reapAfter > 0 {
		t.exited = append(t.exited, exited{pid: pid, tk: tk, at: l.Time})
	}
	return tr, true
}

// reap removes the tasks that exited reapAfter before now and did not
// come back (a pid reused by a traced fork is a new task).
func (t *tracker) reap(now float64) {
	n := 0
	for n < len(t.exited) && t.exited[n].at < now-t.reapAfter {
		e := t.exited[n]
		if t.tasks[e.pid] == e.tk && e.tk.dying {
			delete(t.tasks, e.pid)
		}
		n++
	}
	if n > 0 {
		t.exited = append(t.exited[:0], t.exited[n:]...)
	}
}

// current attributes l to the task that was running, if it is a target's.
func (t *tracker) current(l *Line) (traced, bool) {
	tk := t.task(l.TaskPID)
	if tk == nil && t.trustCurrent && t.targets == 1 && l.TaskPID > 0 {
		tk = &task{target: 0}
		t.tasks[l.TaskPID] = tk
	}
	if tk == nil {
		return traced{}, false
	}
	if tk.comm == "" && l.Task != "<...>" {
		tk.comm = l.Task
	}
	if tk.comm == "" && t.lookupComm != nil {
		tk.comm = t.lookupComm(l.TaskPID)
	}
	return traced{pid: l.TaskPID, comm: tk.comm, target: tk.target}, true
}

// execComm is the comm the kernel gives a task that execs filename: its
// base name, cut to TASK_COMM_LEN-1 bytes.
func execComm(filename string) string {
	c := path.Base(filename)
	if len(c) > 15 {
		c = c[:15]
	}
	return c
}

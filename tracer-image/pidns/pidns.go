package pidns

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// pfKthread is PF_KTHREAD of include/linux/sched.h, in the flags field of
// /proc/<pid>/stat.
const pfKthread = 0x00200000

// procSuperMagic is PROC_SUPER_MAGIC, the f_type of a proc file system.
const procSuperMagic = 0x9fa0

// Namespace returns the inode of the pid namespace that procRoot shows:
// that of the first process there (normally pid 1, the namespace's init)
// that is in that namespace itself (one id in its NSpid line) and whose
// ns/pid can be read (reading it needs ptrace access to the process).
func Namespace(procRoot string) (uint64, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, fmt.Errorf("pid namespace of %s: %w", procRoot, err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	var first error
	for _, pid := range pids {
		dir := filepath.Join(procRoot, strconv.Itoa(pid))
		b, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil || nspidLevels(b) != 1 {
			continue // exited, or in a namespace below procRoot's
		}
		ino, err := nsInode(filepath.Join(dir, "ns", "pid"))
		if err == nil {
			return ino, nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		first = fmt.Errorf("no process of %s is in its namespace", procRoot)
	}
	return 0, first
}

// nspidLevels returns how many ids the NSpid line of a status file holds:
// 1 for a process of the proc mount's own namespace.
func nspidLevels(status []byte) int {
	for _, l := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(l, "NSpid:"); ok {
			return len(strings.Fields(rest))
		}
	}
	return 0
}

// Self returns the inode of the caller's pid namespace.
func Self() (uint64, error) {
	return nsInode("/proc/self/ns/pid")
}

func nsInode(name string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(name, &st); err != nil {
		return 0, fmt.Errorf("pid namespace: %w", &os.PathError{Op: "stat", Path: name, Err: err})
	}
	return st.Ino, nil
}

// IsInitial reports whether procRoot shows the initial pid namespace,
// whose ids are the global ones: there, and only there, pid 2 is a kernel
// thread (kthreadd).
func IsInitial(procRoot string) (bool, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "2", "stat"))
	if err != nil {
		if os.IsNotExist(err) {
			return false, nil
		}
		return false, fmt.Errorf("pid namespace of %s: %w", procRoot, err)
	}
	return statIsKthread(b)
}

// statIsKthread reports whether a /proc/<pid>/stat line has PF_KTHREAD.
func statIsKthread(b []byte) (bool, error) {
	// "pid (comm) state ppid pgrp session tty_nr tpgid flags ..."; comm
	// may hold spaces and parentheses, so fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false, fmt.Errorf("malformed stat %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 7 {
		return false, fmt.Errorf("malformed stat %q", b)
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	if err != nil {
		return false, fmt.Errorf("malformed stat flags %q", f[6])
	}
	return flags&pfKthread != 0, nil
}

// Task is one task of the node, as the iterator saw it.
type Task struct {
	// TID and TGID are the global thread and thread group ids.
	TID, TGID int
	// NR is the thread id in the snapshot's namespace, 0 when the task is
	// not visible there.
	NR int
}

// Snapshot is every task of the node at one moment, with its ids in one
// pid namespace.
type Snapshot struct {
	// NS is the namespace's inode.
	NS uint64
	// Level is the namespace's depth (0: the initial namespace), or -1
	// when no task was visible in it.
	Level int
	Tasks []Task

	global map[int]int // NR → global TID
	local  map[int]int // global TID → NR
}

func newSnapshot(ns uint64, level int, tasks []Task) *Snapshot {
	s := &Snapshot{NS: ns, Level: level, Tasks: tasks,
		global: make(map[int]int, len(tasks)), local: make(map[int]int, len(tasks))}
	for _, t := range tasks {
		if t.NR > 0 {
			s.global[t.NR] = t.TID
			s.local[t.TID] = t.NR
		}
	}
	return s
}

// Global returns the global id of the thread (or process: a process's id
// is its main thread's) whose id in the namespace is nr.
func (s *Snapshot) Global(nr int) (int, bool) {
	g, ok := s.global[nr]
	return g, ok
}

// Local returns the id in the namespace of the thread whose global id is
// tid.
func (s *Snapshot) Local(tid int) (int, bool) {
	l, ok := s.local[tid]
	return l, ok
}

// Translator maps the ids of one proc mount to global ids.
type Translator struct {
	// NS is the inode of the proc mount's pid namespace.
	NS uint64
	// Identity is set when the proc mount shows the initial namespace:
	// its ids are the global ones.
	Identity bool
	// Proc is set when procRoot is a proc file system.
	Proc bool
	snap *Snapshot
}

// ForProc returns the translation of the ids that procRoot shows. It loads
// the BPF iterator only when procRoot does not show the initial namespace;
// it fails when that is needed and BPF task iterators are not available
// (no CAP_BPF and CAP_PERFMON, or a kernel older than 5.8 or without BTF).
//
// A procRoot that is not a proc file system (a test's fake tree) is taken
// as showing the initial namespace, with Proc false.
func ForProc(procRoot string) (*Translator, error) {
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(procRoot, &sfs); err != nil {
		return nil, fmt.Errorf("pid namespace of %s: %w", procRoot, err)
	}
	if sfs.Type != procSuperMagic {
		return &Translator{Identity: true}, nil
	}
	if initial, err := IsInitial(procRoot); err != nil {
		return nil, err
	} else if initial {
		ns, _ := Namespace(procRoot) // informative only
		return &Translator{NS: ns, Identity: true, Proc: true}, nil
	}
	ns, err := Namespace(procRoot)
	if err != nil {
		return nil, err
	}
	snap, err := Take(ns)
	if err != nil {
		return nil, fmt.Errorf("translating the ids of %s (a child pid namespace) to global ids: %w", procRoot, err)
	}
	return &Translator{NS: ns, Identity: snap.Level == 0, Proc: true, snap: snap}, nil
}

// Global returns the global id of the thread or process whose id in the
// proc mount is id, and false when no such task lives now.
func (t *Translator) Global(id int) (int, bool) {
	if t.Identity || t.snap == nil {
		return id, true
	}
	return t.snap.Global(id)
}

// Local returns the id in the proc mount of the thread or process whose
// global id is id, and false when it is not visible there.
func (t *Translator) Local(id int) (int, bool) {
	if t.Identity || t.snap == nil {
		return id, true
	}
	return t.snap.Local(id)
}

// GlobalAll returns the global ids of ids, sorted and without duplicates;
// ids of tasks that no longer exist are left out.
func (t *Translator) GlobalAll(ids []int) []int {
	var out []int
	for _, id := range ids {
		if g, ok := t.Global(id); ok {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

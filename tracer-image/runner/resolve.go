package runner

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/tracer-image/pidns"
)

// NotFoundError says that no process on the node belongs to a target.
type NotFoundError struct {
	Target   wire.Target
	ProcRoot string
}

func (e *NotFoundError) Error() string {
	id := e.Target.RuntimeID()
	if len(id) > 12 {
		id = id[:12] + "…"
	}
	node := ""
	if e.Target.Node != "" {
		node = fmt.Sprintf(" on node %q", e.Target.Node)
	}
	return fmt.Sprintf("container %q of pod %s/%s (container %s) not found in %s%s: is the helper running on the target's node with hostPID?",
		id, e.Target.Namespace, e.Target.Pod, e.Target.Container, e.ProcRoot, node)
}

// Resolve finds the processes of t under procRoot ("/proc" of the
// helper's pid namespace) by scanning every procRoot/<pid>/cgroup for t's
// container id. The id must stand alone in a path element ("<id>",
// "cri-containerd-<id>.scope", "crio-<id>.scope", "docker-<id>.scope"), so
// an id that merely shares a prefix does not match; CRI-O's monitor
// ("crio-conmon-<id>.scope") is not the container. This works for
// containerd, CRI-O and Docker, with the cgroupfs and systemd drivers, on
// cgroup v1, v2 and hybrid nodes. Processes that exit during the scan are
// skipped. The thread ids are translated to global ids (attach.Target.TIDs).
//
// Resolve is ResolveMode with wire.ModeNode.
func Resolve(procRoot string, t wire.Target) (attach.Target, error) {
	return ResolveMode(procRoot, t, wire.ModeNode)
}

// ResolveMode is Resolve for a helper running in mode (a wire.Request
// Mode). In wire.ModeEphemeral, when no process names t's container in its
// cgroup file (cgroup namespaces hide the path), the target's processes are
// those whose mount namespace is not the helper's (attach.MethodMountNS): the
// ephemeral container shares the target container's pid namespace, and
// has a mount namespace of its own.
func ResolveMode(procRoot string, t wire.Target, mode string) (attach.Target, error) {
	if t.IsNode() {
		// A whole node: the hooks drop their filters; no process, cgroup
		// or membership to look for.
		return attach.Target{Target: t, Method: attach.MethodNode}, nil
	}
	r, err := resolveFS(os.DirFS(procRoot), t)
	var nf *NotFoundError
	if errors.As(err, &nf) && mode == wire.ModeEphemeral {
		r, err = resolveMountNS(procRoot, "/proc/self/ns/mnt", t)
	}
	if errors.As(err, &nf) {
		nf.ProcRoot = procRoot
	}
	if err != nil {
		return r, err
	}
	if err := globalize(procRoot, &r); err != nil {
		return attach.Target{}, err
	}
	return r, nil
}

// globalize translates r.TIDs to global ids. It fails only when every
// thread exited meanwhile.
func globalize(procRoot string, r *attach.Target) error {
	tr, err := pidns.ForProc(procRoot)
	if err != nil {
		r.GlobalErr = err
		return nil
	}
	if tr.Identity {
		return nil
	}
	r.TIDs = tr.GlobalAll(r.TIDs)
	if len(r.TIDs) == 0 {
		return &NotFoundError{Target: r.Target, ProcRoot: procRoot}
	}
	return nil
}

// resolveMountNS finds the processes under procRoot whose mount namespace
// is not that of selfMnt (the helper's), leaving out a pid 1 named
// "pause" (the pod's sandbox, visible when the pod shares its pid
// namespace). Its Cgroups are the cgroup files' lines as they are.
func resolveMountNS(procRoot, selfMnt string, t wire.Target) (attach.Target, error) {
	self, err := inode(selfMnt)
	if err != nil {
		return attach.Target{}, fmt.Errorf("resolving %s by mount namespace: %w", t, err)
	}
	proc := os.DirFS(procRoot)
	pids, err := listPIDs(proc)
	if err != nil {
		return attach.Target{}, fmt.Errorf("resolving %s: %w", t, err)
	}
	r := attach.Target{Target: t, Method: attach.MethodMountNS}
	cgroups := map[attach.Cgroup]bool{}
	for _, pid := range pids {
		dir := strconv.Itoa(pid)
		mnt, err := inode(procRoot + "/" + dir + "/ns/mnt")
		if err != nil || mnt == self {
			continue // exited, a kernel thread, or the helper's
		}
		if pid == 1 {
			if comm, err := fs.ReadFile(proc, dir+"/comm"); err == nil && strings.TrimSpace(string(comm)) == "pause" {
				continue
			}
		}
		tids, err := listTasks(proc, pid)
		if err != nil {
			continue
		}
		r.PIDs = append(r.PIDs, pid)
		r.TIDs = append(r.TIDs, tids...)
		if b, err := fs.ReadFile(proc, dir+"/cgroup"); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if parts := strings.SplitN(l, ":", 3); len(parts) == 3 {
					cgroups[attach.Cgroup{Controllers: parts[1], Path: parts[2]}] = true
				}
			}
		}
	}
	if len(r.PIDs) == 0 {
		return attach.Target{}, &NotFoundError{Target: t, ProcRoot: procRoot}
	}
	slices.Sort(r.TIDs)
	r.TIDs = slices.Compact(r.TIDs)
	r.Cgroups = sortedCgroups(cgroups)
	return r, nil
}

// inode returns the inode of name (a namespace file).
func inode(name string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(name, &st); err != nil {
		return 0, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return st.Ino, nil
}

func resolveFS(proc fs.FS, t wire.Target) (attach.Target, error) {
	id := t.RuntimeID()
	if id == "" {
		return attach.Target{}, fmt.Errorf("resolving %s: container id is empty", t)
	}
	pids, err := listPIDs(proc)
	if err != nil {
		return attach.Target{}, fmt.Errorf("resolving %s: %w", t, err)
	}
	r := attach.Target{Target: t, Method: attach.MethodProcCgroup}
	cgroups := map[attach.Cgroup]bool{}
	for _, pid := range pids {
		b, err := fs.ReadFile(proc, strconv.Itoa(pid)+"/cgroup")
		if err != nil {
			continue // exited since the listing, or a kernel thread we may not read
		}
		found := matchCgroups(b, id)
		if len(found) == 0 {
			continue
		}
		tids, err := listTasks(proc, pid)
		if err != nil {
			if vanished(err) {
				continue
			}
			return attach.Target{}, fmt.Errorf("resolving %s: %w", t, err)
		}
		r.PIDs = append(r.PIDs, pid)
		r.TIDs = append(r.TIDs, tids...)
		for _, c := range found {
			cgroups[c] = true
		}
	}
	if len(r.PIDs) == 0 {
		return attach.Target{}, &NotFoundError{Target: t, ProcRoot: "/proc"}
	}
	slices.Sort(r.TIDs)
	r.TIDs = slices.Compact(r.TIDs)
	r.Cgroups = sortedCgroups(cgroups)
	return r, nil
}

func sortedCgroups(set map[attach.Cgroup]bool) []attach.Cgroup {
	var out []attach.Cgroup
	for c := range set {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b attach.Cgroup) int {
		if c := strings.Compare(a.Controllers, b.Controllers); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	return out
}

// listPIDs returns the numeric entries of a proc tree, sorted.
func listPIDs(proc fs.FS) ([]int, error) {
	entries, err := fs.ReadDir(proc, ".")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// listTasks returns the thread ids of pid, sorted.
func listTasks(proc fs.FS, pid int) ([]int, error) {
	entries, err := fs.ReadDir(proc, strconv.Itoa(pid)+"/task")
	if err != nil {
		return nil, fmt.Errorf("listing threads of pid %d: %w", pid, err)
	}
	var tids []int
	for _, e := range entries {
		if tid, err := strconv.Atoi(e.Name()); err == nil && tid > 0 {
			tids = append(tids, tid)
		}
	}
	if len(tids) == 0 {
		// A process that exits has no tasks left to list.
		return nil, fmt.Errorf("listing threads of pid %d: %w", pid, fs.ErrNotExist)
	}
	slices.Sort(tids)
	return tids, nil
}

// vanished reports whether err means the process exited meanwhile.
func vanished(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH)
}

// matchCgroups returns the cgroups in a /proc/<pid>/cgroup file whose path
// holds id as a whole path element part, cut after that element. Lines are
// "hierarchy-id:controllers:path"; "0::path" is cgroup v2.
func matchCgroups(file []byte, id string) []attach.Cgroup {
	var out []attach.Cgroup
	sc := bufio.NewScanner(bytes.NewReader(file))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if p, ok := containerPath(parts[2], id); ok {
			out = append(out, attach.Cgroup{Controllers: parts[1], Path: p})
		}
	}
	return out
}

// containerPath returns cgroupPath up to the end of the element that holds
// id, when one does.
func containerPath(cgroupPath, id string) (string, bool) {
	for from := 0; ; {
		i := strings.Index(cgroupPath[from:], id)
		if i < 0 {
			return "", false
		}
		i += from
		end := i + len(id)
		from = i + 1
		if i > 0 && isIDChar(cgroupPath[i-1]) || end < len(cgroupPath) && isIDChar(cgroupPath[end]) {
			continue // part of a longer id
		}
		elemStart := strings.LastIndexByte(cgroupPath[:i], '/') + 1
		elemEnd := len(cgroupPath)
		if j := strings.IndexByte(cgroupPath[end:], '/'); j >= 0 {
			elemEnd = end + j
		}
		elem := cgroupPath[elemStart:elemEnd]
		if strings.Contains(elem, "conmon") {
			continue // CRI-O's container monitor, not the container
		}
		// Not cleaned: a path seen from another cgroup namespace starts
		// with "/..", which cleaning would lose.
		return cgroupPath[:elemEnd], true
	}
}

func isIDChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

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

	"github.com/ktrace-dev/kubectl-trace/hooks"
)

// MethodProcCgroup names resolution by scanning /proc/<pid>/cgroup for the
// container id.
const MethodProcCgroup = "proc-cgroup"

// Cgroup is one cgroup that holds a container's processes.
type Cgroup struct {
	// Controllers is the hierarchy as /proc/<pid>/cgroup names it:
	// "memory", "cpu,cpuacct", "name=systemd", or "" for cgroup v2.
	Controllers string
	// Path is the container's cgroup in that hierarchy, ending with the
	// path element that holds the container id.
	Path string
}

// Resolution is where a target's processes are on this node.
type Resolution struct {
	Target hooks.Target
	// Method says how the target was found (MethodProcCgroup).
	Method string
	// PIDs are the host pids (thread group ids), sorted.
	PIDs []int
	// TIDs are the host ids of every thread of PIDs, sorted.
	TIDs []int
	// Cgroups are the container's cgroups, sorted by Controllers.
	Cgroups []Cgroup
}

// NotFoundError says that no process on the node belongs to a target.
type NotFoundError struct {
	Target   hooks.Target
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

// Resolve finds the processes of t under procRoot ("/proc" of the host's
// pid namespace) by scanning every procRoot/<pid>/cgroup for t's container
// id. The id must stand alone in a path element ("<id>",
// "cri-containerd-<id>.scope", "crio-<id>.scope", "docker-<id>.scope"), so
// an id that merely shares a prefix does not match; CRI-O's monitor
// ("crio-conmon-<id>.scope") is not the container. This works for
// containerd, CRI-O and Docker, with the cgroupfs and systemd drivers, on
// cgroup v1, v2 and hybrid nodes. Processes that exit during the scan are
// skipped.
func Resolve(procRoot string, t hooks.Target) (Resolution, error) {
	r, err := resolveFS(os.DirFS(procRoot), t)
	var nf *NotFoundError
	if errors.As(err, &nf) {
		nf.ProcRoot = procRoot
	}
	return r, err
}

func resolveFS(proc fs.FS, t hooks.Target) (Resolution, error) {
	id := t.RuntimeID()
	if id == "" {
		return Resolution{}, fmt.Errorf("resolving %s: container id is empty", t)
	}
	pids, err := listPIDs(proc)
	if err != nil {
		return Resolution{}, fmt.Errorf("resolving %s: %w", t, err)
	}
	r := Resolution{Target: t, Method: MethodProcCgroup}
	cgroups := map[Cgroup]bool{}
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
			return Resolution{}, fmt.Errorf("resolving %s: %w", t, err)
		}
		r.PIDs = append(r.PIDs, pid)
		r.TIDs = append(r.TIDs, tids...)
		for _, c := range found {
			cgroups[c] = true
		}
	}
	if len(r.PIDs) == 0 {
		return Resolution{}, &NotFoundError{Target: t, ProcRoot: "/proc"}
	}
	slices.Sort(r.TIDs)
	r.TIDs = slices.Compact(r.TIDs)
	for c := range cgroups {
		r.Cgroups = append(r.Cgroups, c)
	}
	slices.SortFunc(r.Cgroups, func(a, b Cgroup) int {
		if c := strings.Compare(a.Controllers, b.Controllers); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	return r, nil
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
func matchCgroups(file []byte, id string) []Cgroup {
	var out []Cgroup
	sc := bufio.NewScanner(bytes.NewReader(file))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if p, ok := containerPath(parts[2], id); ok {
			out = append(out, Cgroup{Controllers: parts[1], Path: p})
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

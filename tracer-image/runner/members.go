package runner

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/tracer-image/pidns"
)

// Membership is who is in a target's container now.
type Membership struct {
	// PIDs are the process ids as the proc root shows them, and TIDs the
	// global thread ids, as in attach.Target; both sorted.
	PIDs []int
	TIDs []int
	// Source is where they were read: the container's cgroup directory
	// (its cgroup.procs and those of its sub-cgroups), or attach.MethodProcCgroup
	// when no cgroup directory was readable and /proc was scanned again.
	Source string
}

// Members re-reads which processes are in a resolved container, so that a
// session can follow the processes that join it after the start (kubectl
// exec): those are not children of traced tasks, so event-fork misses them.
//
// It reads cgroup.procs of the container's cgroup, trying for each of
// r.Cgroups: <cgroupRoot>/<controller>/<path> for a cgroup v1 hierarchy,
// <cgroupRoot>/<path> and <cgroupRoot>/unified/<path> for cgroup v2; then
// the same under <procRoot>/1/root, which in a hostPID helper container is
// the node's root file system (the helper's own /sys/fs/cgroup may show only
// its own cgroup). Paths seen from another cgroup namespace ("/../…") are
// skipped. When none is readable it scans procRoot again (Resolve).
//
// cgroup.procs shows the ids of the reader's pid namespace, so it is read
// only when procRoot shows that namespace; otherwise procRoot is scanned
// again. A target resolved by mount namespace (attach.MethodMountNS) is resolved
// so again. The thread ids are translated to global ids, as Resolve does;
// Membership.TIDs are the proc root's ids only when that failed (see
// attach.Target.GlobalErr).
func Members(procRoot, cgroupRoot string, r attach.Target) (Membership, error) {
	if r.Method == attach.MethodMountNS {
		res, err := ResolveMode(procRoot, r.Target, wire.ModeEphemeral)
		if err != nil {
			return Membership{Source: attach.MethodMountNS}, err
		}
		return Membership{PIDs: res.PIDs, TIDs: res.TIDs, Source: attach.MethodMountNS}, nil
	}
	tr, trErr := pidns.ForProc(procRoot)
	self, selfErr := pidns.Self()
	// When the translation failed, the ids stay procRoot's (GlobalErr).
	if trErr != nil || !tr.Proc || selfErr == nil && self == tr.NS {
		for _, dir := range cgroupDirs(procRoot, cgroupRoot, r.Cgroups) {
			pids, err := readProcsTree(dir)
			if err != nil {
				continue
			}
			m := Membership{Source: dir}
			proc := os.DirFS(procRoot)
			for _, pid := range pids {
				tids, err := listTasks(proc, pid)
				if err != nil {
					continue // exited since cgroup.procs was read
				}
				m.PIDs = append(m.PIDs, pid)
				m.TIDs = append(m.TIDs, tids...)
			}
			if tr != nil {
				m.TIDs = tr.GlobalAll(m.TIDs)
			} else {
				slices.Sort(m.TIDs)
				m.TIDs = slices.Compact(m.TIDs)
			}
			return m, nil
		}
	}
	res, err := Resolve(procRoot, r.Target)
	if err != nil {
		return Membership{Source: attach.MethodProcCgroup}, err
	}
	return Membership{PIDs: res.PIDs, TIDs: res.TIDs, Source: attach.MethodProcCgroup}, nil
}

// cgroupDirs lists the directories where the container's cgroups may be
// found, in the order Members tries them.
func cgroupDirs(procRoot, cgroupRoot string, cgroups []attach.Cgroup) []string {
	roots := []string{cgroupRoot, filepath.Join(procRoot, "1", "root", cgroupRoot)}
	var dirs []string
	for _, root := range roots {
		for _, c := range cgroups {
			if strings.Contains(c.Path, "..") {
				continue
			}
			if c.Controllers == "" {
				dirs = append(dirs, filepath.Join(root, c.Path), filepath.Join(root, "unified", c.Path))
				continue
			}
			ctrls := strings.Split(c.Controllers, ",")
			for _, ctrl := range ctrls {
				dirs = append(dirs, filepath.Join(root, strings.TrimPrefix(ctrl, "name="), c.Path))
			}
			if len(ctrls) > 1 {
				// Some distributions mount "cpu,cpuacct" under that name only.
				dirs = append(dirs, filepath.Join(root, c.Controllers, c.Path))
			}
		}
	}
	return dirs
}

// readProcsTree returns the pids in dir/cgroup.procs and in the
// cgroup.procs of every cgroup below dir, sorted. It fails only when
// dir/cgroup.procs itself cannot be read.
func readProcsTree(dir string) ([]int, error) {
	top, err := readProcs(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	pids := top
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a sub-cgroup removed meanwhile
		}
		if !d.IsDir() || p == dir {
			return nil
		}
		sub, err := readProcs(filepath.Join(p, "cgroup.procs"))
		if err == nil {
			pids = append(pids, sub...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(pids)
	return slices.Compact(pids), nil
}

func readProcs(name string) ([]int, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var pids []int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		pid, err := strconv.Atoi(line)
		if err != nil {
			return nil, fmt.Errorf("reading %q: %q is not a pid", name, line)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

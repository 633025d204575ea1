//go:build linux

package runner

import (
	"context"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf"
)

// ebpfAttacher attaches hooks of kind ebpf: BPF programs scoped in the
// kernel to the targets' mount namespaces (package ebpf). A process that
// joins a target later (kubectl exec) joins its mount namespace, so the
// hook needs no refresh.
func ebpfAttacher() Attacher { return AttacherFunc(attachEBPF) }

func attachEBPF(_ context.Context, a Attachment) (Hook, error) {
	// The plugin sends the parameters with their defaults; a request built
	// otherwise gets them here.
	args, err := a.Hook.ResolveArgs(a.Request.Args)
	if err != nil {
		return nil, err
	}
	opts := ebpf.Options{
		Hook:     a.Hook.Name,
		Args:     args,
		Fields:   a.Fields,
		ProcRoot: a.ProcRoot,
		Warn:     a.Warn,
	}
	if a.Request.Framed {
		// Targets join a framed session (wire.Control.Add).
		opts.SpareTargets = spareTargets
	}
	for _, r := range a.Targets {
		opts.Targets = append(opts.Targets, ebpfTarget(a.ProcRoot, r))
		// A whole node: the programs match every task (match_all).
		opts.AllTasks = opts.AllTasks || r.Method == MethodNode
	}
	s, err := ebpf.Open(opts)
	if err != nil {
		return nil, err
	}
	for _, w := range s.Warnings() {
		a.Warn(w)
	}
	return ebpfHook{s: s, procRoot: a.ProcRoot}, nil
}

// spareTargets is how many targets a framed session of a hook that sums
// per target can add: its per-CPU maps take room for each.
const spareTargets = 16

func ebpfTarget(procRoot string, r Resolution) ebpf.Target {
	return ebpf.Target{Target: r.Target, PIDs: r.PIDs, MemCgroupDirs: memCgroupDirs(procRoot, r.Cgroups)}
}

// memCgroupDirs returns where the container's memory cgroup directory may
// be: the v1 memory hierarchy when the container is in one, else its
// cgroup v2 directory; under /sys/fs/cgroup, then under <procRoot>/1/root
// (the node's file system, seen from a hostPID helper).
func memCgroupDirs(procRoot string, cgs []Cgroup) []string {
	const cgroupRoot = "/sys/fs/cgroup"
	var rel []string
	for _, c := range cgs {
		if strings.Contains(c.Path, "..") {
			continue // seen from another cgroup namespace
		}
		if slices.Contains(strings.Split(c.Controllers, ","), "memory") {
			rel = append(rel, filepath.Join("memory", c.Path))
		}
	}
	if len(rel) == 0 {
		for _, c := range cgs {
			if c.Controllers == "" && !strings.Contains(c.Path, "..") {
				rel = append(rel, c.Path, filepath.Join("unified", c.Path))
			}
		}
	}
	var dirs []string
	for _, root := range []string{cgroupRoot, filepath.Join(procRoot, "1", "root", cgroupRoot)} {
		for _, r := range rel {
			dirs = append(dirs, filepath.Join(root, r))
		}
	}
	return dirs
}

type ebpfHook struct {
	s        *ebpf.Session
	procRoot string
}

func (h ebpfHook) AddTarget(slot int, r Resolution) error {
	return h.s.AddTarget(slot, ebpfTarget(h.procRoot, r))
}

func (h ebpfHook) RemoveTarget(slot int) error { return h.s.RemoveTarget(slot) }

func (h ebpfHook) Stream(ctx context.Context, emit EmitFunc) error {
	return h.s.Stream(ctx, ebpf.EmitFunc(emit))
}

func (h ebpfHook) Stats() Stats {
	st := h.s.Stats()
	// Dropped is in-kernel state that did not fit (an open whose entry
	// was missing at its exit): events lost as surely as a full ring.
	return Stats{Events: st.Events, Lost: st.Lost + st.Dropped}
}

func (h ebpfHook) Close() error { return h.s.Close() }

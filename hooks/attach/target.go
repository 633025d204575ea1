package attach

import "github.com/ktrace-dev/kubectl-trace/hooks/wire"

// How a target was found (Target.Method).
const (
	// MethodProcCgroup: by scanning /proc/<pid>/cgroup for the container id.
	MethodProcCgroup = "proc-cgroup"
	// MethodMountNS: in an ephemeral container, by mount namespace: the
	// target's processes are those of the shared pid namespace whose mount
	// namespace is not the helper's (cgroup namespaces hid the container
	// id from /proc/<pid>/cgroup).
	MethodMountNS = "mount-namespace"
	// MethodNode: a whole node (wire.TargetNode), nothing to look for:
	// every task on the node is the target's.
	MethodNode = "whole-node"
)

// Target is where one target's processes are on this node.
type Target struct {
	wire.Target
	// Method says how the target was found (MethodProcCgroup, …).
	Method string
	// PIDs are the process ids (thread group ids) as the proc root shows
	// them, sorted: procRoot/<pid> is the process. They are the host's
	// pids for a hostPID helper on a node that has no pid namespace of its
	// own, pod-local pids in an ephemeral container. A whole node has none.
	PIDs []int
	// TIDs are the global ids (those of the initial pid namespace, which
	// the kernel's ftrace filters compare with) of every thread of PIDs,
	// sorted; see GlobalErr.
	TIDs []int
	// GlobalErr is set when the proc root shows a child pid namespace and
	// the ids could not be translated: TIDs are then the proc root's ids,
	// which a pid filter must not use.
	GlobalErr error
	// Cgroups are the container's cgroups, sorted by Controllers.
	Cgroups []Cgroup
}

// Cgroup is one cgroup that holds a container's processes.
type Cgroup struct {
	// Controllers is the hierarchy as /proc/<pid>/cgroup names it:
	// "memory", "cpu,cpuacct", "name=systemd", or "" for cgroup v2.
	Controllers string
	// Path is the container's cgroup in that hierarchy, ending with the
	// path element that holds the container id.
	Path string
}

package hooks

import "sort"

// Kinds of hook, which decide the runtime the helper dispatches to.
const (
	KindFtrace  = "ftrace"
	KindEBPF    = "ebpf"
	KindTcpdump = "tcpdump"
)

// Descriptor describes one hook. The plugin reads descriptors only: to
// validate flags, complete them, render `kubectl trace hooks` and derive the
// helper's privileges.
type Descriptor struct {
	Name    string
	Kind    string
	Summary string
	// Events lists the kernel events the hook enables.
	Events  []string
	Outputs []string
	Needs   Needs
}

// Needs is what the helper must be granted for the hook to work.
type Needs struct {
	Capabilities []string
	// HostPID: the helper must see the node's processes to find the target.
	HostPID bool
	// Kernel features, such as "tracefs".
	Kernel []string
}

var catalogue = []Descriptor{
	{
		Name:    "sched",
		Kind:    KindFtrace,
		Summary: "scheduler activity of the target: switches, wakeups, migrations, fork, exec and exit",
		Events: []string{
			"sched:sched_switch", "sched:sched_wakeup", "sched:sched_migrate_task",
			"sched:sched_process_fork", "sched:sched_process_exec", "sched:sched_process_exit",
		},
		Outputs: []string{OutputText, OutputJSON},
		Needs: Needs{
			// SYS_ADMIN mounts tracefs and creates the private instance.
			Capabilities: []string{"SYS_ADMIN"},
			HostPID:      true,
			Kernel:       []string{"tracefs"},
		},
	},
}

// Catalogue returns every hook, sorted by name.
func Catalogue() []Descriptor {
	out := append([]Descriptor(nil), catalogue...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup finds a hook by name.
func Lookup(name string) (Descriptor, bool) {
	for _, d := range catalogue {
		if d.Name == name {
			return d, true
		}
	}
	return Descriptor{}, false
}

// Names returns the hook names, sorted.
func Names() []string {
	var out []string
	for _, d := range Catalogue() {
		out = append(out, d.Name)
	}
	return out
}

// Package pidns translates the process and thread ids that a proc mount
// shows into the global ids of the initial pid namespace, which the kernel's
// ftrace pid filters (set_event_pid) compare with.
//
// A helper that shares a pod's pid namespace (kubectl trace --mode
// ephemeral), or a hostPID helper on a node whose kubelet runs in a pid
// namespace of its own (kind, nested nodes), sees in its /proc ids of a
// child namespace. /proc cannot show the ids of an ancestor namespace
// (NSpid in /proc/<pid>/status starts at the proc mount's namespace), so
// the translation reads them in the kernel: a BPF task iterator (pidns.c)
// writes, for every task, its global thread and thread group ids and its
// thread id in the namespace asked for.
//
// When the proc mount shows the initial namespace (its pid 2 is kthreadd,
// a kernel thread: kernel threads are in the initial namespace only), the
// ids are already global and no BPF program is loaded.
package pidns

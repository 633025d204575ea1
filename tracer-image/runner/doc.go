// Package runner is the helper's lifecycle (Run): find the targets on this
// node (Resolve, from /proc/<pid>/cgroup), attach the hook through the
// runtime registered for its kind (Attacher: ftrace today, eBPF and tcpdump
// next), report "ready", wait for the plugin's go byte on stdin, stream
// trace data to stdout until stdin ends or the context is cancelled, then
// stop, drain, detach and report statistics. Status lines (hooks.Status) go
// to stderr; nothing else does.
//
// Text output is one line per event:
//
//	<seconds, 6 decimals> [<cpu, 3 digits>] <comm>-<pid> <event>: <details>
//
// where comm-pid is the traced task (the target's side of the event; blanks
// in comm are written as '_'), and details the kernel's own text. JSON
// output is one hooks.Event per line.
package runner

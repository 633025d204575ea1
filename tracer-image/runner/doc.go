// Package runner is the helper's lifecycle (Run): find the targets on this
// node (Resolve, from /proc/<pid>/cgroup), open the hook with the runtime
// of its kind (attach.Runtime: ftrace, eBPF, tcpdump; DefaultRuntimes),
// report "ready", wait for the plugin's go byte on stdin, stream trace data
// to stdout until stdin ends or the context is cancelled, then stop, drain,
// detach and report statistics. Status lines (wire.Status) go to stderr,
// with the lines a tool such as tcpdump prints; the ones before the go
// byte, but "ready", are held until it comes.
//
// After the go byte, stdin carries control messages (wire.Control): a
// target joins or leaves the running session (attach.Targets). A framed
// session (wire.Request.Framed) writes each target's records in frames of
// its index (wire.WriteFrame); a target whose processes are gone ends on
// its own ("target-ended").
//
// Text output is one line per event:
//
//	<seconds, 6 decimals> [<cpu, 3 digits>] <comm>-<pid> <event>: <details>
//
// where comm-pid is the traced task (the target's side of the event; blanks
// in comm are written as '_'), and details the kernel's own text. JSON
// output is one wire.Event per line.
package runner

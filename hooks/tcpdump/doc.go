// Package tcpdump is the helper's runtime for hooks of kind "tcpdump"
// (Runtime, an attach.Runtime): it runs the tracer image's tcpdump inside
// each target's network namespace (the pod's: every container of a pod
// shares it) and streams what tcpdump writes.
//
// Entering the namespace: a goroutine locks its OS thread (and never
// unlocks it, so the thread ends with the goroutine instead of returning to
// the scheduler inside a foreign namespace), calls setns(2) with
// /proc/<pid>/ns/net of one of the target's processes, and starts tcpdump
// with os/exec from that thread: Go forks on the calling thread, so the
// child starts in the target's namespace (Open checks this through
// /proc/<child>/ns/net). The same goroutine waits for tcpdump, which keeps
// the thread, and so the child's parent-death signal, alive as long as
// tcpdump runs. No shell and no nsenter are involved: the filter expression
// is one argument after "--".
//
// Output formats (Session.Stream):
//
//   - pcap: `tcpdump -U -w -`, binary-clean, copied byte for byte to the
//     sink's Raw writer; one target only, unless the session is framed,
//     since two pcap streams cannot share stdout.
//   - text: `tcpdump -l -nn`, one line per packet, copied as tcpdump prints
//     them; in a session of several targets that is not framed each line
//     starts with "[namespace/pod/container] ".
//   - json: `tcpdump -l -nn -tt`: one wire.Event per packet with Event
//     "packet", Time the packet's timestamp in seconds since the epoch
//     (CLOCK_REALTIME), Fields["line"] the rest of tcpdump's line, and on
//     request (wire.Request.Text) Text the line text output shows; PID,
//     Comm and CPU are zero (a packet belongs to no task).
//
// tcpdump's own stderr ("listening on …", the final "N packets captured",
// "N packets received by filter", "N packets dropped by kernel") goes to
// the attachment's Log line by line; the counts also become the Stats
// (captured: Events, dropped by kernel: Lost). Lines and warnings from
// before a stream starts are held until it does: the plugin only attaches
// to the helper's output after the helper is ready. Stopping sends SIGINT,
// so tcpdump flushes and prints its counts, then SIGKILL if it has not
// exited within Runtime.StopTimeout.
//
// Argv and the stderr and line parsers are plain Go; the session
// (Runtime.Open, Session) is Linux only.
package tcpdump

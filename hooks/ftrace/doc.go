// Package ftrace is the helper's runtime for hooks of kind "ftrace"
// (Runtime, an attach.Runtime): it runs one trace session in a private
// tracefs instance (instances/kubectl-trace-<session>-<pidns>-<pid>),
// never in the global buffer, and streams what the hook makes of the
// instance's events as wire.Event values.
//
// Each hook is a file of its own (sched.go, syscalls.go, signals.go,
// block.go, pagefaults.go, funcgraph.go) holding its plan: which of the
// descriptor's events it enables for its arguments (the catalogue in
// package hooks lists them once; TestPlansMatchCatalogue holds the two
// together), whether the instance is scoped to the target's threads with
// set_event_pid and options/event-fork, the function tracer's filter, the
// reader it prefers, and the processor that turns the kernel's events into
// the hook's. plans (plan.go) lists them.
//
// The kernel records sched_switch and sched_wakeup when EITHER task is in
// the PID filter, and its task column may be stale or "<...>", so the
// session keeps its own set of the target's tasks (the tracker: the
// initial threads, the children sched_process_fork reports, those
// AddThreads adds) and attributes each event to the target's side. Hooks
// whose events are recorded in another task's context (a signal an
// outsider sends, a request that completes in an interrupt) read an
// instance without a PID filter, and the tracker, fed the node's forks,
// execs and exits, keeps what is the target's. Events about no target
// task are dropped, never shown.
//
// Two readers: trace_pipe, the kernel's text (about 250-300 k events/s on a
// 2-vCPU VM, most of it spent formatting in the kernel), and the per-CPU
// trace_pipe_raw pages decoded here (raw.go; lossless at 700 k events/s
// there), used for sched and syscalls. Both hand the processors the same
// Lines: the decoder prints what the kernel would. The instance's
// trace_clock is "mono", so events carry CLOCK_MONOTONIC, which the runner
// relates to the wall clock.
//
// Parsing, decoding, planning and processing are plain Go; the tracefs
// session (Runtime.Open, Session) is Linux only.
package ftrace

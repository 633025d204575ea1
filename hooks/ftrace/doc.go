// Package ftrace is the helper's runtime for hooks of kind "ftrace": it runs
// one trace session in a private tracefs instance
// (instances/kubectl-trace-<session>-<pidns>-<pid>), never in the global
// buffer, and streams what the hook makes of the instance's events as
// wire.Event values.
//
// Each hook has a plan (plan.go): the events it enables, whether the
// instance is scoped to the target's threads with set_event_pid and
// options/event-fork, the function tracer's filter, the reader, and a
// processor (process.go) that turns the kernel's events into the hook's:
//
//   - sched: the scheduler events as the kernel prints them. The kernel
//     records sched_switch and sched_wakeup when EITHER task is in the PID
//     filter, and its task column may be stale or "<...>", so the session
//     keeps its own set of the target's tasks (the tracker: the initial
//     threads, the children sched_process_fork reports, those
//     Session.AddPIDs adds) and attributes each event to the target's side.
//   - syscalls: sys_enter_<name> and sys_exit_<name> paired per thread, one
//     event per call with its return value and duration.
//   - pagefaults: exceptions:page_fault_user (and _kernel), in the target's
//     context.
//   - funcgraph: the function tracer for the functions named, scoped with
//     set_ftrace_pid and options/function-fork; the tracer is put back to
//     nop and its filters cleared on every exit path.
//   - signals and block: events recorded in another task's context (a
//     signal an outsider sends the target is recorded in the sender's; a
//     request completes in an interrupt), which the PID filter would drop.
//     Their instance has no PID filter: the tracker, fed the node's forks,
//     execs and exits, keeps what is the target's.
//
// Every hook but sched also enables sched_process_fork, _exec and _exit to
// follow the target's tasks; they are not shown. Events about no target
// task are dropped and counted (Stats.Foreign), never shown.
//
// Two readers: trace_pipe, the kernel's text (about 250-300 k events/s on a
// 2-vCPU VM, most of it spent formatting in the kernel), and the per-CPU
// trace_pipe_raw pages decoded here (raw.go; lossless at 700 k events/s
// there), used for sched and syscalls. Both hand the processors the same
// Lines: the decoder prints what the kernel would.
//
// Parsing, decoding, planning and processing are plain Go; the tracefs
// session (Open, Session) is Linux only.
package ftrace

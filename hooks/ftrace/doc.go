// Package ftrace is the helper's runtime for hooks of kind "ftrace": it runs
// one trace session in a private tracefs instance
// (instances/kubectl-trace-<session>-<pidns>-<pid>), never in the global
// buffer, scoped to the target's threads with set_event_pid and
// options/event-fork, and streams the instance's trace_pipe as hooks.Event
// values.
//
// The kernel records sched_switch and sched_wakeup when EITHER task is in
// the PID filter, and prints a task column that may be stale or "<...>", so
// the session keeps its own set of the target's tasks (the initial threads,
// the children sched_process_fork reports, and those Session.AddPIDs adds)
// and attributes each event to the target's side: prev or next of a switch,
// the wakee or else the waker of a wakeup, the migrated task, the parent of
// a fork, the task that execs or exits. Events about no target task are
// dropped and counted (Stats.Foreign), never printed.
//
// Parsing (ParseLine, Fields) and attribution are plain Go; the tracefs
// session (Open, Session) is Linux only.
package ftrace

package hooks

// ftraceHooks run in a private tracefs instance (package ftrace).
var ftraceHooks = []Descriptor{
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

package wire

// Event is one trace event as `-o json` prints it, one per line. Field names
// are stable: scripts depend on them (docs/hooks.md).
type Event struct {
	// Time is the kernel timestamp in seconds (ftrace's clock, local to the node).
	Time float64 `json:"time"`
	CPU  int     `json:"cpu"`
	// PID and Comm name the traced task: the target's task the event is about,
	// which for sched_switch and sched_wakeup is not always the current task.
	PID  int    `json:"pid"`
	Comm string `json:"comm"`
	// Event is the kernel event's name, such as "sched_switch".
	Event  string            `json:"event"`
	Fields map[string]string `json:"fields,omitempty"`

	Node      string `json:"node"`
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	Container string `json:"container"`
}

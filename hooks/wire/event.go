package wire

// Event is one trace event as `-o json` prints it, one per line. Field names
// are stable: scripts depend on them (docs/hooks.md).
type Event struct {
	// Time is when the event happened, in seconds of the clock the
	// session's "started" status names (Status.Clock), which its
	// ClockOffset relates to the wall clock.
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
	// Text, when the request asks for it (Request.Text), is the line that
	// text output (`-o text`) shows for the event, without its newline
	// and without the target's prefix a merged stream adds.
	Text string `json:"text,omitempty"`
}

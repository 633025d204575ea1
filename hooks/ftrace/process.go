package ftrace

// record is one event a processor hands on: the traced task, when, and
// what. details is what text output prints; fields, when the session wants
// them (JSON), become wire.Event.Fields (nil means Fields(details)).
type record struct {
	task    traced
	time    float64
	cpu     int
	event   string
	details string
	fields  []field
}

// outFunc receives records; rec is reused after the call.
type outFunc func(rec *record) error

// processor turns the lines of one hook's instance into records. It is
// plain Go, fed by the Session (or a test) one line at a time, in the
// kernel's order.
type processor interface {
	// line handles one line.
	line(l *Line, out outFunc) error
	// end is called once after the last line: records of work that had
	// begun but not finished (a syscall still blocked) go out here.
	end(out outFunc) error
}

// reapAfter is how long, in seconds of trace time, a hook without
// sched_switch keeps an exited task: events it records after
// sched_process_exit (the SIGCHLD to its parent, the last page faults of
// exit_mm) still find it.
const reapAfter = 1.0

// isTracking says whether event follows the targets' tasks: forks, execs
// that rename, exits. Every hook but sched enables them (the descriptor
// lists them); the tracker consumes them and they are not shown.
func isTracking(event string) bool {
	switch event {
	case "sched_process_fork", "sched_process_exec", "sched_process_exit":
		return true
	}
	return false
}

// appendFields writes fields as "k=v k=v", the shape Fields parses back.
func appendFields(b []byte, fs []field) []byte {
	for i, f := range fs {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, f.key...)
		b = append(b, '=')
		b = append(b, f.value...)
	}
	return b
}

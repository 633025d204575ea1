package ftrace

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Line is one line of trace_pipe, split into its columns:
//
//	<task>-<pid> [<cpu>] <flags> <seconds>: <event>: <details>
//
// The flags column is absent when options/irq-info is off.
type Line struct {
	// Task and TaskPID are the task column: the task that was current when
	// the event was recorded. Task comes from the kernel's saved_cmdlines
	// cache, so it may be "<...>" or a newer comm; TaskPID is exact.
	Task    string
	TaskPID int
	CPU     int
	// Time is the timestamp in seconds, in the instance's trace_clock.
	Time float64
	// Event is the event's name without its system, such as "sched_switch".
	Event string
	// Details is the kernel's text after "<event>: ", such as
	// "comm=sh pid=42 prio=120 target_cpu=001".
	Details string
}

// ErrLost is wrapped by the error ParseLine returns for the
// "CPU:N [LOST M EVENTS]" lines trace_pipe prints after an overrun.
var ErrLost = errors.New("lost events")

// LostError reports a "CPU:N [LOST M EVENTS]" line.
type LostError struct {
	CPU   int
	Count uint64
}

func (e *LostError) Error() string {
	return fmt.Sprintf("cpu %d lost %d events", e.CPU, e.Count)
}

// Unwrap lets callers test for ErrLost with errors.Is.
func (e *LostError) Unwrap() error { return ErrLost }

// ParseLine splits one trace_pipe line (without its newline). It allocates
// nothing: every string in the result is a slice of s.
func ParseLine(s string) (Line, error) {
	var l Line
	if strings.HasPrefix(s, "CPU:") {
		return l, parseLost(s)
	}
	// The task column is the comm padded to 16 columns, '-', the pid; the
	// comm itself may hold spaces, dashes and brackets, so anchor on the
	// first "-<digits> [<digits>]" instead of splitting on spaces.
	open := -1
	for i := strings.IndexByte(s, '['); i >= 0; {
		if pid, ok := taskBefore(s, i); ok && cpuAt(s, i) >= 0 {
			open = i
			l.TaskPID = pid
			break
		}
		j := strings.IndexByte(s[i+1:], '[')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	if open < 0 {
		return l, fmt.Errorf("parsing trace line %q: no task and cpu columns", s)
	}
	dash := strings.LastIndexByte(strings.TrimRight(s[:open], " "), '-')
	l.Task = strings.TrimLeft(s[:dash], " ")
	end := cpuAt(s, open)
	l.CPU, _ = strconv.Atoi(s[open+1 : end])

	rest := strings.TrimLeft(s[end+1:], " ")
	// Optional flags column ("d..2."), then the timestamp ending in ':'.
	tok, after, _ := strings.Cut(rest, " ")
	if !strings.HasSuffix(tok, ":") {
		tok, after, _ = strings.Cut(strings.TrimLeft(after, " "), " ")
	}
	if !strings.HasSuffix(tok, ":") {
		return l, fmt.Errorf("parsing trace line %q: no timestamp", s)
	}
	t, err := strconv.ParseFloat(tok[:len(tok)-1], 64)
	if err != nil {
		return l, fmt.Errorf("parsing trace line %q: timestamp: %w", s, err)
	}
	l.Time = t
	if !splitEvent(&l, after) {
		return l, fmt.Errorf("parsing trace line %q: no event name", s)
	}
	return l, nil
}

// splitEvent fills l.Event and l.Details from the text after the
// timestamp. Most events print "<event>: <details>"; the syscall events
// and the function tracer print their own shapes, named here as events:
//
//	sys_openat(dfd: 0xffffff9c, filename: 0x55d0, flags: 0, mode: 0)  -> sys_enter_openat, "dfd: 0xffffff9c, …"
//	sys_openat -> 0x3                                                  -> sys_exit_openat, "0x3"
//	vfs_read <-ksys_read                                               -> function, "vfs_read <-ksys_read"
func splitEvent(l *Line, s string) bool {
	n := 0
	for n < len(s) {
		c := s[n]
		if c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			n++
			continue
		}
		break
	}
	if n == 0 {
		return false
	}
	name, rest := s[:n], s[n:]
	switch {
	case strings.HasPrefix(rest, ":"):
		l.Event = name
		l.Details = strings.TrimPrefix(rest[1:], " ")
	case strings.HasPrefix(rest, "(") && strings.HasPrefix(name, "sys_"):
		l.Event = "sys_enter_" + name[len("sys_"):]
		l.Details = strings.TrimSuffix(rest[1:], ")")
	case strings.HasPrefix(rest, " -> ") && strings.HasPrefix(name, "sys_"):
		l.Event = "sys_exit_" + name[len("sys_"):]
		l.Details = rest[len(" -> "):]
	case strings.HasPrefix(rest, " <-"):
		l.Event = "function"
		l.Details = s
	default:
		return false
	}
	return true
}

// taskBefore reports whether s[:i] ends in "-<digits>" followed by spaces,
// and returns the digits.
func taskBefore(s string, i int) (int, bool) {
	j := i
	for j > 0 && s[j-1] == ' ' {
		j--
	}
	if j == i {
		return 0, false
	}
	k := j
	for k > 0 && s[k-1] >= '0' && s[k-1] <= '9' {
		k--
	}
	if k == j || k == 0 || s[k-1] != '-' {
		return 0, false
	}
	pid, err := strconv.Atoi(s[k:j])
	return pid, err == nil
}

// cpuAt returns the index of the ']' closing "[<digits>]" at s[i], or -1.
func cpuAt(s string, i int) int {
	j := i + 1
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j == i+1 || j >= len(s) || s[j] != ']' {
		return -1
	}
	return j
}

func parseLost(s string) error {
	// CPU:1 [LOST 123 EVENTS]
	var e LostError
	if _, err := fmt.Sscanf(s, "CPU:%d [LOST %d EVENTS]", &e.CPU, &e.Count); err != nil {
		return fmt.Errorf("parsing trace line %q: %w", s, err)
	}
	return &e
}

// field is one key=value pair of an event's details, both slices of the
// details string.
type field struct{ key, value string }

// scanFields splits details into key=value pairs, appending to dst. A key is
// a run of [A-Za-z0-9_] at the start or after a space, followed by '='; its
// value runs to the space before the next key, so values may hold spaces
// (comm "Web Content", file names). sched_switch's " ==>" separator is
// dropped from prev_state.
func scanFields(dst []field, details string) []field {
	start := -1 // index of the current key
	eq := -1    // index of its '='
	for i := 0; i <= len(details); i++ {
		if i < len(details) && (i == 0 || details[i-1] == ' ') {
			if k := keyAt(details, i); k > i {
				if start >= 0 {
					dst = append(dst, makeField(details, start, eq, i-1))
				}
				start, eq = i, k
				i = k
				continue
			}
		}
		if i == len(details) && start >= 0 {
			dst = append(dst, makeField(details, start, eq, i))
		}
	}
	return dst
}

// keyAt returns the index of the '=' ending a key that starts at s[i], or -1.
func keyAt(s string, i int) int {
	j := i
	for j < len(s) {
		c := s[j]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			j++
			continue
		}
		break
	}
	if j == i || j >= len(s) || s[j] != '=' {
		return -1
	}
	return j
}

func makeField(s string, start, eq, end int) field {
	v := strings.TrimSuffix(strings.TrimRight(s[eq+1:end], " "), " ==>")
	return field{key: s[start:eq], value: v}
}

// Fields parses an event's details into a map, the form wire.Event carries
// in JSON output: "comm=sh pid=42" gives {"comm": "sh", "pid": "42"}.
func Fields(details string) map[string]string {
	var buf [12]field
	fs := scanFields(buf[:0], details)
	if len(fs) == 0 {
		return nil
	}
	m := make(map[string]string, len(fs))
	for _, f := range fs {
		m[f.key] = f.value
	}
	return m
}

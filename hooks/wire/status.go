package wire

import (
	"bytes"
	"encoding/json"
	"io"
)

// Status kinds, in the order a session reports them.
const (
	// StatusResolved: a target's processes were found (Method, PIDs).
	StatusResolved = "resolved"
	// StatusReady: the hook is attached and events are being buffered; the
	// helper now waits for the plugin's go byte on stdin.
	StatusReady = "ready"
	// StatusStarted: the go byte arrived; data follows on stdout.
	StatusStarted = "started"
	// StatusWarning: something the user should know; the session goes on.
	StatusWarning = "warning"
	// StatusError: the session failed; the helper exits non-zero after it.
	StatusError = "error"
	// StatusStats: final statistics, the last line of every session.
	StatusStats = "stats"
	// StatusTargetAdded: a target joined the session (Control.Add), with
	// its index.
	StatusTargetAdded = "target-added"
	// StatusTargetEnded: one target's stream ended (its processes are gone,
	// it was removed, or it failed: Message says which) while others go on.
	StatusTargetEnded = "target-ended"
)

// Status is one line the helper writes on stderr. Every line starts with
// statusMarker so the plugin can tell it from anything else a tool prints.
type Status struct {
	Kind    string  `json:"ktrace"`
	Message string  `json:"message,omitempty"`
	Target  *Target `json:"target,omitempty"`
	// Index is the target's index in the session (Request.Targets order,
	// then the order of Control.Add); set on per-target lines.
	Index *int `json:"index,omitempty"`
	// Failed marks a StatusTargetEnded that is a failure.
	Failed bool `json:"failed,omitempty"`
	// Method says how the target was found ("proc-cgroup", …).
	Method string `json:"method,omitempty"`
	PIDs   []int  `json:"pids,omitempty"`
	// Events and Lost are totals over the session; Lost counts what the
	// kernel dropped (ftrace overruns, ring buffer reservations that failed).
	Events  uint64  `json:"events,omitempty"`
	Lost    uint64  `json:"lost,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
	// Ended says why a session stopped by itself ("max events reached").
	Ended    string `json:"ended,omitempty"`
	ExitCode int    `json:"exitCode,omitempty"`
	// Clock, on "started" and "stats", names the clock of the events'
	// Time (ClockMonotonic, ClockRealtime); absent when the hook's clock
	// cannot be related to the wall clock.
	Clock string `json:"clock,omitempty"`
	// ClockOffset, with Clock, is what to add to an event's Time, in
	// nanoseconds, for the node's wall-clock time (CLOCK_REALTIME), as the
	// helper measured it when it wrote the line (to within a few
	// microseconds). It is 0 for ClockRealtime, and may drift by a few
	// microseconds a second while the node's clock is being slewed: the
	// "stats" line has it again, measured at the end.
	ClockOffset int64 `json:"clockOffset,omitempty"`
}

// Clocks of an event's Time (Status.Clock).
const (
	// ClockMonotonic is CLOCK_MONOTONIC, in seconds since the node booted
	// (minus the time it was suspended): the eBPF hooks' bpf_ktime_get_ns
	// and the ftrace hooks' instance with trace_clock "mono".
	ClockMonotonic = "monotonic"
	// ClockRealtime is CLOCK_REALTIME, in seconds since the Unix epoch:
	// tcpdump's packet times.
	ClockRealtime = "realtime"
)

var statusMarker = []byte(`{"ktrace":`)

// WriteStatus writes s as one line.
func WriteStatus(w io.Writer, s Status) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// ParseStatus returns the Status a line carries, or false for any other line.
func ParseStatus(line []byte) (Status, bool) {
	var s Status
	if !bytes.HasPrefix(bytes.TrimSpace(line), statusMarker) {
		return s, false
	}
	if err := json.Unmarshal(line, &s); err != nil || s.Kind == "" {
		return s, false
	}
	return s, true
}

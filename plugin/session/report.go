package session

import (
	"fmt"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Reporter observes a session while it runs: progress for people, and the
// state of each target and helper. The terminal prints it on stderr; a
// session that runs in the cluster can keep it in its record instead.
// Calls come from several goroutines; nothing in them may block for long.
type Reporter interface {
	// Note is one line of progress, a warning, or a line the helper's tool
	// printed.
	Note(Note)
	// Target is a change in one target's state.
	Target(TargetChange)
	// Helper is a change in one helper's state.
	Helper(HelperChange)
	// Progress is called about four times a second while the session runs.
	Progress(Progress)
}

// Level says what kind of line a Note is.
type Level int

const (
	// Step is progress: what the session is doing.
	Step Level = iota
	// Done is a step that completed.
	Done
	// Warning is something the user should know even when progress is hidden.
	Warning
	// Tool is a line a tool in the helper printed on its stderr, as it was.
	Tool
)

// Note is one line for people, without a trailing newline.
type Note struct {
	Level Level
	Text  string
}

// TargetState is what happened to a target.
type TargetState string

const (
	// TargetFound: the helper found the target's processes (Processes,
	// Method), or for a whole node says what it traces (Message).
	TargetFound TargetState = "found"
	// TargetJoined: a pod started to match a followed source.
	TargetJoined TargetState = "joined"
	// TargetTracing: a target that joined is traced by a running helper.
	TargetTracing TargetState = "tracing"
	// TargetEnded: the target's stream ended (Message says why, Failed
	// whether it failed) while the session goes on.
	TargetEnded TargetState = "ended"
	// TargetLeft: a followed pod went away (Target has its namespace, name
	// and UID only).
	TargetLeft TargetState = "left"
)

// TargetChange is one target's new state.
type TargetChange struct {
	Target    wire.Target
	State     TargetState
	Message   string
	Failed    bool
	Processes int
	Method    string
}

// HelperState is what happened to a helper.
type HelperState string

const (
	// HelperAttached: the helper is attached and traces.
	HelperAttached HelperState = "attached"
	// HelperEnded: the helper ended and is removed (Err says how it failed).
	HelperEnded HelperState = "ended"
)

// HelperChange is one helper's new state.
type HelperChange struct {
	// Node is where the helper runs; Name is its pod's or container's name.
	Node, Name string
	State      HelperState
	Err        error
}

// Progress is the session's counts so far.
type Progress struct {
	// Events is the records of text or JSON delivered to the outputs so
	// far, over every target (pcap is not counted).
	Events uint64
}

// report is the engine's side of the Reporter: it formats, and a nil
// Reporter hears nothing.
type report struct{ r Reporter }

func (p report) note(l Level, format string, args ...any) {
	if p.r != nil {
		p.r.Note(Note{Level: l, Text: fmt.Sprintf(format, args...)})
	}
}

func (p report) step(format string, args ...any) { p.note(Step, format, args...) }
func (p report) done(format string, args ...any) { p.note(Done, format, args...) }
func (p report) warn(format string, args ...any) { p.note(Warning, format, args...) }

func (p report) tool(line string) {
	if p.r != nil {
		p.r.Note(Note{Level: Tool, Text: line})
	}
}

func (p report) target(c TargetChange) {
	if p.r != nil {
		p.r.Target(c)
	}
}

func (p report) helper(c HelperChange) {
	if p.r != nil {
		p.r.Helper(c)
	}
}

func (p report) progress(pr Progress) {
	if p.r != nil {
		p.r.Progress(pr)
	}
}

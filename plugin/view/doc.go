// Package view draws the rows of an aggregating hook (runqlat,
// syscall-top, any hook whose descriptor has a hooks.View) the way a
// person at a terminal wants them: a log2 histogram with bars, or a table
// redrawn in place each interval, instead of one line per row.
//
// It is pure: it takes the helper's decoded events (or its -o json lines),
// the hook's descriptor, the terminal's size and the styles built from the
// stdout renderer, and writes frames to an io.Writer. It never looks at a
// file descriptor or the environment, and imports no Linux-only code.
//
// # When a view is drawn
//
// Use decides from --view (Lines, Table, Auto) and where stdout goes. Auto
// draws only on a terminal with -o text and no --output-dir, and only for
// a hook with a view; a pipe, a file, --output-dir and -o json keep the
// line format exactly. Table draws the view wherever stdout goes (frames
// one after the other when it is not a terminal) and refuses -o json,
// --output-dir and hooks without a view.
//
// # When an interval is complete
//
// The helper emits the rows of one flush together: every row of every
// target of one helper carries the flush's kernel time (hooks/ebpf
// flush_linux.go calls now() once per flush), and the next flush's rows a
// later one. Rows of one flush may still arrive in several reads (the
// helper's output spool is flushed on a timer, frames are per target), so
// "arrived together" is not a boundary. Without more, a target's interval
// is known complete only when a row of the next flush arrives, or at the
// end of the stream, which is exact but one interval late, and an interval
// without rows is not seen at all.
//
// A mark makes it exact and on time: after a target's rows of each flush
// the helper sends one event with Event "interval_end", the flush's Time,
// the target's Node, Namespace, Pod and Container, and Fields {"rows":
// "<n>"}, n the rows of that target in that flush (0 for an interval in
// which nothing was counted). The Screen completes the interval at the
// mark, shows an empty interval as such, and flags one with fewer rows
// than announced (a limit ended the session mid-flush). It also completes
// intervals by the rule above, so it works with a helper that sends no
// marks. The wire addition that asks for marks (a Request field, so an
// older helper refuses it rather than leave the view waiting) is described
// in the report of issue 14; markEvent names the event until it moves to
// package wire.
//
// # Frames
//
// A histogram is printed for each target's interval once it is complete,
// after the ones before it (bcc's runqlat with an interval), and at the
// end the whole session's histogram of each target that had several
// intervals: every bucket with counts is sent, so those sums are exact.
//
// A table shows each target's latest interval: one table with a target
// column when several targets fit without losing a column, else one
// section per target. On a terminal it is redrawn over the one before
// (cursor up, each line erased to its end, what is left erased below);
// elsewhere each frame follows the one before. The last one stays at the
// end. Rows sent are the helper's top rows per target, so %TIME is the
// share of the target's time in those rows.
//
// A narrow terminal drops a table's columns (TOTAL, %TIME, RATE/s, AVG in
// that order) after cutting the target and key columns, and a histogram's
// percentages before its bars shrink; no line is ever wider than the
// terminal. A table is cut to the terminal's height so that a redraw
// never scrolls. Everything a workload or the kernel names (targets,
// syscall names) is escaped of control characters before it is drawn.
package view

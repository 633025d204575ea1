package session

import (
	"bytes"
	"sync"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// statusWriter receives the helper's stderr. It reports the helper's
// status lines, passes any other line on as the tool's, and remembers what
// the stream needs to decide how it ended.
type statusWriter struct {
	report report
	// started is called when the helper says it traces; target with its
	// per-target lines (added, ended).
	started func()
	target  func(wire.Status)

	mu      sync.Mutex
	partial []byte
	stats   *wire.Status
	errs    []string
}

func newStatusWriter(r report, started func(), target func(wire.Status)) *statusWriter {
	return &statusWriter{report: r, started: started, target: target}
}

func (w *statusWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.line(w.partial[:i+1])
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

// flush takes a last line that had no newline.
func (w *statusWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.partial) > 0 {
		w.line(append(w.partial, '\n'))
		w.partial = nil
	}
}

func (w *statusWriter) line(line []byte) {
	s, ok := wire.ParseStatus(line)
	if !ok {
		w.report.tool(string(line[:len(line)-1]))
		return
	}
	switch s.Kind {
	case wire.StatusResolved:
		if s.Target != nil {
			w.report.target(TargetChange{Target: *s.Target, State: TargetFound, Message: s.Message, Processes: len(s.PIDs), Method: s.Method})
		}
	case wire.StatusStarted:
		w.started()
	case wire.StatusWarning:
		w.report.warn("%s", s.Message)
	case wire.StatusError:
		w.errs = append(w.errs, s.Message)
	case wire.StatusStats:
		w.stats = &s
	case wire.StatusTargetAdded, wire.StatusTargetEnded:
		w.target(s)
	}
}

// result returns the final statistics (nil when none came) and the helper's
// error messages.
func (w *statusWriter) result() (*wire.Status, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats, append([]string(nil), w.errs...)
}

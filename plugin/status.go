package plugin

import (
	"bytes"
	"sync"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// statusWriter receives the helper's stderr. It renders the helper's status
// lines for people, passes any other line through unchanged, and remembers
// what the session needs to decide how it ended.
type statusWriter struct {
	ui   *ui
	hook string

	mu      sync.Mutex
	partial []byte
	started chan struct{}
	stats   *wire.Status
	errs    []string
	// onTarget receives per-target lines (added, ended).
	onTarget func(wire.Status)
}

func newStatusWriter(u *ui, hook string) *statusWriter {
	return &statusWriter{ui: u, hook: hook, started: make(chan struct{})}
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

// flush writes a last line that had no newline.
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
		w.ui.passthrough(line)
		return
	}
	switch s.Kind {
	case wire.StatusResolved:
		if s.Target != nil && s.Target.IsNode() {
			// Nothing to find on a whole node: say what is traced.
			w.ui.ok("tracing %s: %s", s.Target, s.Message)
		} else if s.Target != nil {
			w.ui.ok("found %s: %d processes (%s)", s.Target, len(s.PIDs), s.Method)
		}
	case wire.StatusStarted:
		w.ui.ok("attached: tracing with hook %s, Ctrl-C to stop", w.hook)
		select {
		case <-w.started:
		default:
			close(w.started)
		}
	case wire.StatusWarning:
		w.ui.warn("%s", s.Message)
	case wire.StatusError:
		w.errs = append(w.errs, s.Message)
	case wire.StatusStats:
		w.stats = &s
	case wire.StatusTargetAdded, wire.StatusTargetEnded:
		if w.onTarget != nil {
			w.onTarget(s)
		}
	}
}

// result returns the final statistics (nil when none came) and the helper's
// error messages.
func (w *statusWriter) result() (*wire.Status, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats, append([]string(nil), w.errs...)
}

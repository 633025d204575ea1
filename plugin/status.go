package plugin

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/ktrace-dev/kubectl-trace/hooks"
)

// statusWriter receives the helper's stderr. It renders the helper's status
// lines for people, passes any other line through unchanged, and remembers
// what the session needs to decide how it ended.
type statusWriter struct {
	out  io.Writer
	hook string

	mu      sync.Mutex
	partial []byte
	started chan struct{}
	stats   *hooks.Status
	errs    []string
}

func newStatusWriter(out io.Writer, hook string) *statusWriter {
	return &statusWriter{out: out, hook: hook, started: make(chan struct{})}
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
	s, ok := hooks.ParseStatus(line)
	if !ok {
		_, _ = w.out.Write(line)
		return
	}
	switch s.Kind {
	case hooks.StatusResolved:
		if s.Target != nil {
			fmt.Fprintf(w.out, "found %s: %d processes (%s)\n", s.Target, len(s.PIDs), s.Method)
		}
	case hooks.StatusStarted:
		fmt.Fprintf(w.out, "tracing with hook %s: Ctrl-C to stop\n", w.hook)
		select {
		case <-w.started:
		default:
			close(w.started)
		}
	case hooks.StatusWarning:
		fmt.Fprintf(w.out, "warning: %s\n", s.Message)
	case hooks.StatusError:
		w.errs = append(w.errs, s.Message)
	case hooks.StatusStats:
		w.stats = &s
		fmt.Fprintf(w.out, "%s: %d events, %d lost, %.1fs\n", w.hook, s.Events, s.Lost, s.Seconds)
	}
}

// result returns the final statistics (nil when none came) and the helper's
// error messages.
func (w *statusWriter) result() (*hooks.Status, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats, append([]string(nil), w.errs...)
}

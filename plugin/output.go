package plugin

import (
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/term"
)

// isTerminal says whether w is a terminal, where binary data must not go.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// stopOnErrorWriter passes trace data to stdout. When stdout breaks (the
// reader of `| head` went away) it asks the session to stop and swallows
// the rest, so the helper still ends cleanly and is deleted.
type stopOnErrorWriter struct {
	w      io.Writer
	once   sync.Once
	broken chan struct{}
	mu     sync.Mutex
	failed bool
	lines  atomic.Uint64
}

// records counts the lines of trace data passed so far.
func (s *stopOnErrorWriter) records() uint64 { return s.lines.Load() }

func newStopOnErrorWriter(w io.Writer) *stopOnErrorWriter {
	return &stopOnErrorWriter{w: w, broken: make(chan struct{})}
}

func (s *stopOnErrorWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed {
		return len(p), nil
	}
	s.lines.Add(countLines(p))
	if _, err := s.w.Write(p); err != nil {
		s.failed = true
		s.once.Do(func() { close(s.broken) })
	}
	return len(p), nil
}

package plugin

import (
	"bytes"
	"hash/fnv"
	"io"
	"os"
	"sync"

	"github.com/charmbracelet/lipgloss"
	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/plugin/session"
	"golang.org/x/term"
)

// isTerminal says whether w is a terminal, where binary data must not go.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// stdoutOutput is the session's output on the user's stdout: every
// target's records merged, each text line prefixed with its target when
// several share the stream (stern's style).
type stdoutOutput struct {
	out    *stopOnErrorWriter
	text   bool
	styles styles
}

func newStdoutOutput(out *stopOnErrorWriter, format string, s styles) *stdoutOutput {
	return &stdoutOutput{out: out, text: format == hooks.OutputText, styles: s}
}

// Open returns t's writer; merged text lines carry t's label.
func (o *stdoutOutput) Open(t wire.Target, merged bool) (session.TargetWriter, error) {
	w := &stdoutTarget{out: o.out}
	if merged && o.text {
		w.prefix = prefixFor(o.styles, t)
	}
	return w, nil
}

// Close leaves stdout open: it is the user's.
func (o *stdoutOutput) Close() error { return nil }

// stdoutTarget is one target's records on stdout.
type stdoutTarget struct {
	out    *stopOnErrorWriter
	prefix string
	buf    bytes.Buffer
}

func (w *stdoutTarget) Write(p []byte) error {
	if w.prefix == "" {
		_, err := w.out.Write(p)
		return err
	}
	w.buf.Reset()
	for len(p) > 0 {
		line := p
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			line, p = p[:i+1], p[i+1:]
		} else {
			p = nil
		}
		w.buf.WriteString(w.prefix)
		w.buf.Write(line)
	}
	_, err := w.out.Write(w.buf.Bytes())
	return err
}

// prefixColors are the prefix colours, picked by a hash of the pod name so
// a pod keeps its colour across runs.
var prefixColors = []string{"1", "2", "3", "4", "5", "6", "9", "10", "11", "12", "13", "14"}

// prefixFor is t's label in its colour, and a space.
func prefixFor(s styles, t wire.Target) string {
	h := fnv.New32a()
	key := t.Pod
	if t.IsNode() {
		key = t.Label()
	}
	_, _ = h.Write([]byte(key))
	style := s.step.Foreground(lipgloss.Color(prefixColors[int(h.Sum32())%len(prefixColors)]))
	return style.Render(t.Label()) + " "
}

// stopOnErrorWriter passes trace data to stdout, one write at a time.
// When stdout breaks (the reader of `| head` went away) it closes broken,
// so that the session stops, and swallows the rest, so that the helpers
// still end cleanly and are deleted.
type stopOnErrorWriter struct {
	w      io.Writer
	broken chan struct{}
	mu     sync.Mutex
	failed bool
}

func newStopOnErrorWriter(w io.Writer) *stopOnErrorWriter {
	return &stopOnErrorWriter{w: w, broken: make(chan struct{})}
}

func (s *stopOnErrorWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed {
		return len(p), nil
	}
	if _, err := s.w.Write(p); err != nil {
		s.failed = true
		close(s.broken)
	}
	return len(p), nil
}

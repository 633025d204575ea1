package runner

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"sync"

	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// statusWriter writes wire.Status lines from several goroutines. While
// hold is set it keeps them, in order, until release.
type statusWriter struct {
	mu   sync.Mutex
	w    io.Writer
	hold bool
	held [][]byte
}

func (s *statusWriter) write(st wire.Status) {
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	s.put(append(b, '\n'), false)
}

// writeNow writes st at once, even while others are held.
func (s *statusWriter) writeNow(st wire.Status) {
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	s.put(append(b, '\n'), true)
}

// line writes a line a tool printed, as it is, between status lines.
func (s *statusWriter) line(l string) {
	s.put([]byte(strings.TrimRight(l, "\n")+"\n"), false)
}

func (s *statusWriter) put(b []byte, now bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold && !now {
		s.held = append(s.held, b)
		return
	}
	// A failing stderr means the plugin is gone; nothing is left to tell.
	_, _ = s.w.Write(b)
}

// release writes what was held and stops holding.
func (s *statusWriter) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.held {
		_, _ = s.w.Write(b)
	}
	s.held, s.hold = nil, false
}

// stdinWatch follows the plugin's end of stdin: goByte closes at the first
// byte, eof when stdin ends (or fails); the bytes after the first are cut
// into lines (control messages) for lines.
type stdinWatch struct {
	goByte chan struct{}
	eof    chan struct{}
	lines  chan []byte
	quit   chan struct{}
	once   sync.Once
}

// maxControlLine bounds a control line; a longer one is dropped whole.
const maxControlLine = 64 << 10

func watchStdin(r io.Reader) *stdinWatch {
	w := &stdinWatch{goByte: make(chan struct{}), eof: make(chan struct{}),
		lines: make(chan []byte, 16), quit: make(chan struct{})}
	go func() {
		defer close(w.lines)
		buf := make([]byte, 4096)
		got := false
		var pending []byte
		tooLong := false
		for {
			n, err := r.Read(buf)
			p := buf[:n]
			if n > 0 && !got {
				got = true
				close(w.goByte)
				p = p[1:]
			}
			for len(p) > 0 {
				i := bytes.IndexByte(p, '\n')
				if i < 0 {
					pending = append(pending, p...)
					if len(pending) > maxControlLine {
						pending, tooLong = pending[:0], true
					}
					break
				}
				line := append(pending, p[:i]...)
				pending, p = nil, p[i+1:]
				if tooLong {
					tooLong = false
					line = []byte("(a line too long)")
				}
				select {
				case w.lines <- line:
				case <-w.quit:
					return
				}
			}
			if err != nil {
				close(w.eof)
				return
			}
		}
	}()
	return w
}

// close lets the watcher go when nobody reads its lines any more.
func (w *stdinWatch) close() { w.once.Do(func() { close(w.quit) }) }

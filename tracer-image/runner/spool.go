package runner

import (
	"io"
	"sync"
)

// Spool sizes: stdout is written in chunks of up to spoolChunk bytes, and
// up to spoolChunks of them wait for a slow stdout (16 MiB: at 300k events
// a second of about 250 bytes, 0.2 s of a stalled attach stream).
const (
	spoolChunk  = 256 << 10
	spoolChunks = 64
)

// spool is stdout's buffer: it hands the data in large chunks to a writer
// goroutine, so that the hook's reader goes on draining the kernel while
// the attach stream (containerd, kubelet, the API server) stalls or catches
// up, and so that encoding and writing run on both CPUs. A stall costs
// memory first; once spoolChunks chunks wait, Write blocks, the kernel's
// buffers fill and it counts what it drops: loss stays reported, never
// silent. Write and flush are not safe for concurrent use (output's mutex
// orders them); a write error shows in a later Write, flush or close.
type spool struct {
	buf     []byte      // the chunk being filled
	full    chan []byte // chunks to write, in order
	free    chan []byte // written chunks, to fill again
	done    chan struct{}
	errMu   sync.Mutex
	err     error
	writing bool // the writer goroutine runs (false after close)
}

func newSpool(w io.Writer) *spool {
	growPipe(w)
	s := &spool{
		full:    make(chan []byte, spoolChunks),
		free:    make(chan []byte, spoolChunks+1),
		done:    make(chan struct{}),
		writing: true,
	}
	go s.writer(w)
	return s
}

func (s *spool) writer(w io.Writer) {
	defer close(s.done)
	for b := range s.full {
		if s.failed() == nil {
			if _, err := w.Write(b); err != nil {
				s.errMu.Lock()
				s.err = err
				s.errMu.Unlock()
			}
		}
		// After an error the chunks are dropped, not written: Write
		// reports the error and must not block behind them.
		select {
		case s.free <- b[:0]:
		default:
		}
	}
}

func (s *spool) failed() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Write copies p into the spool; it blocks only while spoolChunks chunks
// wait to be written.
func (s *spool) Write(p []byte) (int, error) {
	if err := s.failed(); err != nil {
		return 0, err
	}
	if !s.writing {
		return 0, io.ErrClosedPipe
	}
	n := len(p)
	for len(p) > 0 {
		if s.buf == nil {
			select {
			case s.buf = <-s.free:
			default:
				s.buf = make([]byte, 0, spoolChunk)
			}
		}
		c := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf, p = s.buf[:len(s.buf)+c], p[c:]
		if len(s.buf) == cap(s.buf) {
			s.handoff()
		}
	}
	return n, nil
}

// handoff queues the chunk being filled for the writer.
func (s *spool) handoff() {
	if len(s.buf) == 0 {
		return
	}
	s.full <- s.buf
	s.buf = nil
}

// Buffered is what waits for the next Flush.
func (s *spool) Buffered() int { return len(s.buf) }

// Flush queues what is buffered; it does not wait for it to be written.
func (s *spool) Flush() error {
	if err := s.failed(); err != nil {
		return err
	}
	if s.writing {
		s.handoff()
	}
	return nil
}

// close writes everything queued, waits for it, and returns the first
// write error.
func (s *spool) close() error {
	if s.writing {
		s.handoff()
		s.writing = false
		close(s.full)
		<-s.done
	}
	return s.failed()
}

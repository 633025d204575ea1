package runner

import (
	"bufio"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
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
// up, and so that encoding on one side and compressing and writing on the
// other run on both CPUs. A stall costs memory first; once spoolChunks
// chunks wait, Write blocks, the kernel's buffers fill and it counts what
// it drops: loss stays reported, never silent. Write and Flush are not
// safe for concurrent use (output's mutex orders them); a write error
// shows in a later Write, Flush or close.
type spool struct {
	w       io.Writer  // stdout
	buf     []byte     // the chunk being filled
	full    chan chunk // chunks to write, in order
	free    chan []byte
	done    chan struct{}
	errMu   sync.Mutex
	err     error
	writing bool // the writer goroutine runs (false after close)
	// pending: chunks went to a compressor since the last flush.
	pending bool

	// z, set before the first chunk, compresses in the writer goroutine
	// into zbuf, in front of stdout.
	z    *flate.Writer
	zbuf *bufio.Writer
}

// chunk is one piece of the stream; flush asks the writer to push
// everything so far through the compressor to stdout.
type chunk struct {
	b     []byte
	flush bool
}

func newSpool(w io.Writer) *spool {
	growPipe(w)
	s := &spool{
		w:       w,
		full:    make(chan chunk, spoolChunks),
		free:    make(chan []byte, spoolChunks+1),
		done:    make(chan struct{}),
		writing: true,
	}
	go s.writer()
	return s
}

// setCompressed makes the stream one DEFLATE stream (Request.Compress),
// sync-flushed at every Flush so that what was written so far can be
// inflated at once. Call it before the first Write.
func (s *spool) setCompressed() {
	// klauspost's DEFLATE at its fastest level: standard DEFLATE that the
	// plugin inflates with compress/flate, at about 650 MB/s a CPU here
	// (the standard library's: 380) and a tenth of JSON's bytes.
	s.zbuf = bufio.NewWriterSize(s.w, spoolChunk)
	s.z, _ = flate.NewWriter(s.zbuf, flate.BestSpeed)
}

// writer writes the chunks. It reads z only after a chunk or the close,
// which come after setCompressed.
func (s *spool) writer() {
	defer close(s.done)
	for c := range s.full {
		if s.failed() == nil {
			if err := s.put(c); err != nil {
				s.setErr(err)
			}
		}
		// After an error the chunks are dropped, not written: Write
		// reports the error and must not block behind them.
		if c.b != nil {
			select {
			case s.free <- c.b[:0]:
			default:
			}
		}
	}
	if s.z != nil && s.failed() == nil {
		err := s.z.Close()
		if err == nil {
			err = s.zbuf.Flush()
		}
		if err != nil {
			s.setErr(err)
		}
	}
}

func (s *spool) put(c chunk) error {
	if s.z == nil {
		_, err := s.w.Write(c.b)
		return err
	}
	if _, err := s.z.Write(c.b); err != nil {
		return err
	}
	if !c.flush {
		return nil
	}
	if err := s.z.Flush(); err != nil {
		return err
	}
	return s.zbuf.Flush()
}

func (s *spool) setErr(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.err == nil {
		s.err = err
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
			s.handoff(false)
		}
	}
	return n, nil
}

// handoff queues the chunk being filled for the writer; flush also asks
// for everything to be pushed through to stdout.
func (s *spool) handoff(flush bool) {
	flush = flush && s.z != nil && (len(s.buf) > 0 || s.pending)
	if len(s.buf) == 0 && !flush {
		return
	}
	s.full <- chunk{b: s.buf, flush: flush}
	s.buf = nil
	s.pending = s.z != nil && !flush
}

// Flush queues what is buffered, to be written (and, compressed, flushed)
// as soon as the writer gets to it; it does not wait for that.
func (s *spool) Flush() error {
	if err := s.failed(); err != nil {
		return err
	}
	if s.writing {
		s.handoff(true)
	}
	return nil
}

// close writes everything queued, waits for it, and returns the first
// write error.
func (s *spool) close() error {
	if s.writing {
		s.handoff(false)
		s.writing = false
		close(s.full)
		<-s.done
	}
	return s.failed()
}

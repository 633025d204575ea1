package session

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// decoding is the way of a helper's stdout to the outputs: inflated when
// the request asked for compression, then split into frames, one target's
// records each, when it asked for frames; otherwise all of it is the one
// target's.
type decoding struct {
	// in is what the attach writes the helper's stdout to.
	in          io.Writer
	demuxDone   chan error
	inflateDone chan error
	// pipe feeds the demultiplexer; nil when not framed.
	pipe *io.PipeWriter
	// last holds an unframed stream's unfinished line.
	last *recordWriter
}

// decode builds the way for this helper's request. A stream that cannot be
// resynchronised (a corrupt frame or deflate stream) calls cancel: the
// session ends rather than hangs on it.
func (h *stream) decode(cancel context.CancelFunc) *decoding {
	d := &decoding{demuxDone: make(chan error, 1), inflateDone: make(chan error, 1)}
	if h.plan.Request.Framed {
		pr, pw := io.Pipe()
		d.in, d.pipe = pw, pw
		go func() {
			err := h.demux(pr)
			_ = pr.CloseWithError(err)
			if err != nil {
				cancel()
			}
			d.demuxDone <- err
		}()
	} else {
		d.last = &recordWriter{out: h.writers[0], whole: h.s.cfg.Format != hooks.OutputPCAP}
		d.in = d.last
		d.demuxDone <- nil
	}
	if h.plan.Request.Compress {
		d.in = inflating(d.in, cancel, d.inflateDone)
	} else {
		d.inflateDone <- nil
	}
	return d
}

// wait returns once everything the attach wrote has reached the outputs,
// with what went wrong on the way.
func (d *decoding) wait() error {
	err := errors.Join(<-d.inflateDone, <-d.demuxDone)
	if d.last != nil {
		err = errors.Join(err, d.last.flush())
	}
	return err
}

// waitDemux waits for the demultiplexer only, after the attach ended.
func (d *decoding) waitDemux() { <-d.demuxDone }

// close ends the demultiplexer's input, if the attach has not.
func (d *decoding) close() {
	if d.pipe != nil {
		_ = d.pipe.Close()
	}
}

// inflating returns the writer the attach writes the helper's compressed
// stdout to; a goroutine inflates it into out, in large writes, and closes
// out (when it is a pipe) once the stream ends. A stream cut short ends
// what arrived, as an uncompressed one would; a corrupt one cannot be
// resynchronised: it ends the session, and the error goes to done.
func inflating(out io.Writer, cancel context.CancelFunc, done chan<- error) *io.PipeWriter {
	pr, pw := io.Pipe()
	go func() {
		zr := flate.NewReader(bufio.NewReaderSize(pr, 256<<10))
		_, err := io.CopyBuffer(out, zr, make([]byte, 256<<10))
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("inflating the helper's output: %w", err)
			cancel()
		}
		_ = pr.CloseWithError(err)
		if w, ok := out.(*io.PipeWriter); ok {
			_ = w.Close()
		}
		done <- err
	}()
	return pw
}

// demux reads frames and hands each target's records to its outputs.
func (h *stream) demux(r io.Reader) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var buf []byte
	for {
		idx, payload, nb, err := wire.ReadFrame(br, buf)
		buf = nb
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		w, ok := h.writer(idx)
		if !ok {
			return fmt.Errorf("frame for unknown target %d", idx)
		}
		if err := w.write(payload); err != nil {
			return err
		}
	}
}

// recordWriter hands an unframed stream, written in pieces of any size, to
// its one target in whole lines (whole), or as it comes (pcap).
type recordWriter struct {
	out     *targetOut
	whole   bool
	partial []byte
}

func (w *recordWriter) Write(p []byte) (int, error) {
	if !w.whole {
		return len(p), w.out.write(p)
	}
	i := bytes.LastIndexByte(p, '\n')
	if i < 0 {
		w.partial = append(w.partial, p...)
		return len(p), nil
	}
	rec := p[:i+1]
	if len(w.partial) > 0 {
		rec = append(w.partial, rec...)
	}
	err := w.out.write(rec)
	w.partial = append(w.partial[:0], p[i+1:]...)
	return len(p), err
}

// flush writes an unfinished last line.
func (w *recordWriter) flush() error {
	if len(w.partial) == 0 {
		return nil
	}
	p := w.partial
	w.partial = nil
	return w.out.write(p)
}

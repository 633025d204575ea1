package runner

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
)

// output writes events to stdout, buffered, and flushes at least every
// flushEvery so that a slow trace still shows up promptly.
type output struct {
	mu     sync.Mutex
	w      *bufio.Writer
	format string
	enc    *json.Encoder
	line   []byte
	err    error // the first write error; every emit after it fails

	stop chan struct{}
	done chan struct{}
}

func newOutput(w io.Writer, format string, flushEvery time.Duration) *output {
	o := &output{
		w:      bufio.NewWriterSize(w, 64<<10),
		format: format,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	o.enc = json.NewEncoder(o.w)
	o.enc.SetEscapeHTML(false) // "<idle>", not "\u003cidle\u003e"
	go o.flusher(flushEvery)
	return o
}

func (o *output) flusher(every time.Duration) {
	defer close(o.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
			o.mu.Lock()
			if o.err == nil && o.w.Buffered() > 0 {
				o.err = o.w.Flush()
			}
			o.mu.Unlock()
		}
	}
}

// emit writes one event; it is an EmitFunc.
func (o *output) emit(ev *hooks.Event, details string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	if o.format == hooks.OutputJSON {
		o.err = o.enc.Encode(ev)
	} else {
		o.line = appendText(o.line[:0], ev, details)
		_, o.err = o.w.Write(o.line)
	}
	if o.err != nil {
		o.err = fmt.Errorf("writing trace data: %w", o.err)
	}
	return o.err
}

// close stops the flusher and flushes what is left.
func (o *output) close() error {
	close(o.stop)
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		if err := o.w.Flush(); err != nil {
			o.err = fmt.Errorf("writing trace data: %w", err)
		}
	}
	return o.err
}

// appendText formats one event as a text line:
//
//	<seconds, 6 decimals> [<cpu, 3 digits>] <comm>-<pid> <event>: <details>
//
// where comm-pid is the traced task (the target's side of the event), with
// any blank in comm written as '_' so the line splits on blanks, and details
// is the kernel's own text.
func appendText(b []byte, ev *hooks.Event, details string) []byte {
	b = strconv.AppendFloat(b, ev.Time, 'f', 6, 64)
	b = append(b, " ["...)
	switch {
	case ev.CPU < 10:
		b = append(b, "00"...)
	case ev.CPU < 100:
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, int64(ev.CPU), 10)
	b = append(b, "] "...)
	for i := 0; i < len(ev.Comm); i++ {
		c := ev.Comm[i]
		if c == ' ' || c == '\t' || c == '\n' {
			c = '_'
		}
		b = append(b, c)
	}
	if ev.Comm == "" {
		b = append(b, "<...>"...)
	}
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(ev.PID), 10)
	b = append(b, ' ')
	b = append(b, ev.Event...)
	b = append(b, ": "...)
	b = append(b, details...)
	return append(b, '\n')
}

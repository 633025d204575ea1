package runner

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Why a limit of the request ended a session (wire.Status.Ended).
const (
	endedMaxEvents = "max events reached"
	endedMaxSize   = "max size reached"
	// endedTarget: the session's only target ended by itself (its
	// processes are gone) in a session that is not framed.
	endedTarget = "target ended"
)

// output writes trace data to stdout through a spool, and flushes at least
// every flushEvery so that a slow trace still shows up promptly. It writes whole
// records only (an event's line, a pcap record), counts them, and applies
// the request's limits: once one is reached it calls onLimit (which stops
// the session) and drops everything after.
type output struct {
	mu     sync.Mutex
	spool  *spool
	format string
	enc    wire.EventEncoder
	line   []byte // the record being formatted
	err    error  // the first write error; every emit after it fails

	maxEvents, maxBytes int64
	minRecord           int64 // the smallest record there can be: 16 for pcap
	onLimit             func()
	events, bytes       int64  // records (the pcap header is none) and bytes written
	ended               string // the limit that ended the session
	stopped             string // why the session was stopped without a limit (stopSession)

	// framed writes every record in a frame (wire.WriteFrame) tagged
	// with its target's session index; records of one target in a row
	// share a frame, written when another target's record comes, when it
	// is full or at a flush.
	framed   bool
	frame    []byte
	frameIdx int
	// index returns the session index of an event's target, false to
	// drop the event (its target was removed or ended); nil is index 0.
	index func(ev *wire.Event) (int, bool)
	// text fills a JSON event's Text with the line text output shows
	// (Request.Text), unless its hook did.
	text    bool
	textBuf []byte

	stop chan struct{}
	done chan struct{}
}

// maxFrame is the payload size at which a frame is written out.
const maxFrame = 64 << 10

func newOutput(w io.Writer, format string, flushEvery time.Duration) *output {
	o := &output{
		spool:     newSpool(w),
		format:    format,
		minRecord: 1,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if format == hooks.OutputPCAP {
		o.minRecord = pcapRecordLen
	}
	go o.flusher(flushEvery)
	return o
}

// setLimits sets the request's limits (0 is none) and what to call, once,
// when one is reached. Call it before the first record.
func (o *output) setLimits(maxEvents, maxBytes int64, onLimit func()) {
	o.maxEvents, o.maxBytes, o.onLimit = maxEvents, maxBytes, onLimit
}

// setFramed turns framing on; index tells an event's target (see
// output.index). Call it before the first record.
func (o *output) setFramed(index func(ev *wire.Event) (int, bool)) {
	o.framed, o.index = true, index
}

// setText fills a JSON event's Text (Request.Text). Call it before the
// first record.
func (o *output) setText() { o.text = true }

// setCompressed compresses stdout (Request.Compress), in the spool's
// writer goroutine. Call it before the first record.
func (o *output) setCompressed() { o.spool.setCompressed() }

// flush hands what is buffered to stdout's writer. The caller holds mu.
func (o *output) flush() error {
	if err := o.flushFrame(); err != nil {
		return err
	}
	return o.spool.Flush()
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
			if o.err == nil {
				o.err = o.flush()
			}
			o.mu.Unlock()
		}
	}
}

// emit writes one event (attach.Sink.Emit). After a limit ended the
// session it drops the event and returns nil, so the hook drains and stops
// as it would at the end of stdin.
func (o *output) emit(ev *wire.Event, details string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return o.err
	}
	if o.ended != "" {
		return nil
	}
	idx := 0
	if o.index != nil {
		i, ok := o.index(ev)
		if !ok {
			return nil
		}
		idx = i
	}
	if o.format == hooks.OutputJSON {
		if o.text && ev.Text == "" {
			o.textBuf = appendText(o.textBuf[:0], ev, details)
			ev.Text = string(o.textBuf[:len(o.textBuf)-1])
			// ev is the hook's, reused for its next event.
			defer func() { ev.Text = "" }()
		}
		var err error
		if o.line, err = o.enc.AppendJSON(o.line[:0], ev); err != nil {
			o.err = fmt.Errorf("writing trace data: %w", err)
			return o.err
		}
	} else {
		o.line = appendText(o.line[:0], ev, details)
	}
	return o.record(idx, o.line, true)
}

// record writes one whole record of the target with session index idx;
// event says whether it counts as an event (a pcap file header does not, is
// written whatever the size limit and, framed, in a frame of its own). A
// record that would go beyond the size limit is not written: the session
// ends with what fits, and ends at once when no record can fit any more.
// The size limit counts trace data, not frame headers. The caller holds mu.
func (o *output) record(idx int, b []byte, event bool) error {
	if o.err != nil {
		return o.err
	}
	if o.ended != "" {
		return nil
	}
	if event && !o.fits(len(b)) {
		return nil
	}
	if err := o.write(idx, b, !event); err != nil {
		o.err = fmt.Errorf("writing trace data: %w", err)
		return o.err
	}
	o.bytes += int64(len(b))
	if event {
		o.events++
	}
	switch {
	case o.maxEvents > 0 && o.events >= o.maxEvents:
		o.end(endedMaxEvents)
	case o.maxBytes > 0 && o.maxBytes-o.bytes < o.minRecord:
		o.end(endedMaxSize)
	}
	return nil
}

// fits says whether a record of n bytes fits the size limit; when it does
// not, the session ends. The caller holds mu.
func (o *output) fits(n int) bool {
	if o.maxBytes > 0 && o.bytes+int64(n) > o.maxBytes {
		o.end(endedMaxSize)
		return false
	}
	return true
}

// write writes b, framed or not; alone puts it in a frame of its own.
// The caller holds mu.
func (o *output) write(idx int, b []byte, alone bool) error {
	if !o.framed {
		_, err := o.spool.Write(b)
		return err
	}
	if len(o.frame) > 0 && (o.frameIdx != idx || alone || len(o.frame)+len(b) > maxFrame) {
		if err := o.flushFrame(); err != nil {
			return err
		}
	}
	if alone || len(b) > maxFrame {
		return wire.WriteFrame(o.spool, idx, b)
	}
	o.frameIdx = idx
	o.frame = append(o.frame, b...)
	return nil
}

// flushFrame writes the frame being filled, if any. The caller holds mu.
func (o *output) flushFrame() error {
	if len(o.frame) == 0 {
		return nil
	}
	err := wire.WriteFrame(o.spool, o.frameIdx, o.frame)
	o.frame = o.frame[:0]
	return err
}

// endSession ends the session as a limit does, for why, unless it ended.
// stopSession ends the session the way the end of stdin does, for why
// (reported as the stats' Ended): the hook detaches and drains, and what it
// still writes is kept. A target whose processes are gone has its last
// events in the kernel's buffers yet; dropping them, as a limit does, lost
// them silently.
func (o *output) stopSession(why string) {
	o.mu.Lock()
	if o.ended == "" && o.stopped == "" {
		o.stopped = why
	}
	stop := o.onLimit
	o.mu.Unlock()
	if stop != nil {
		stop()
	}
}

func (o *output) end(why string) {
	o.ended = why
	if o.onLimit != nil {
		o.onLimit()
	}
}

// counts returns the records and bytes written and the limit that ended
// the session ("" for none).
func (o *output) counts() (events, size int64, ended string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended == "" {
		return o.events, o.bytes, o.stopped
	}
	return o.events, o.bytes, o.ended
}

// close stops the flusher and flushes what is left.
func (o *output) close() error {
	close(o.stop)
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	err := o.flushFrame()
	// The spool is drained and closed even after an error, so that its
	// writer goroutine ends.
	err = errors.Join(err, o.spool.close())
	if o.err == nil && err != nil {
		o.err = fmt.Errorf("writing trace data: %w", err)
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
func appendText(b []byte, ev *wire.Event, details string) []byte {
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

// rawWriter is the io.Writer a raw hook writes to (attach.Sink.Raw): it cuts the bytes into
// records (lines; or for pcap the 24-byte file header, then records of a
// 16-byte header and caplen bytes) and hands each whole record to the
// output, so a limit never cuts one in two.
type rawWriter struct {
	o       *output
	idx     int         // the target's session index, for frames
	dead    func() bool // the target was removed or ended: drop its bytes
	pcap    bool
	pending []byte // the start of a record not complete yet
	err     error  // the stream is not what its format says

	header bool             // pcap: the file header is through
	order  binary.ByteOrder // pcap: the file's byte order
	maxLen uint32           // pcap: the largest caplen a sane record has
}

func newRawWriter(o *output, format string) *rawWriter {
	return &rawWriter{o: o, pcap: format == hooks.OutputPCAP}
}

// newTargetRawWriter is a rawWriter for one target's bytes: its records
// are framed with session index idx, and dropped once dead says so.
func newTargetRawWriter(o *output, format string, idx int, dead func() bool) *rawWriter {
	return &rawWriter{o: o, idx: idx, dead: dead, pcap: format == hooks.OutputPCAP}
}

// Pcap file magic numbers, as the writer's byte order stores them.
const (
	pcapMagicMicros = 0xa1b2c3d4
	pcapMagicNanos  = 0xa1b23c4d
	pcapngMagic     = 0x0a0d0d0a
	pcapHeaderLen   = 24
	pcapRecordLen   = 16
)

// Write takes any piece of the stream. It fails only when stdout does or
// the stream is not what its format says; after a limit it drops p.
func (r *rawWriter) Write(p []byte) (int, error) {
	r.o.mu.Lock()
	defer r.o.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	if r.o.err != nil {
		return 0, r.o.err
	}
	if r.o.ended != "" || (r.dead != nil && r.dead()) {
		return len(p), nil
	}
	r.pending = append(r.pending, p...)
	used := 0
	for r.o.ended == "" {
		n, event, err := r.next(r.pending[used:])
		if err != nil {
			r.err = err
			return 0, err
		}
		if n == 0 {
			break
		}
		if n < 0 {
			// The length of a record not complete yet: if it cannot fit,
			// the session ends without waiting for the rest.
			r.o.fits(-n)
			break
		}
		if err := r.o.record(r.idx, r.pending[used:used+n], event); err != nil {
			return 0, err
		}
		used += n
	}
	if r.o.ended != "" {
		r.pending = r.pending[:0]
		return len(p), nil
	}
	r.pending = r.pending[:copy(r.pending, r.pending[used:])]
	return len(p), nil
}

// next returns the length of the complete record at the start of b and
// whether it counts as an event; when b holds only part of one, 0 or, once
// the length is known, minus the length.
func (r *rawWriter) next(b []byte) (int, bool, error) {
	if !r.pcap {
		i := bytes.IndexByte(b, '\n')
		return i + 1, true, nil
	}
	if !r.header {
		if len(b) < pcapHeaderLen {
			return 0, false, nil
		}
		switch {
		case binary.LittleEndian.Uint32(b) == pcapMagicMicros || binary.LittleEndian.Uint32(b) == pcapMagicNanos:
			r.order = binary.LittleEndian
		case binary.BigEndian.Uint32(b) == pcapMagicMicros || binary.BigEndian.Uint32(b) == pcapMagicNanos:
			r.order = binary.BigEndian
		case binary.LittleEndian.Uint32(b) == pcapngMagic:
			return 0, false, fmt.Errorf("the hook wrote pcapng, where pcap was expected")
		default:
			return 0, false, fmt.Errorf("the hook's output is not pcap: it starts with %x", b[:4])
		}
		r.maxLen = max(r.order.Uint32(b[16:20]), hooks.TcpdumpMaxSnaplen)
		r.header = true
		return pcapHeaderLen, false, nil
	}
	if len(b) < pcapRecordLen {
		return 0, false, nil
	}
	caplen := r.order.Uint32(b[8:12])
	if caplen > r.maxLen {
		return 0, false, fmt.Errorf("corrupt pcap stream: a record of %d bytes, more than the snapshot length %d", caplen, r.maxLen)
	}
	n := pcapRecordLen + int(caplen)
	if len(b) < n {
		return -n, false, nil
	}
	return n, true, nil
}

// close ends the stream: a last line without its newline is written with
// one; a pcap record cut short is dropped, and its size returned.
func (r *rawWriter) close() (dropped int, err error) {
	r.o.mu.Lock()
	defer r.o.mu.Unlock()
	if len(r.pending) == 0 || r.o.ended != "" || r.o.err != nil || r.err != nil {
		return 0, nil
	}
	if r.pcap {
		dropped, r.pending = len(r.pending), nil
		return dropped, nil
	}
	if r.dead != nil && r.dead() {
		r.pending = nil
		return 0, nil
	}
	err = r.o.record(r.idx, append(r.pending, '\n'), true)
	r.pending = nil
	return 0, err
}

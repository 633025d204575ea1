package wire

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Frames: with Request.Framed, the helper's stdout is a sequence of frames
// so that the plugin can tell the targets' data apart: merged and prefixed
// on the terminal, or one file per target with --output-dir. A frame is
//
//	uint16 target index (big endian) | uint32 payload length | payload
//
// and a payload holds whole records only (lines of text or JSON, pcap
// records; a pcap stream's global header is the first frame of its target).
// A single-target session without --output-dir is not framed: the bytes go
// to the user's stdout untouched.

// frameHeader is the size of a frame's header.
const frameHeader = 6

// MaxFramePayload bounds a frame, so a corrupt length cannot make the
// reader allocate without limit.
const MaxFramePayload = 4 << 20

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, target int, payload []byte) error {
	if target < 0 || target > 0xffff {
		return fmt.Errorf("frame target %d out of range", target)
	}
	if len(payload) > MaxFramePayload {
		return fmt.Errorf("frame payload of %d bytes exceeds %d", len(payload), MaxFramePayload)
	}
	var h [frameHeader]byte
	binary.BigEndian.PutUint16(h[0:2], uint16(target))
	binary.BigEndian.PutUint32(h[2:6], uint32(len(payload)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// ReadFrame reads one frame into buf (grown as needed) and returns the
// target index and the payload, which aliases buf. io.EOF means a clean end
// between frames; io.ErrUnexpectedEOF a stream cut inside one.
func ReadFrame(r io.Reader, buf []byte) (target int, payload, newBuf []byte, err error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, buf, err
	}
	n := binary.BigEndian.Uint32(h[2:6])
	if n > MaxFramePayload {
		return 0, nil, buf, fmt.Errorf("frame of %d bytes exceeds %d: the stream is corrupt", n, MaxFramePayload)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, buf, err
	}
	return int(binary.BigEndian.Uint16(h[0:2])), buf, buf, nil
}

// Control is one message on the helper's stdin after the go byte, one JSON
// object per line. End of stdin still means stop.
type Control struct {
	// Add starts tracing one more target (a pod that began to match the
	// selector); its index is the next free one, announced by a
	// StatusTargetAdded line.
	Add *Target `json:"add,omitempty"`
	// Remove stops tracing the target with this index (its pod went away).
	Remove *int `json:"remove,omitempty"`
	// Stop ends the session as the end of stdin does: detach, drain,
	// report, exit. The plugin stops with this message and keeps stdin open
	// until the helper has exited, because a container runtime may close an
	// attach session's output soon after its stdin ends, which would cut
	// the final report off; the end of stdin stays the dead-man's switch.
	Stop bool `json:"stop,omitempty"`
}

// EncodeControl returns c as one line.
func EncodeControl(c Control) ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// DecodeControl parses one control line.
func DecodeControl(line []byte) (Control, error) {
	var c Control
	if err := jsonUnmarshal(line, &c); err != nil {
		return c, fmt.Errorf("decoding control message: %w", err)
	}
	set := 0
	for _, b := range []bool{c.Add != nil, c.Remove != nil, c.Stop} {
		if b {
			set++
		}
	}
	if set != 1 {
		return c, errors.New("decoding control message: exactly one of add, remove and stop must be set")
	}
	return c, nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

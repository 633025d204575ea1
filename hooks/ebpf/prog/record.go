package prog

import (
	"strconv"
	"unsafe"
)

// Header is what every event has: include/common.h's struct hdr, decoded.
type Header struct {
	// TS is the event's CLOCK_MONOTONIC time, in nanoseconds.
	TS     uint64
	PID    int
	Target int
	CPU    int
	Comm   string
}

// NewHeader decodes the fields of a struct hdr.
func NewHeader(ts uint64, pid, target, cpu uint32, comm []int8) Header {
	return Header{TS: ts, PID: int(pid), Target: int(target), CPU: int(cpu), Comm: CString8(comm)}
}

// kv is one key=value pair of an event's details.
type kv struct{ k, v string }

// Record collects an event's pairs in order; its details and fields are
// built from it, so text and JSON always agree.
type Record []kv

// Add appends the pair k=v.
func (r *Record) Add(k, v string) { *r = append(*r, kv{k, v}) }

// Int appends k with a signed value.
func (r *Record) Int(k string, v int64) { r.Add(k, strconv.FormatInt(v, 10)) }

// Uint appends k with an unsigned value.
func (r *Record) Uint(k string, v uint64) { r.Add(k, strconv.FormatUint(v, 10)) }

// Details formats the pairs on one line: key=value separated by blanks,
// with values quoted (Go syntax) when they are empty or hold a blank, a
// quote, an '=' or anything not printable.
func (r Record) Details(b []byte) []byte {
	for i, p := range r {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, p.k...)
		b = append(b, '=')
		if NeedsQuote(p.v) {
			b = strconv.AppendQuote(b, p.v)
		} else {
			b = append(b, p.v...)
		}
	}
	return b
}

// Fields returns the pairs as wire.Event.Fields.
func (r Record) Fields() map[string]string {
	m := make(map[string]string, len(r))
	for _, p := range r {
		m[p.k] = p.v
	}
	return m
}

// NeedsQuote says whether Details quotes s.
func NeedsQuote(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f {
			return true
		}
	}
	return false
}

// CString returns the bytes of b up to the first NUL.
func CString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// CString8 is CString for the []int8 arrays of the generated types.
func CString8(b []int8) string {
	if len(b) == 0 {
		return ""
	}
	return CString(unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), len(b)))
}

// View returns raw as a *T when it is long enough to hold one. The ring
// buffer's records are 8-byte aligned and the generated types have the
// host's layout (bpfel on amd64 and arm64).
func View[T any](raw []byte) (*T, bool) {
	var zero T
	if len(raw) < int(unsafe.Sizeof(zero)) {
		return nil, false
	}
	return (*T)(unsafe.Pointer(&raw[0])), true
}

// ViewCut is View for records that the kernel cuts after a variable-length
// last field (open.c's output): a record shorter than T but at least least
// bytes long is copied into buf, zeroed beyond it.
func ViewCut[T any](raw []byte, least uintptr, buf *T) (*T, bool) {
	if e, ok := View[T](raw); ok {
		return e, true
	}
	if len(raw) < int(least) {
		return nil, false
	}
	var zero T
	*buf = zero
	copy(unsafe.Slice((*byte)(unsafe.Pointer(buf)), unsafe.Sizeof(zero)), raw)
	return buf, true
}

// Bytes returns v's memory, as the ring buffer holds it: for tests that
// build records.
func Bytes[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

// SetString8 writes s, NUL-terminated and cut to fit, into dst: for tests
// that build records.
func SetString8(dst []int8, s string) {
	for i := range dst {
		dst[i] = 0
	}
	for i := 0; i < len(s) && i < len(dst)-1; i++ {
		dst[i] = int8(s[i])
	}
}

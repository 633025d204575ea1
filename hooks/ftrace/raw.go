package ftrace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// The binary reader: trace_pipe_raw hands out the ring buffer's pages as
// they are, which costs the kernel nothing but a copy, where trace_pipe
// formats every event as text in the reader's read(2) (most of the
// tracer's CPU at high rates). This file decodes the pages and the events
// (as events/*/format describe them) into Lines whose Details read as the
// kernel's text would, so that the processors do not care which reader fed
// them. It is plain Go; reading the per-CPU files is in raw_linux.go.

// pageHeader is the layout of a ring buffer page (events/header_page):
//
//	field: u64 timestamp;	offset:0;	size:8;	signed:0;
//	field: local_t commit;	offset:8;	size:8;	signed:1;
//	field: int overwrite;	offset:8;	size:1;	signed:1;
//	field: char data;	offset:16;	size:4080;	signed:0;
type pageHeader struct {
	commitOffset, commitSize, dataOffset int
}

// Flags in a page's commit word, set by ring_buffer_read_page.
const (
	missedEvents = 1 << 31 // events were lost before this page
	missedStored = 1 << 30 // their count follows the data
)

// Ring buffer event types (the 5-bit type_len of the event header).
const (
	typePadding    = 29
	typeTimeExtend = 30
	typeTimeStamp  = 31
	typeDataMax    = 28
	tsShift        = 27
)

var headerFieldRE = regexp.MustCompile(`field:\s*([^;]*?)\s*(\w+)(\[\d*\])?;\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);`)

// parsePageHeader reads events/header_page.
func parsePageHeader(text string) (pageHeader, error) {
	h := pageHeader{commitOffset: -1, dataOffset: -1}
	for _, m := range headerFieldRE.FindAllStringSubmatch(text, -1) {
		off, _ := strconv.Atoi(m[4])
		size, _ := strconv.Atoi(m[5])
		switch m[2] {
		case "commit":
			h.commitOffset, h.commitSize = off, size
		case "data":
			h.dataOffset = off
		}
	}
	if h.commitOffset < 0 || h.dataOffset < 0 || h.commitSize != 4 && h.commitSize != 8 {
		return h, fmt.Errorf("parsing header_page: no commit or data field in %q", text)
	}
	return h, nil
}

// rawEvent is one event of a page.
type rawEvent struct {
	ts   uint64 // ns, in the instance's trace_clock
	data []byte // the record: common fields first
}

// parsePage appends the events of one page to dst and returns how many
// events the kernel says were lost before it (0 when it does not know
// how many, but some were: then lostUnknown is true).
func parsePage(dst []rawEvent, page []byte, h pageHeader) (_ []rawEvent, lost uint64, lostUnknown bool, err error) {
	if len(page) < h.dataOffset {
		return dst, 0, false, fmt.Errorf("ring buffer page of %d bytes: too short", len(page))
	}
	ts := binary.LittleEndian.Uint64(page[0:8])
	var commit uint64
	if h.commitSize == 8 {
		commit = binary.LittleEndian.Uint64(page[h.commitOffset:])
	} else {
		commit = uint64(binary.LittleEndian.Uint32(page[h.commitOffset:]))
	}
	size := int(commit &^ (missedEvents | missedStored) & 0xffffffff)
	data := page[h.dataOffset:]
	if size > len(data) {
		return dst, 0, false, fmt.Errorf("ring buffer page: %d bytes of data in a page of %d", size, len(page))
	}
	if commit&missedEvents != 0 {
		if commit&missedStored != 0 && size+8 <= len(data) {
			lost = binary.LittleEndian.Uint64(data[size:])
		} else {
			lostUnknown = true
		}
	}
	data = data[:size]
	for off := 0; off+4 <= len(data); {
		hdr := binary.LittleEndian.Uint32(data[off:])
		typeLen, delta := hdr&0x1f, uint64(hdr>>5)
		switch {
		case typeLen == typePadding:
			if delta == 0 {
				return dst, lost, lostUnknown, nil // the rest of the page is empty
			}
			if off+8 > len(data) {
				return dst, lost, lostUnknown, errors.New("ring buffer page: padding cut short")
			}
			off += 4 + int(binary.LittleEndian.Uint32(data[off+4:]))
		case typeLen == typeTimeExtend || typeLen == typeTimeStamp:
			if off+8 > len(data) {
				return dst, lost, lostUnknown, errors.New("ring buffer page: time stamp cut short")
			}
			v := uint64(binary.LittleEndian.Uint32(data[off+4:]))<<tsShift | delta
			if typeLen == typeTimeExtend {
				ts += v
			} else {
				// An absolute stamp holds the low 59 bits.
				const msb = uint64(0xf8) << 56
				if ts&msb != 0 {
					v |= ts & msb
				}
				ts = v
			}
			off += 8
		default:
			ts += delta
			var start, end int
			if typeLen == 0 {
				if off+8 > len(data) {
					return dst, lost, lostUnknown, errors.New("ring buffer page: event length cut short")
				}
				n := int(binary.LittleEndian.Uint32(data[off+4:]))
				start, end = off+8, off+4+n
			} else {
				start, end = off+4, off+4+int(typeLen)*4
			}
			if end > len(data) || end < start {
				return dst, lost, lostUnknown, fmt.Errorf("ring buffer page: event of %d bytes at %d runs past the data (%d bytes)", end-start, off, len(data))
			}
			dst = append(dst, rawEvent{ts: ts, data: data[start:end]})
			off = end
		}
	}
	return dst, lost, lostUnknown, nil
}

// formatField is one field of an event's record.
type formatField struct {
	name         string
	offset, size int
	signed       bool
	dataLoc      bool // __data_loc: a u32 of offset | length<<16
	char         bool // a char array or string
}

// eventFormat is an event's record layout and how to print it.
type eventFormat struct {
	id           uint16
	system, name string
	fields       []formatField
	// print is how the kernel's text of the event reads.
	print printKind
	// For printSyscallEnter: the syscall's name and its arguments.
	syscall string
	args    []formatField
	// For printSwitch: the task state letters, from the print format.
	states    []stateFlag
	stateMask uint64
	statePlus uint64
}

type stateFlag struct {
	bit    uint64
	letter string
}

type printKind int

const (
	printFields       printKind = iota // "name=value …", in field order
	printSyscallEnter                  // "fd: 3, buf: 0x7ffd…, count: 1"
	printSyscallExit                   // "0x3"
	printSwitch                        // sched_switch
	printWakeup                        // sched_wakeup*: target_cpu=%03d
	printForkLike                      // sched_process_fork: parent_comm printed as comm
	printExit                          // sched_process_exit: group_dead=true|false
)

var (
	formatNameRE = regexp.MustCompile(`(?m)^name: (\S+)$`)
	formatIDRE   = regexp.MustCompile(`(?m)^ID: (\d+)$`)
	stateFlagRE  = regexp.MustCompile(`\{ (0x[0-9a-fA-F]+), "(\w+)" \}`)
)

// parseFormat reads one events/<system>/<event>/format file.
func parseFormat(system, text string) (*eventFormat, error) {
	f := &eventFormat{system: system}
	m := formatNameRE.FindStringSubmatch(text)
	id := formatIDRE.FindStringSubmatch(text)
	if m == nil || id == nil {
		return nil, fmt.Errorf("parsing event format: no name or ID in %q", text)
	}
	f.name = m[1]
	n, err := strconv.ParseUint(id[1], 10, 16)
	if err != nil {
		return nil, fmt.Errorf("parsing format of %s: ID: %w", f.name, err)
	}
	f.id = uint16(n)
	for _, m := range headerFieldRE.FindAllStringSubmatch(text, -1) {
		off, _ := strconv.Atoi(m[4])
		size, _ := strconv.Atoi(m[5])
		typ := m[1]
		ff := formatField{name: m[2], offset: off, size: size, signed: m[6] == "1",
			dataLoc: strings.HasPrefix(typ, "__data_loc"),
			char:    strings.Contains(typ, "char") && (m[3] != "" || strings.HasPrefix(typ, "__data_loc"))}
		if strings.HasPrefix(ff.name, "common_") {
			continue
		}
		f.fields = append(f.fields, ff)
	}
	fmtText := text
	if i := strings.Index(text, "print fmt:"); i >= 0 {
		fmtText = text[i:]
	}
	switch {
	case system == "syscalls" && strings.HasPrefix(f.name, "sys_enter_"):
		f.print, f.syscall = printSyscallEnter, f.name[len("sys_enter_"):]
		for _, ff := range f.fields {
			if ff.name != "__syscall_nr" {
				f.args = append(f.args, ff)
			}
		}
	case system == "syscalls" && strings.HasPrefix(f.name, "sys_exit_"):
		f.print, f.syscall = printSyscallExit, f.name[len("sys_exit_"):]
	case system == "sched" && f.name == "sched_switch":
		f.print = printSwitch
		var top uint64
		for _, m := range stateFlagRE.FindAllStringSubmatch(fmtText, -1) {
			bit, _ := strconv.ParseUint(m[1], 0, 64)
			f.states = append(f.states, stateFlag{bit, m[2]})
			top = max(top, bit)
		}
		if top == 0 {
			return nil, fmt.Errorf("parsing format of sched_switch: no task states in %q", fmtText)
		}
		f.stateMask, f.statePlus = top<<1-1, top<<1
	case system == "sched" && strings.HasPrefix(f.name, "sched_wakeup") || f.name == "sched_waking":
		f.print = printWakeup
	case system == "sched" && f.name == "sched_process_fork":
		f.print = printForkLike
	case system == "sched" && f.name == "sched_process_exit":
		f.print = printExit
	}
	return f, nil
}

func (f *eventFormat) field(name string) *formatField {
	for i := range f.fields {
		if f.fields[i].name == name {
			return &f.fields[i]
		}
	}
	return nil
}

// appendValue appends a field's value as the kernel's %d, %u or %s would.
func appendValue(b []byte, ff *formatField, rec []byte) []byte {
	if ff == nil {
		return b
	}
	if ff.dataLoc {
		if ff.offset+4 > len(rec) {
			return b
		}
		loc := binary.LittleEndian.Uint32(rec[ff.offset:])
		off, n := int(loc&0xffff), int(loc>>16)
		if off+n > len(rec) {
			return b
		}
		return appendCString(b, rec[off:off+n])
	}
	if ff.offset+ff.size > len(rec) {
		return b
	}
	v := rec[ff.offset : ff.offset+ff.size]
	if ff.char {
		return appendCString(b, v)
	}
	u := uintAt(v)
	if ff.signed {
		switch ff.size {
		case 1:
			return strconv.AppendInt(b, int64(int8(u)), 10)
		case 2:
			return strconv.AppendInt(b, int64(int16(u)), 10)
		case 4:
			return strconv.AppendInt(b, int64(int32(u)), 10)
		}
		return strconv.AppendInt(b, int64(u), 10)
	}
	return strconv.AppendUint(b, u, 10)
}

func uintAt(v []byte) uint64 {
	switch len(v) {
	case 1:
		return uint64(v[0])
	case 2:
		return uint64(binary.LittleEndian.Uint16(v))
	case 4:
		return uint64(binary.LittleEndian.Uint32(v))
	case 8:
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (f *eventFormat) uint(name string, rec []byte) (uint64, bool) {
	ff := f.field(name)
	if ff == nil || ff.dataLoc || ff.char || ff.offset+ff.size > len(rec) {
		return 0, false
	}
	return uintAt(rec[ff.offset : ff.offset+ff.size]), true
}

func appendCString(b, v []byte) []byte {
	for _, c := range v {
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return b
}

// appendDetails appends the text the kernel's trace_pipe prints for the
// event after "<name>: " (for syscalls, after "sys_<name>(" or
// "sys_<name> -> ").
func (f *eventFormat) appendDetails(b []byte, rec []byte) []byte {
	switch f.print {
	case printSyscallEnter:
		return f.appendSyscallEnter(b, rec)
	case printSyscallExit:
		v, _ := f.uint("ret", rec)
		b = append(b, "0x"...)
		return strconv.AppendUint(b, v, 16)
	case printSwitch:
		return f.appendSwitch(b, rec)
	}
	for i := range f.fields {
		ff := &f.fields[i]
		if i > 0 {
			b = append(b, ' ')
		}
		b = f.appendField(b, ff, rec)
	}
	return b
}

// appendSyscallEnter prints the arguments as print_syscall_enter does:
// "%s: %lu" below 10, "%s: 0x%lx" above.
func (f *eventFormat) appendSyscallEnter(b []byte, rec []byte) []byte {
	for i := range f.args {
		a := &f.args[i]
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, a.name...)
		b = append(b, ": "...)
		var v uint64
		if a.offset+a.size <= len(rec) {
			v = uintAt(rec[a.offset : a.offset+a.size])
		}
		if v < 10 {
			b = strconv.AppendUint(b, v, 10)
		} else {
			b = append(b, "0x"...)
			b = strconv.AppendUint(b, v, 16)
		}
	}
	return b
}

// appendSwitch prints a sched_switch, its prev_state as the letters of the
// print format.
func (f *eventFormat) appendSwitch(b []byte, rec []byte) []byte {
	b = append(b, "prev_comm="...)
	b = appendValue(b, f.field("prev_comm"), rec)
	b = append(b, " prev_pid="...)
	b = appendValue(b, f.field("prev_pid"), rec)
	b = append(b, " prev_prio="...)
	b = appendValue(b, f.field("prev_prio"), rec)
	b = append(b, " prev_state="...)
	st, _ := f.uint("prev_state", rec)
	if st&f.stateMask == 0 {
		b = append(b, 'R')
	} else {
		first := true
		for _, s := range f.states {
			if st&f.stateMask&s.bit != 0 {
				if !first {
					b = append(b, '|')
				}
				b = append(b, s.letter...)
				first = false
			}
		}
	}
	if st&f.statePlus != 0 {
		b = append(b, '+')
	}
	b = append(b, " ==> next_comm="...)
	b = appendValue(b, f.field("next_comm"), rec)
	b = append(b, " next_pid="...)
	b = appendValue(b, f.field("next_pid"), rec)
	b = append(b, " next_prio="...)
	return appendValue(b, f.field("next_prio"), rec)
}

// appendField prints one field as "name=value", as the format's print
// kind shows it.
func (f *eventFormat) appendField(b []byte, ff *formatField, rec []byte) []byte {
	switch {
	case f.print == printWakeup && ff.name == "target_cpu":
		v, _ := f.uint(ff.name, rec)
		b = append(b, "target_cpu="...)
		if v < 100 {
			b = append(b, '0')
		}
		if v < 10 {
			b = append(b, '0')
		}
		return strconv.AppendUint(b, v, 10)
	case f.print == printForkLike:
		// Older kernels name the parent's fields comm and pid, newer
		// parent_comm and parent_pid; both print comm= pid=.
		b = append(b, strings.TrimPrefix(ff.name, "parent_")...)
	case f.print == printExit && ff.name == "group_dead":
		b = append(b, "group_dead="...)
		if v, _ := f.uint(ff.name, rec); v != 0 {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	default:
		b = append(b, ff.name...)
	}
	b = append(b, '=')
	return appendValue(b, ff, rec)
}

// eventName is the Line.Event of the format's events, as ParseLine names
// them.
func (f *eventFormat) eventName() string { return f.name }

// decoder turns raw events into Lines.
type decoder struct {
	formats map[uint16]*eventFormat
	buf     []byte
}

// line fills l from one raw event of cpu; ok is false for an event of a
// format it does not know (not enabled by this session). The current
// task's comm is not in the record: Task is "<...>", as trace_pipe prints
// a task missing from saved_cmdlines.
func (d *decoder) line(l *Line, ev rawEvent, cpu int) bool {
	if len(ev.data) < 8 {
		return false
	}
	f := d.formats[binary.LittleEndian.Uint16(ev.data)]
	if f == nil {
		return false
	}
	d.buf = f.appendDetails(d.buf[:0], ev.data)
	*l = Line{
		Task:    "<...>",
		TaskPID: int(int32(binary.LittleEndian.Uint32(ev.data[4:]))),
		CPU:     cpu,
		Time:    float64(ev.ts) / 1e9,
		Event:   f.name,
		Details: string(d.buf),
	}
	return true
}

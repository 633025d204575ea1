//go:build linux

package ebpf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kv is one key=value pair of an event's details.
type kv struct{ k, v string }

// record collects an event's pairs in order; details and fields are built
// from it, so text and JSON always agree.
type record []kv

func (r *record) add(k, v string)       { *r = append(*r, kv{k, v}) }
func (r *record) int(k string, v int64) { r.add(k, strconv.FormatInt(v, 10)) }
func (r *record) uint(k string, v uint64) {
	r.add(k, strconv.FormatUint(v, 10))
}

// details formats the pairs on one line: key=value separated by blanks,
// with values quoted (Go syntax) when they are empty or hold a blank, a
// quote, an '=' or anything not printable.
func (r record) details(b []byte) []byte {
	for i, p := range r {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, p.k...)
		b = append(b, '=')
		if needsQuote(p.v) {
			b = strconv.AppendQuote(b, p.v)
		} else {
			b = append(b, p.v...)
		}
	}
	return b
}

// fields returns the pairs as Event.Fields.
func (r record) fields() map[string]string {
	m := make(map[string]string, len(r))
	for _, p := range r {
		m[p.k] = p.v
	}
	return m
}

func needsQuote(s string) bool {
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

// cstring returns the bytes of b up to the first NUL.
func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// cstring8 is cstring for the []int8 arrays of the generated types.
func cstring8(b []int8) string {
	if len(b) == 0 {
		return ""
	}
	return cstring(unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), len(b)))
}

// maxArgs bounds how many arguments argv shows.
const maxArgs = 32

// argv turns the NUL-separated arguments of a new process into one string,
// each argument quoted when it needs it, "..." at the end when the kernel
// or maxArgs cut it short.
func argv(args []byte, truncated bool) string {
	if n := len(args); n > 0 && args[n-1] == 0 {
		args = args[:n-1]
	} else if n > 0 {
		truncated = true // cut in the middle of an argument
	}
	var b strings.Builder
	for i, a := range strings.Split(string(args), "\x00") {
		if i == maxArgs {
			truncated = true
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		if needsQuote(a) {
			b.WriteString(strconv.Quote(a))
		} else {
			b.WriteString(a)
		}
	}
	if truncated {
		b.WriteString(" ...")
	}
	return b.String()
}

var openFlagNames = []struct {
	flag uint64
	name string
}{
	// Composite flags first: O_TMPFILE holds O_DIRECTORY, O_SYNC O_DSYNC.
	{unix.O_TMPFILE, "O_TMPFILE"},
	{unix.O_SYNC, "O_SYNC"},
	{unix.O_CREAT, "O_CREAT"},
	{unix.O_EXCL, "O_EXCL"},
	{unix.O_NOCTTY, "O_NOCTTY"},
	{unix.O_TRUNC, "O_TRUNC"},
	{unix.O_APPEND, "O_APPEND"},
	{unix.O_NONBLOCK, "O_NONBLOCK"},
	{unix.O_DSYNC, "O_DSYNC"},
	{unix.O_ASYNC, "O_ASYNC"},
	{unix.O_DIRECT, "O_DIRECT"},
	{unix.O_LARGEFILE, "O_LARGEFILE"},
	{unix.O_DIRECTORY, "O_DIRECTORY"},
	{unix.O_NOFOLLOW, "O_NOFOLLOW"},
	{unix.O_NOATIME, "O_NOATIME"},
	{unix.O_CLOEXEC, "O_CLOEXEC"},
	{unix.O_PATH, "O_PATH"},
}

// openFlags formats open(2) flags the way strace does:
// O_RDONLY|O_CLOEXEC, with any unknown bits in hex at the end.
func openFlags(f uint64) string {
	var b strings.Builder
	switch f & unix.O_ACCMODE {
	case unix.O_RDONLY:
		b.WriteString("O_RDONLY")
	case unix.O_WRONLY:
		b.WriteString("O_WRONLY")
	case unix.O_RDWR:
		b.WriteString("O_RDWR")
	default:
		b.WriteString("O_ACCMODE")
	}
	rest := f &^ unix.O_ACCMODE
	for _, n := range openFlagNames {
		if n.flag != 0 && rest&n.flag == n.flag {
			b.WriteString("|" + n.name)
			rest &^= n.flag
		}
	}
	if rest != 0 {
		fmt.Fprintf(&b, "|%#x", rest)
	}
	return b.String()
}

// errnoName returns the symbol of a negative kernel return value:
// "ENOENT" for -2.
func errnoName(ret int64) string {
	if ret >= 0 {
		return ""
	}
	if n := unix.ErrnoName(unix.Errno(-ret)); n != "" {
		return n
	}
	return "E" + strconv.FormatInt(-ret, 10)
}

// ipString formats an address of a tcp event: IPv4 in the first 4 bytes
// for AF_INET, 16 bytes for AF_INET6.
func ipString(family uint16, b [16]uint8) string {
	if family == unix.AF_INET6 {
		return netip.AddrFrom16(b).String()
	}
	return netip.AddrFrom4([4]byte(b[:4])).String()
}

func familyName(family uint16) string {
	switch family {
	case unix.AF_INET:
		return "ipv4"
	case unix.AF_INET6:
		return "ipv6"
	}
	return strconv.Itoa(int(family))
}

//go:build linux

package open

import (
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/prog"
)

// Def is the open hook's program.
var Def = &prog.Def{Name: "open", Load: loadBpf, Events: newDecoder}

// newDecoder returns a decoder of open.c's struct open_event, with the
// scratch record the kernel's cut records are copied into.
func newDecoder() prog.Decoder {
	var buf bpfOpenEvent
	return func(raw []byte, rec *prog.Record) (prog.Header, string, bool) {
		// open.c ends a record after the path's NUL.
		e, ok := prog.ViewCut(raw, unsafe.Offsetof(bpfOpenEvent{}.Path), &buf)
		if !ok {
			return prog.Header{}, "", false
		}
		h := prog.NewHeader(e.H.Ts, e.H.Pid, e.H.Target, e.H.Cpu, e.H.Comm[:])
		rec.Add("path", prog.CString8(e.Path[:]))
		rec.Add("flags", openFlags(e.Flags))
		rec.Int("result", e.Ret)
		if e.Ret < 0 {
			rec.Add("error", errnoName(e.Ret))
		}
		return h, "open", true
	}
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

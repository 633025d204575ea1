//go:build linux

package exec

import (
	"strconv"
	"strings"
	"unsafe"

	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/prog"
)

// Def is the exec hook's program.
var Def = &prog.Def{Name: "exec", Load: loadBpf, Events: func() prog.Decoder { return decode }}

// decode reads exec.c's struct exec_event.
func decode(raw []byte, rec *prog.Record) (prog.Header, string, bool) {
	e, ok := prog.View[bpfExecEvent](raw)
	if !ok {
		return prog.Header{}, "", false
	}
	h := prog.NewHeader(e.H.Ts, e.H.Pid, e.H.Target, e.H.Cpu, e.H.Comm[:])
	n := min(int(e.ArgsLen), len(e.Args))
	args := unsafe.Slice((*byte)(unsafe.Pointer(&e.Args[0])), n)
	rec.Int("pid", int64(e.H.Pid))
	rec.Int("ppid", int64(e.Ppid))
	rec.Int("uid", int64(e.Uid))
	rec.Add("filename", prog.CString8(e.Filename[:]))
	rec.Add("argv", argv(args, e.Truncated != 0))
	return h, "exec", true
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
		if prog.NeedsQuote(a) {
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

//go:build linux

package open

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/prog"
)

func TestDecode(t *testing.T) {
	decode := newDecoder()
	var e bpfOpenEvent
	e.H.Pid, e.H.Target = 9, 0
	prog.SetString8(e.H.Comm[:], "cat")
	e.Ret, e.Flags = -2, 0
	prog.SetString8(e.Path[:], "/nope")
	details := func(raw []byte) (string, bool) {
		var rec prog.Record
		h, event, ok := decode(raw, &rec)
		if ok && (event != "open" || h.PID != 9 || h.Comm != "cat") {
			t.Errorf("header %+v, event %q", h, event)
		}
		return string(rec.Details(nil)), ok
	}
	if got, ok := details(prog.Bytes(&e)); !ok || got != "path=/nope flags=O_RDONLY result=-2 error=ENOENT" {
		t.Errorf("got %q, %v", got, ok)
	}
	// As open.c writes it: cut after the path's NUL.
	e.PathLen = uint32(len("/nope") + 1)
	raw := prog.Bytes(&e)[:unsafe.Offsetof(e.Path)+uintptr(e.PathLen)]
	if got, ok := details(raw); !ok || got != "path=/nope flags=O_RDONLY result=-2 error=ENOENT" {
		t.Errorf("cut record: got %q, %v", got, ok)
	}
	if got, ok := details(raw[:unsafe.Offsetof(e.Path)-1]); ok {
		t.Errorf("record shorter than its header decoded: %q", got)
	}
}

// viewCut reuses its buffer: what a longer record left there must not show
// through a shorter one.
func TestViewCut(t *testing.T) {
	var buf bpfOpenEvent
	var long, short bpfOpenEvent
	prog.SetString8(long.Path[:], "/a/much/longer/path")
	prog.SetString8(short.Path[:], "/b")
	least := unsafe.Offsetof(long.Path)
	if _, ok := prog.ViewCut(prog.Bytes(&long)[:least+20], least, &buf); !ok {
		t.Fatal("viewCut refused a record longer than its header")
	}
	e, ok := prog.ViewCut(prog.Bytes(&short)[:least+3], least, &buf)
	if !ok || prog.CString8(e.Path[:]) != "/b" {
		t.Errorf("viewCut after a longer record: %v, path %q, want /b", ok, prog.CString8(e.Path[:]))
	}
	// An unreadable path: the record ends before it (path_len 0).
	prog.ViewCut(prog.Bytes(&long)[:least+20], least, &buf)
	if e, ok := prog.ViewCut(prog.Bytes(&short)[:least], least, &buf); !ok || prog.CString8(e.Path[:]) != "" {
		t.Errorf("viewCut of a record without a path: %v, path %q, want none", ok, prog.CString8(e.Path[:]))
	}
	if e, ok := prog.ViewCut(prog.Bytes(&long), least, &buf); !ok || e == &buf {
		t.Errorf("a whole record was copied (ok %v), want a view of it", ok)
	}
}

func TestOpenFlags(t *testing.T) {
	for flags, want := range map[uint64]string{
		unix.O_RDONLY:  "O_RDONLY",
		unix.O_CLOEXEC: "O_RDONLY|O_CLOEXEC",
		unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC: "O_WRONLY|O_CREAT|O_TRUNC",
		unix.O_RDWR | unix.O_NONBLOCK:               "O_RDWR|O_NONBLOCK",
		unix.O_DIRECTORY | unix.O_PATH:              "O_RDONLY|O_DIRECTORY|O_PATH",
		unix.O_RDWR | unix.O_TMPFILE:                "O_RDWR|O_TMPFILE",
		unix.O_SYNC:                                 "O_RDONLY|O_SYNC",
		unix.O_DSYNC:                                "O_RDONLY|O_DSYNC",
		1 << 40:                                     "O_RDONLY|0x10000000000",
	} {
		if got := openFlags(flags); got != want {
			t.Errorf("openFlags(%#o) = %q, want %q", flags, got, want)
		}
	}
}

func TestErrnoName(t *testing.T) {
	for ret, want := range map[int64]string{-2: "ENOENT", -13: "EACCES", 3: "", 0: "", -4095: "E4095"} {
		if got := errnoName(ret); got != want {
			t.Errorf("errnoName(%d) = %q, want %q", ret, got, want)
		}
	}
}

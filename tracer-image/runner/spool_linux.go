package runner

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// pipeSize is what growPipe asks for: 1 MiB, the default
// /proc/sys/fs/pipe-max-size (root may go beyond it; 1 MiB is plenty).
const pipeSize = 1 << 20

// growPipe enlarges stdout's pipe from the default 64 KiB when stdout is
// one (a container's stdout is a FIFO the runtime reads): the runtime then
// takes more in one read, the spool's writer blocks less often, and a
// short pause of the reader does not stop the writer at once. Best effort:
// a file, a terminal or a refused size leaves things as they are.
func growPipe(w io.Writer) {
	f, ok := w.(*os.File)
	if !ok {
		return
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	// Not f.Fd(): it would put a non-blocking descriptor in blocking mode.
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
}

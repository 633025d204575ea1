//go:build linux && privileged

package ftrace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/test/testenv"
	"golang.org/x/sys/unix"
)

// rawTestEvents are decoded by the binary reader in TestRawMatchesText.
var rawTestEvents = []string{
	"sched:sched_switch", "sched:sched_wakeup", "sched:sched_wakeup_new", "sched:sched_migrate_task",
	"sched:sched_process_fork", "sched:sched_process_exec", "sched:sched_process_exit",
	"syscalls:sys_enter_openat", "syscalls:sys_exit_openat", "syscalls:sys_enter_read", "syscalls:sys_exit_read",
	"syscalls:sys_enter_write", "syscalls:sys_exit_write", "syscalls:sys_enter_exit_group",
	"syscalls:sys_enter_wait4", "syscalls:sys_exit_wait4",
}

// The binary reader's lines read as the kernel's own text of the same
// events: a workload is traced into an instance, the kernel prints the
// buffer (the trace file, which does not consume it), then the binary
// reader reads the same buffer. With KTRACE_UPDATE_TESTDATA=1 the capture
// is written to testdata/raw for TestRawCapture.
func TestRawMatchesText(t *testing.T) {
	tracefs := testenv.Tracefs(t)
	name := fmt.Sprintf("ktrace-test-raw-%d", os.Getpid())
	dir := filepath.Join(tracefs, "instances", name)
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Rmdir(dir); err != nil {
			t.Errorf("removing instance: %v", err)
		}
	}()
	bin := filepath.Join(t.TempDir(), "ktfraw")
	sh, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, sh, 0o755); err != nil {
		t.Fatal(err)
	}
	work := exec.Command(bin, "-c", "read x; for i in 1 2; do cat /etc/hostname > /dev/null; cat /nonexistent 2>/dev/null; sleep 0.01; done")
	goLine, err := work.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := work.Start(); err != nil {
		t.Fatal(err)
	}
	defer work.Process.Kill()
	write := func(file, value string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
			t.Fatalf("writing %s: %v", file, err)
		}
	}
	write("trace_clock", "mono")
	write("options/event-fork", "1")
	write("buffer_size_kb", "4096")
	write("set_event_pid", fmt.Sprint(work.Process.Pid))
	for _, e := range rawTestEvents {
		f, err := os.OpenFile(filepath.Join(dir, "set_event"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(e); err != nil {
			t.Fatalf("enabling %s: %v", e, err)
		}
		f.Close()
	}
	write("tracing_on", "1")
	goLine.Write([]byte("go\n"))
	done := make(chan error, 1)
	go func() { done <- work.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("workload: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("workload still running after 20 s")
	}
	time.Sleep(50 * time.Millisecond)
	write("tracing_on", "0")

	text, err := os.ReadFile(filepath.Join(dir, "trace"))
	if err != nil {
		t.Fatal(err)
	}
	inst, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Close()
	r, err := openRaw(inst, rawTestEvents)
	if err != nil {
		t.Fatalf("openRaw: %v", err)
	}
	defer r.close()
	// Keep the pages as read, for the capture.
	pages := map[int][]byte{}
	for _, c := range r.cpus {
		for {
			n, err := c.read()
			if errors.Is(err, unix.EAGAIN) || n == 0 {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			pages[c.cpu] = binary.LittleEndian.AppendUint32(pages[c.cpu], uint32(n))
			pages[c.cpu] = append(pages[c.cpu], c.page[:n]...)
		}
	}
	if os.Getenv("KTRACE_UPDATE_TESTDATA") != "" {
		saveRawCapture(t, inst, string(text), pages)
	}
	compareRawText(t, r.hdr, &r.dec, pages, string(text))
}

func saveRawCapture(t *testing.T, inst *os.Root, text string, pages map[int][]byte) {
	out := filepath.Join("testdata", "raw")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	hdr, _ := inst.ReadFile("events/header_page")
	files := map[string][]byte{"header_page": hdr, "trace.txt": []byte(text)}
	for _, e := range rawTestEvents {
		sys, name, _ := strings.Cut(e, ":")
		b, err := inst.ReadFile(filepath.Join("events", sys, name, "format"))
		if err != nil {
			t.Fatal(err)
		}
		files[sys+"."+name+".format"] = b
	}
	for cpu, b := range pages {
		files[fmt.Sprintf("cpu%d.pages", cpu)] = b
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d files to %s", len(files), out)
}

//go:build linux

package testenv

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	roleWorker = "worker"
	workEnv    = "KTRACE_TESTENV_WORK"
)

// Work is what a worker does once started.
type Work struct {
	// Kind is one of:
	//   - "exec": run Path with Args in a loop;
	//   - "open": open each of Paths in a loop (Count > 0: Count times
	//     without pause, then say "done");
	//   - "tcp": listen on 127.0.0.1:Port, connect to it, accept and
	//     close, in a loop;
	//   - "syscalls": call getppid Count times, say "done", then idle;
	//   - "syscall-rounds": call getppid Count times from one thread, say
	//     "done", and again on each further Go until stdin ends;
	//   - "getppid-rate": call getppid Rate times a second (0: as fast as
	//     it can) for Seconds, then say "done <calls made>";
	//   - "pagefaults": map fresh anonymous memory and write every page
	//     (user-mode faults), and read /dev/zero into fresh memory
	//     (kernel-mode faults), in a loop;
	//   - "stamped": on each Go, from one thread, read the wall clock, call
	//     getppid (or open Path, when set), read it again, and say "done
	//     <before> <after>" in nanoseconds since the epoch, until stdin
	//     ends: an event whose wall time the test knows;
	//   - "spin": spin Count threads;
	//   - "alloc": allocate and touch memory until it is killed.
	Kind  string
	Path  string
	Args  []string
	Paths []string
	Port  int
	Count int
	// Rate and Seconds pace getppid-rate.
	Rate    float64
	Seconds float64
	// Every is the pause between loop iterations.
	Every time.Duration
}

// Proc is a process the test started, in a process group of its own that
// cleanup kills.
type Proc struct {
	Cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader // nil when its stdout is not the test's to read
}

// Start runs a worker named name (its comm) in new namespaces
// (cloneflags: syscall.CLONE_NEWNS, CLONE_NEWNET, …) and waits until it
// is ready; it does its work after Go. Cleanup kills it.
func Start(t testing.TB, name string, w Work, cloneflags uintptr) *Proc {
	t.Helper()
	return startWorker(t, name, w, cloneflags, nil)
}

// StartInMountNamespace runs a worker named name in the mount namespace of
// process pid (with nsenter), in the test's cgroups: a process that shares
// a container's mount namespace without being in the container.
func StartInMountNamespace(t testing.TB, name string, w Work, pid int) *Proc {
	t.Helper()
	return startWorker(t, name, w, 0, []string{"nsenter", "--mount=/proc/" + strconv.Itoa(pid) + "/ns/mnt", "--"})
}

func startWorker(t testing.TB, name string, w Work, cloneflags uintptr, wrap []string) *Proc {
	t.Helper()
	link := Named(t, name)
	spec, _ := json.Marshal(w)
	argv := append(wrap, link)
	env := []string{roleEnv + "=" + roleWorker, workEnv + "=" + string(spec)}
	p := startProc(t, cloneflags, env, true, argv[0], argv[1:]...)
	if line := p.Line(t); line != "ready" {
		t.Fatalf("worker %s said %q, want ready", name, line)
	}
	return p
}

// Named returns the test binary under another name, so that a worker run
// from it has that name as its comm.
func Named(t testing.TB, name string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// StartProcess runs bin with args and env in new namespaces (cloneflags),
// in a process group of its own; what it does on Go (a line on its stdin)
// is up to it. Cleanup kills it.
func StartProcess(t testing.TB, cloneflags uintptr, env []string, bin string, args ...string) *Proc {
	t.Helper()
	return startProc(t, cloneflags, env, false, bin, args...)
}

// StartShell runs script with a copy of /bin/sh named name (a copy's comm
// is its name), in new namespaces (cloneflags). A script that starts with
// "read x" waits for Go.
func StartShell(t testing.TB, name, script string, cloneflags uintptr) *Proc {
	t.Helper()
	return StartProcess(t, cloneflags, nil, CopyBinary(t, "/bin/sh", name), "-c", script)
}

func startProc(t testing.TB, cloneflags uintptr, env []string, readOut bool, bin string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Cloneflags: cloneflags}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &Proc{Cmd: cmd, in: in}
	if readOut {
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		p.out = bufio.NewReader(out)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return p
}

// PID is the process's pid.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Go starts the work: a line on the process's stdin.
func (p *Proc) Go(t testing.TB) {
	t.Helper()
	if _, err := io.WriteString(p.in, "go\n"); err != nil {
		t.Fatal(err)
	}
}

// Line reads the worker's next line ("ready", "done").
func (p *Proc) Line(t testing.TB) string {
	t.Helper()
	if p.out == nil {
		t.Fatalf("process %d: its stdout is not read", p.PID())
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading worker %d: %v", p.PID(), err)
	}
	return strings.TrimSpace(line)
}

// Wait waits for the process to exit and returns how.
func (p *Proc) Wait() error { return p.Cmd.Wait() }

// workerMain is the worker's side of Start.
func workerMain() error {
	var w Work
	if err := json.Unmarshal([]byte(os.Getenv(workEnv)), &w); err != nil {
		return err
	}
	var ln net.Listener
	if w.Kind == "tcp" {
		if err := loopbackUp(); err != nil {
			return err
		}
		var err error
		if ln, err = net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(w.Port)); err != nil {
			return err
		}
	}
	fmt.Println("ready")
	in := bufio.NewReader(os.Stdin)
	if line, err := in.ReadString('\n'); err != nil || strings.TrimSpace(line) != "go" {
		return fmt.Errorf("waiting for go: %q, %v", line, err)
	}
	switch w.Kind {
	case "syscall-rounds":
		return syscallRounds(w, in)
	case "stamped":
		return stamped(w, in)
	}
	// The end of stdin ends the loops.
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, in)
		close(stop)
	}()
	return work(w, ln, stop)
}

// work does w until stop is closed (or for good).
func work(w Work, ln net.Listener, stop chan struct{}) error {
	stopped := func() bool {
		select {
		case <-stop:
			return true
		case <-time.After(w.Every):
			return false
		}
	}
	switch w.Kind {
	case "exec":
		for {
			exec.Command(w.Path, w.Args...).Run()
			if stopped() {
				return nil
			}
		}
	case "open":
		return openWork(w, stop, stopped)
	case "tcp":
		return tcpWork(ln, stopped)
	case "syscalls":
		for range w.Count {
			syscall.Getppid()
		}
		fmt.Println("done")
		<-stop
		return nil
	case "getppid-rate":
		fmt.Println("done", getppidRate(w.Rate, w.Seconds))
		<-stop
		return nil
	case "pagefaults":
		return pageFaults(stopped)
	case "spin":
		for range w.Count {
			go func() {
				for {
				}
			}()
		}
		<-stop
		return nil
	case "alloc":
		var keep [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
	}
	return fmt.Errorf("unknown work %q", w.Kind)
}

// syscallRounds calls getppid Count times from one thread, then says
// "done", once per line on stdin until it ends.
func syscallRounds(w Work, in *bufio.Reader) error {
	// One thread: the same task makes every round's calls.
	runtime.LockOSThread()
	for {
		for range w.Count {
			syscall.Getppid()
		}
		fmt.Println("done")
		if _, err := in.ReadString('\n'); err != nil {
			return nil
		}
	}
}

// stamped makes one call a round, between two readings of the wall clock.
func stamped(w Work, in *bufio.Reader) error {
	runtime.LockOSThread()
	for {
		before := time.Now().UnixNano()
		if w.Path != "" {
			if f, err := os.Open(w.Path); err == nil {
				f.Close()
			}
		} else {
			syscall.Getppid()
		}
		after := time.Now().UnixNano()
		fmt.Println("done", before, after)
		if _, err := in.ReadString('\n'); err != nil {
			return nil
		}
	}
}

func openWork(w Work, stop chan struct{}, stopped func() bool) error {
	openAll := func() {
		for _, p := range w.Paths {
			if f, err := os.Open(p); err == nil {
				f.Close()
			}
		}
	}
	if w.Count > 0 {
		for range w.Count {
			openAll()
		}
		fmt.Println("done")
		<-stop
		return nil
	}
	for {
		openAll()
		if stopped() {
			return nil
		}
	}
}

func tcpWork(ln net.Listener, stopped func() bool) error {
	for {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			return err
		}
		a, err := ln.Accept()
		if err != nil {
			return err
		}
		c.Close()
		a.Close()
		if stopped() {
			return nil
		}
	}
}

// getppidRate calls getppid(2) rate times a second (0: as fast as it can)
// for secs seconds and returns how many calls it made.
func getppidRate(rate, secs float64) int {
	start := time.Now()
	d := time.Duration(secs * float64(time.Second))
	n := 0
	for {
		el := time.Since(start)
		if el > d {
			return n
		}
		want := n + 1000
		if rate > 0 {
			want = int(el.Seconds() * rate)
		}
		for n < want {
			unix.Getppid()
			n++
		}
	}
}

// pageFaults maps fresh anonymous memory and writes to every page
// (user-mode faults), and reads /dev/zero into fresh memory (kernel-mode
// faults), until stopped.
func pageFaults(stopped func() bool) error {
	zero, err := os.Open("/dev/zero")
	if err != nil {
		return err
	}
	defer zero.Close()
	const size = 4 << 20
	for {
		mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return err
		}
		for i := 0; i < size; i += 4096 {
			mem[i] = 1
		}
		unix.Munmap(mem)
		if mem, err = unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err == nil {
			unix.Read(int(zero.Fd()), mem)
			unix.Munmap(mem)
		}
		if stopped() {
			return nil
		}
	}
}

// loopbackUp brings lo up (a new network namespace has it down).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading flags of lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}
	return nil
}

// CopyBinary copies src (such as /bin/true) to a temporary file named name.
func CopyBinary(t testing.TB, src, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// SwitchCount sums the context switches of every thread of pid.
func SwitchCount(t testing.TB, pid int) uint64 {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			for _, k := range []string{"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"} {
				if v, ok := strings.CutPrefix(line, k); ok {
					x, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
					n += x
				}
			}
		}
	}
	return n
}

// Tasks returns the thread ids of process pid.
func Tasks(t testing.TB, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		n, _ := strconv.Atoi(e.Name())
		out = append(out, n)
	}
	return out
}

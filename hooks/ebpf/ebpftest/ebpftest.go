//go:build linux

// Package ebpftest builds what the privileged tests of the eBPF hooks
// trace: fake containers (a cgroup in every hierarchy whose leaf is a
// 64-hex container id, as a runtime's cgroupfs driver makes them, so that
// the runner's /proc resolution finds them) and workload processes, in
// their own mount and network namespaces when asked, that do one kind of
// work on a signal.
//
// The workloads are the test binary itself, run again under another name
// (so its comm is that name): a test package calls Main from an init
// function, which runs the workload and exits when the binary was started
// as one.
package ebpftest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
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

	"github.com/cilium/ebpf"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"golang.org/x/sys/unix"
)

// Container is a fake container: a cgroup in every hierarchy the test
// process is in, below the test process's own cgroup, whose leaf is named
// by a random 64-hex container id. Cleanup removes it.
type Container struct {
	ID   string
	dirs map[string]string // leaf directory by controllers ("" for v2)
	tops []string
}

// NewContainer makes a fake container.
func NewContainer(t testing.TB) *Container {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	c := &Container{ID: hex.EncodeToString(b), dirs: map[string]string{}}
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var leaves []string
	t.Cleanup(func() { c.remove(t, leaves) })
	top := "ktrace-ebpftest-" + c.ID[:8]
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		mnt := cgroupMount(string(mounts), parts[1])
		if mnt == "" {
			t.Fatalf("no mount for cgroup hierarchy %q of /proc/self/cgroup", line)
		}
		parent := filepath.Join(mnt, parts[2], top)
		leaf := filepath.Join(parent, c.ID)
		for _, d := range []string{parent, leaf} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatalf("making cgroup: %v", err)
			}
			if d == parent {
				c.tops = append(c.tops, parent)
			}
			if strings.Contains(","+parts[1]+",", ",cpuset,") {
				// A v1 cpuset cgroup takes no process before it has cpus
				// and mems: copy the parent's.
				for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
					v, err := os.ReadFile(filepath.Join(filepath.Dir(d), f))
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(d, f), v, 0); err != nil {
						t.Fatalf("setting %s of %s: %v", f, d, err)
					}
				}
			}
		}
		leaves = append(leaves, leaf)
		c.dirs[parts[1]] = leaf
	}
	return c
}

// cgroupMount returns the mount point of the hierarchy with the given
// controllers ("" is cgroup v2).
func cgroupMount(mounts, controllers string) string {
	for _, line := range strings.Split(mounts, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		if controllers == "" {
			if f[2] == "cgroup2" {
				return f[1]
			}
			continue
		}
		if f[2] != "cgroup" {
			continue
		}
		opts := "," + f[3] + ","
		all := true
		for _, c := range strings.Split(controllers, ",") {
			all = all && strings.Contains(opts, ","+c+",")
		}
		if all {
			return f[1]
		}
	}
	return ""
}

// Dir returns the container's directory in the hierarchy that has
// controller ("memory"), or in cgroup v2 for "".
func (c *Container) Dir(t testing.TB, controller string) string {
	t.Helper()
	for ctrls, d := range c.dirs {
		if controller == "" && ctrls == "" {
			return d
		}
		for _, x := range strings.Split(ctrls, ",") {
			if controller != "" && x == controller {
				return d
			}
		}
	}
	t.Fatalf("fake container has no cgroup with controller %q", controller)
	return ""
}

// Add moves a process into the container's cgroups.
func (c *Container) Add(t testing.TB, pid int) {
	t.Helper()
	for _, d := range c.dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			t.Fatalf("moving pid %d into %s: %v", pid, d, err)
		}
	}
}

// SetMemoryLimit sets the container's v1 memory limit.
func (c *Container) SetMemoryLimit(t testing.TB, bytes int64) {
	t.Helper()
	f := filepath.Join(c.Dir(t, "memory"), "memory.limit_in_bytes")
	if err := os.WriteFile(f, []byte(strconv.FormatInt(bytes, 10)), 0); err != nil {
		t.Fatalf("setting %s: %v", f, err)
	}
}

// Target is the container as the plugin would describe it.
func (c *Container) Target() wire.Target {
	return wire.Target{Node: "n1", Namespace: "test", Pod: "kt-" + c.ID[:6], PodUID: "uid-" + c.ID[:6],
		Container: "app", ContainerID: "containerd://" + c.ID}
}

func (c *Container) remove(t testing.TB, leaves []string) {
	for _, dirs := range [][]string{leaves, c.tops} {
		for _, d := range dirs {
			var err error
			for i := 0; i < 150; i++ {
				if err = unix.Rmdir(d); err == nil || errors.Is(err, unix.ENOENT) {
					err = nil
					break
				}
				time.Sleep(20 * time.Millisecond) // processes still exiting
			}
			if err != nil {
				t.Errorf("removing cgroup %s: %v", d, err)
			}
		}
	}
}

// Work is what a workload process does once started.
type Work struct {
	// Kind: "exec" runs Path with Args in a loop; "open" opens each of
	// Paths in a loop (Count > 0: Count times without pause, then says
	// "done"); "tcp" listens on 127.0.0.1:Port and connects to it,
	// accepts and closes, in a loop; "syscalls" calls getppid Count times,
	// then idles; "syscall-rounds" calls getppid Count times from one
	// thread, says "done", and again on each further Go until stdin ends;
	// "spin" spins Count threads; "alloc" allocates and touches
	// memory until it is killed.
	Kind  string
	Path  string
	Args  []string
	Paths []string
	Port  int
	Count int
	// Every is the pause between loop iterations.
	Every time.Duration
}

// Proc is a running workload.
type Proc struct {
	Cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

const workEnv = "KTRACE_EBPFTEST_WORK"

// Start runs a workload named name (its comm) in new namespaces
// (cloneflags: syscall.CLONE_NEWNS, CLONE_NEWNET, …) and waits until it is
// ready; it does its work after Go. Cleanup kills it.
func Start(t testing.TB, name string, w Work, cloneflags uintptr) *Proc {
	t.Helper()
	return start(t, name, w, cloneflags, nil)
}

// StartInMountNamespace runs a workload named name in the mount namespace
// of process pid (with nsenter), in the test's cgroups: a process that
// shares a container's mount namespace without being in the container.
func StartInMountNamespace(t testing.TB, name string, w Work, pid int) *Proc {
	t.Helper()
	return start(t, name, w, 0, []string{"nsenter", "--mount=/proc/" + strconv.Itoa(pid) + "/ns/mnt", "--"})
}

func start(t testing.TB, name string, w Work, cloneflags uintptr, wrap []string) *Proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), name)
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(w)
	argv := append(wrap, link)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), workEnv+"="+string(spec))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Cloneflags: cloneflags}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &Proc{Cmd: cmd, in: in, out: bufio.NewReader(out)}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	if line := p.Line(t); line != "ready" {
		t.Fatalf("workload %s said %q, want ready", name, line)
	}
	return p
}

// PID is the workload's pid.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Go starts the work.
func (p *Proc) Go(t testing.TB) {
	t.Helper()
	if _, err := io.WriteString(p.in, "go\n"); err != nil {
		t.Fatal(err)
	}
}

// Line reads the workload's next line ("ready", "done").
func (p *Proc) Line(t testing.TB) string {
	t.Helper()
	line, err := p.out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading workload %d: %v", p.PID(), err)
	}
	return strings.TrimSpace(line)
}

// Wait waits for the workload to exit and returns how.
func (p *Proc) Wait() error { return p.Cmd.Wait() }

// Main runs the workload and exits when the process was started as one by
// Start; otherwise it returns at once. Call it from an init function of
// the test package.
func Main() {
	spec := os.Getenv(workEnv)
	if spec == "" {
		return
	}
	var w Work
	if err := json.Unmarshal([]byte(spec), &w); err != nil {
		fail(err)
	}
	if err := runWork(w); err != nil {
		fail(err)
	}
	os.Exit(0)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "ebpftest workload: %v\n", err)
	os.Exit(1)
}

func runWork(w Work) error {
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
	if w.Kind == "syscall-rounds" {
		// One thread: the same task makes every round's calls.
		runtime.LockOSThread()
		for {
			for i := 0; i < w.Count; i++ {
				syscall.Getppid()
			}
			fmt.Println("done")
			if _, err := in.ReadString('\n'); err != nil {
				return nil
			}
		}
	}
	// End of stdin ends the loops.
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, in)
		close(stop)
	}()
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
		if w.Count > 0 {
			for i := 0; i < w.Count; i++ {
				for _, p := range w.Paths {
					if f, err := os.Open(p); err == nil {
						f.Close()
					}
				}
			}
			fmt.Println("done")
			<-stop
			return nil
		}
		for {
			for _, p := range w.Paths {
				if f, err := os.Open(p); err == nil {
					f.Close()
				}
			}
			if stopped() {
				return nil
			}
		}
	case "tcp":
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
	case "syscalls":
		for i := 0; i < w.Count; i++ {
			syscall.Getppid()
		}
		fmt.Println("done")
		<-stop
		return nil
	case "spin":
		for i := 0; i < w.Count; i++ {
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

// loopbackUp brings lo up in a new network namespace.
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

// OurPrograms returns the BPF programs loaded on the machine whose names
// start with prefix ("kt_", the prefix of every program of package ebpf),
// as "name#id".
func OurPrograms(t testing.TB, prefix string) []string {
	t.Helper()
	var out []string
	id := ebpf.ProgramID(0)
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return out
		}
		if err != nil {
			t.Fatalf("listing BPF programs: %v", err)
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue // unloaded meanwhile
		}
		info, err := p.Info()
		p.Close()
		if err != nil {
			continue
		}
		if strings.HasPrefix(info.Name, prefix) {
			out = append(out, fmt.Sprintf("%s#%d", info.Name, id))
		}
	}
}

// WaitProgramsGone waits until no program named with prefix is loaded: the
// kernel frees a detached program after an RCU grace period, not at once.
// It returns those still loaded after timeout.
func WaitProgramsGone(t testing.TB, prefix string, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := OurPrograms(t, prefix)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// AllPrograms counts the BPF programs loaded on the machine.
func AllPrograms(t testing.TB) int {
	t.Helper()
	n := 0
	id := ebpf.ProgramID(0)
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return n
		}
		if err != nil {
			t.Fatalf("listing BPF programs: %v", err)
		}
		id = next
		n++
	}
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
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				x, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				n += x
			}
			if v, ok := strings.CutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
				x, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				n += x
			}
		}
	}
	return n
}

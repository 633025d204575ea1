//go:build linux

package testenv

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	rolePIDInit   = "pidns-init"
	rolePIDWorker = "pidns-worker"
	envPIDDir     = "KTRACE_TESTENV_PIDNS_DIR"
	envPIDWorkers = "KTRACE_TESTENV_PIDNS_WORKERS"
)

// PIDNamespace is a child pid namespace with its proc mounted.
type PIDNamespace struct {
	// Init is the global pid of the namespace's pid 1.
	Init int
	// ProcRoot is the namespace's proc mount, as the test process sees it
	// (through /proc/<Init>/root).
	ProcRoot string
	// Workers are the local pids of the workers.
	Workers []int
}

// NewPIDNamespace starts a child pid namespace (and mount namespace) whose
// init mounts a proc and starts workers (Go processes, so several threads
// each). Cleanup ends it.
func NewPIDNamespace(t testing.TB, workers int) *PIDNamespace {
	t.Helper()
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), roleEnv+"="+rolePIDInit, envPIDDir+"="+dir, envPIDWorkers+"="+strconv.Itoa(workers))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS,
		Pdeathsig:  syscall.SIGKILL,
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
	}()
	var s string
	select {
	case s = <-line:
	case <-time.After(30 * time.Second):
		t.Fatal("child pid namespace: no answer in 30s")
	}
	f := strings.Fields(s)
	if len(f) == 0 || f[0] != "ready" {
		t.Fatalf("child pid namespace: %q", s)
	}
	ns := &PIDNamespace{Init: cmd.Process.Pid, ProcRoot: filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "root", dir)}
	for _, p := range f[1:] {
		n, _ := strconv.Atoi(p)
		ns.Workers = append(ns.Workers, n)
	}
	return ns
}

// pidInitMain is pid 1 of the child namespace, in a mount namespace of its
// own: it mounts the namespace's proc, starts workers and waits for its
// stdin to close.
func pidInitMain() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stdout, "error:", err)
		return 1
	}
	dir := os.Getenv(envPIDDir)
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail(fmt.Errorf("making / private: %w", err))
	}
	if err := unix.Mount("proc", dir, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fail(fmt.Errorf("mounting proc on %s: %w", dir, err))
	}
	n, _ := strconv.Atoi(os.Getenv(envPIDWorkers))
	var pids []string
	for range n {
		cmd := exec.Command("/proc/self/exe")
		cmd.Env = append(os.Environ(), roleEnv+"="+rolePIDWorker)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return fail(err)
		}
		pids = append(pids, strconv.Itoa(cmd.Process.Pid))
	}
	fmt.Fprintln(os.Stdout, "ready", strings.Join(pids, " "))
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// pidWorkerMain is a worker of the child namespace: a Go process, so
// several threads, that sleeps and wakes (scheduler events) until its
// parent dies.
func pidWorkerMain() {
	for {
		time.Sleep(10 * time.Millisecond)
	}
}

// NSpid returns the ids of a task in every pid namespace from the initial
// one down, from the NSpid line of /proc/<global>/status.
func NSpid(global int) ([]int, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(global), "status"))
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "NSpid:"); ok {
			var ids []int
			for _, f := range strings.Fields(rest) {
				n, err := strconv.Atoi(f)
				if err != nil {
					return nil, fmt.Errorf("NSpid %q", rest)
				}
				ids = append(ids, n)
			}
			return ids, nil
		}
	}
	return nil, fmt.Errorf("no NSpid in /proc/%d/status", global)
}

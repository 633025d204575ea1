//go:build linux

package tcpdump

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// startInNetns starts cmd inside the network namespace ns (an open
// /proc/<pid>/ns/net) and returns a channel that receives cmd.Wait's
// result once the process has exited.
//
// setns(2) changes only the calling thread, and Go forks on the calling
// thread, so the child inherits the namespace. The goroutine locks its OS
// thread for that and never unlocks it: a thread that may be in a foreign
// namespace must never run other goroutines. Right after the fork it
// enters its original namespace again (checked), because a locked thread
// whose goroutine ends is destroyed, except the process's main thread,
// which the runtime parks for good instead: measured, without the return
// the tracer's main thread, and so /proc/self/ns/net, stayed in the
// target's namespace. The Go runtime starts new threads from a template
// thread, never from a locked one, so no other thread lands there.
//
// The goroutine also waits for the child: the parent-death signal
// (SysProcAttr.Pdeathsig) fires when the thread that forked the child
// ends, and this way that is when the child has exited.
func startInNetns(ns *os.File, cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	waited := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see above
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			started <- fmt.Errorf("opening this thread's network namespace: %w", err)
			return
		}
		defer own.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			started <- fmt.Errorf("entering the network namespace %s: %w", ns.Name(), err)
			return
		}
		startErr := cmd.Start()
		if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread ends with this goroutine, locked: no harm done,
			// but the tracer would hold the target's namespace.
			startErr = errors.Join(startErr, fmt.Errorf("returning to the helper's network namespace: %w", err))
		} else if back, err := sameNetns(own, unix.Gettid()); err != nil || !back {
			startErr = errors.Join(startErr, fmt.Errorf("returning to the helper's network namespace: still elsewhere (%v)", err))
		}
		if startErr != nil {
			if cmd.Process != nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			started <- startErr
			return
		}
		started <- nil
		waited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return waited, nil
}

// sameNetns reports whether the task tid (a process, or a thread of this
// one, seen in this process's /proc) is in the namespace ns. A task that
// has already exited has no namespace left to compare: that is not an
// error, since its exit is reported anyway.
func sameNetns(ns *os.File, tid int) (bool, error) {
	var want, got unix.Stat_t
	if err := unix.Fstat(int(ns.Fd()), &want); err != nil {
		return false, err
	}
	err := unix.Stat(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), tid), &got)
	if errors.Is(err, unix.ENOENT) {
		err = unix.Stat(fmt.Sprintf("/proc/%d/ns/net", tid), &got)
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return want.Dev == got.Dev && want.Ino == got.Ino, nil
}

//go:build linux && privileged

// Privileged tests: run as root on a real kernel with
//
//	go test -tags privileged ./hooks/ftrace/
//
// They never skip: a machine that cannot run them fails them.
package ftrace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/test/testenv"
)

// ownMounts lists the tracefs mounts a session made (and must unmount).
func ownMounts(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "kubectl-trace-tracefs-") {
			out = append(out, line)
		}
	}
	return out
}

// startLoop starts sh running script with the given name (argv[0] does
// not set comm: a copy of the binary does).
func startLoop(t *testing.T, name, script string) *testenv.Proc {
	t.Helper()
	return testenv.StartShell(t, name, script, 0)
}

var sched = func() hooks.Descriptor { d, _ := hooks.Lookup("sched"); return d }()

// schedAttachment is what the runner attaches the sched hook with, for
// targets that are threads only.
func schedAttachment(session string, fields bool, tids ...[]int) attach.Attachment {
	a := attach.Attachment{Request: wire.Request{SessionID: session}, Hook: sched, Fields: fields}
	for _, t := range tids {
		a.Targets = append(a.Targets, attach.Target{TIDs: t})
	}
	return a
}

// emitter is a Sink of events only.
type emitter func(ev *wire.Event, details string) error

func (e emitter) Emit(ev *wire.Event, details string) error { return e(ev, details) }
func (e emitter) Raw(int) io.Writer                         { panic("ftrace writes events") }

// drop is a Sink that keeps nothing.
var drop = emitter(func(*wire.Event, string) error { return nil })

// collector gathers emitted events.
type collector struct {
	mu     sync.Mutex
	events []wire.Event
}

func (c *collector) emit(ev *wire.Event, _ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, *ev)
	return nil
}

func (c *collector) comms() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[string]int{}
	for _, ev := range c.events {
		m[ev.Comm]++
	}
	return m
}

// A session traces its target and the target's children, never an
// outsider doing the same work; a process added later with AddThreads is
// traced from then on; ending the context drains and the instance is gone.
func TestSessionTracesTarget(t *testing.T) {
	const loop = "while :; do /bin/true; sleep 0.02; done"
	target := startLoop(t, "ktftarget", loop)
	outsider := startLoop(t, "ktfoutsider", loop)
	session := fmt.Sprintf("ftrace-test-%d", time.Now().UnixNano())
	// Open before the test mounts its tracefs: where none is mounted, the
	// session mounts its own (and must unmount it).
	a := schedAttachment(session, true, testenv.Tasks(t, target.PID()))
	a.Targets[0].Target = wire.Target{Node: "n1", Namespace: "ns", Pod: "p", Container: "c"}
	s, err := Runtime{}.open(a)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	t.Logf("tracefs at %s (mounted by the session: %v)", s.root, s.mounted)
	tracefs := testenv.Tracefs(t)
	if got := testenv.InstancesIn(t, tracefs, instancePrefix+session+"-"); len(got) != 1 {
		t.Fatalf("instances of the session: %v, want one", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var c collector
	done := make(chan error, 1)
	go func() { done <- s.Stream(ctx, emitter(c.emit)) }()

	time.Sleep(700 * time.Millisecond)
	late := startLoop(t, "ktflate", loop)
	if err := s.AddThreads(0, testenv.Tasks(t, late.PID())); err != nil {
		t.Fatalf("AddThreads: %v", err)
	}
	time.Sleep(700 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stream did not return within 10 s of the end of its context")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	comms := c.comms()
	t.Logf("traced comms: %v; stats %+v", comms, s.Stats())
	for _, want := range []string{"ktftarget", "true", "sleep", "ktflate"} {
		if comms[want] == 0 {
			t.Errorf("no event traced to %q", want)
		}
	}
	if comms["ktfoutsider"] > 0 {
		t.Errorf("%d events traced to the outsider", comms["ktfoutsider"])
	}
	for _, ev := range c.events {
		if ev.PID == outsider.PID() {
			t.Errorf("event traced to the outsider's pid: %+v", ev)
		}
		if ev.Node != "n1" || ev.Pod != "p" || ev.Fields == nil {
			t.Errorf("event without its target or fields: %+v", ev)
			break
		}
	}
	if st := s.Stats(); st.Events != uint64(len(c.events)) || st.Events == 0 {
		t.Errorf("stats %+v, want %d events", st, len(c.events))
	}
	if got := testenv.InstancesIn(t, tracefs, instancePrefix+session+"-"); len(got) != 0 {
		t.Errorf("instances left: %v", got)
	}
	if got := ownMounts(t); len(got) != 0 {
		t.Errorf("tracefs mounts left: %v", got)
	}
}

// A blocked Read on trace_pipe returns when the session is closed from
// another goroutine (the fd is in Go's poller), and Stream then returns nil.
func TestSessionCloseUnblocksStream(t *testing.T) {
	tracefs := testenv.Tracefs(t)
	idle := startLoop(t, "ktfidle", "sleep 60") // blocks: no events
	session := fmt.Sprintf("ftrace-close-%d", time.Now().UnixNano())
	s, err := Runtime{Tracefs: tracefs}.open(schedAttachment(session, false, testenv.Tasks(t, idle.PID())))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Stream(context.Background(), drop) }()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Stream after Close: %v", err)
		}
		t.Logf("Stream returned %v after Close", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("Stream still blocked 5 s after Close")
	}
	if got := testenv.InstancesIn(t, tracefs, instancePrefix+session+"-"); len(got) != 0 {
		t.Errorf("instances left: %v", got)
	}
}

// A deadline wakes a blocked Read too: what Stream uses at the end of its
// context, so that it can drain before closing.
func TestSessionContextUnblocksStream(t *testing.T) {
	tracefs := testenv.Tracefs(t)
	idle := startLoop(t, "ktfidle", "sleep 60")
	session := fmt.Sprintf("ftrace-ctx-%d", time.Now().UnixNano())
	s, err := Runtime{Tracefs: tracefs}.open(schedAttachment(session, false, testenv.Tasks(t, idle.PID())))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Stream(ctx, drop) }()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Stream: %v", err)
		}
		t.Logf("Stream returned %v after cancel", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("Stream still blocked 5 s after its context ended")
	}
	on, err := os.ReadFile(filepath.Join(s.Instance(), "tracing_on"))
	if err != nil || strings.TrimSpace(string(on)) != "0" {
		t.Errorf("tracing_on after Stream = %q, %v; want 0", on, err)
	}
}

// An error during setup, after the instance was made, removes it.
func TestOpenErrorLeavesNoInstance(t *testing.T) {
	tracefs := testenv.Tracefs(t)
	session := fmt.Sprintf("ftrace-bad-%d", time.Now().UnixNano())
	a := schedAttachment(session, false, []int{os.Getpid()})
	a.Hook.Events = []string{"sched:sched_switch", "sched:no_such_event"}
	_, err := Runtime{}.open(a)
	if err == nil || !strings.Contains(err.Error(), `enabling event "sched:no_such_event"`) {
		t.Fatalf("Open error %v, want one about the missing event", err)
	}
	t.Log(err)
	if got := testenv.InstancesIn(t, tracefs, instancePrefix+session+"-"); len(got) != 0 {
		t.Errorf("instances left: %v", got)
	}
	if got := ownMounts(t); len(got) != 0 {
		t.Errorf("tracefs mounts left: %v", got)
	}
}

// Open removes instances of gone helpers of its pid namespace, and leaves
// those of live helpers and of other pid namespaces alone.
func TestOpenRemovesStaleInstances(t *testing.T) {
	tracefs := testenv.Tracefs(t)
	pidns, err := pidNamespace("/proc")
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("/bin/true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := instanceName("stale", pidns, dead.Process.Pid)
	live := instanceName("live", pidns, os.Getpid())
	foreign := instanceName("foreign", pidns+1, dead.Process.Pid)
	for _, name := range []string{stale, live, foreign} {
		if err := os.Mkdir(filepath.Join(tracefs, "instances", name), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, name := range []string{stale, live, foreign} {
			unix.Rmdir(filepath.Join(tracefs, "instances", name))
		}
	}()
	s, err := Runtime{Tracefs: tracefs}.open(schedAttachment("stale-test", false, []int{os.Getpid()}))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if got := s.Stale(); len(got) != 1 || got[0] != stale {
		t.Errorf("Stale() = %v, want [%s]", got, stale)
	}
	for name, want := range map[string]bool{stale: false, live: true, foreign: true} {
		_, err := os.Stat(filepath.Join(tracefs, "instances", name))
		if got := !errors.Is(err, os.ErrNotExist); got != want {
			t.Errorf("instance %s exists = %v, want %v", name, got, want)
		}
	}
}

// A session that found someone else's tracefs mount keeps working, and
// still removes its instance, when that mount goes away under it.
func TestSessionSurvivesUnmount(t *testing.T) {
	observer := testenv.Tracefs(t)
	found := t.TempDir()
	if err := unix.Mount("nodev", found, "tracefs", 0, ""); err != nil {
		t.Fatal(err)
	}
	loop := startLoop(t, "ktfumount", "while :; do /bin/true; sleep 0.02; done")
	session := fmt.Sprintf("ftrace-umount-%d", time.Now().UnixNano())
	s, err := Runtime{Tracefs: found}.open(schedAttachment(session, false, testenv.Tasks(t, loop.PID())))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := unix.Unmount(found, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var c collector
	if err := s.Stream(ctx, emitter(c.emit)); err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if len(c.events) == 0 {
		t.Error("no events after the mount went away")
	}
	if got := testenv.InstancesIn(t, observer, instancePrefix+session+"-"); len(got) != 0 {
		t.Errorf("instances left: %v", got)
	}
}

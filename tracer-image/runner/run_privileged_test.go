//go:build linux && privileged

// Privileged tests: run as root on a real kernel with
//
//	go test -tags privileged ./tracer-image/runner/
//
// They never skip: a machine that cannot run them fails them.
package runner

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/ftrace"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/test/testenv"
)

func init() { testenv.Main() }

// startLoop starts a copy of /bin/sh named name (so comm is name) that
// waits for Go, then forks and execs children forever.
func startLoop(t *testing.T, name string, cloneflags uintptr) *testenv.Proc {
	t.Helper()
	return testenv.StartShell(t, name, "read x; while :; do /bin/true; sleep 0.02; done", cloneflags)
}

// session runs Run with the plugin's part played by the test: wait for
// "ready", send the go byte, call during() while streaming, close stdin.
type session struct {
	stdout, stderr syncBuffer
	err            error
}

func runSession(t *testing.T, req wire.Request, cfg Config, during func()) *session {
	t.Helper()
	s := &session{}
	playPlugin(t, s, req, cfg, &s.stdout, 20*time.Second, during)
	return s
}

// playPlugin runs Run into s with trace data going to stdout: it waits
// for "ready", sends the go byte, calls during() while streaming, closes
// stdin and waits for Run, up to stopWithin.
func playPlugin(t *testing.T, s *session, req wire.Request, cfg Config, stdout io.Writer, stopWithin time.Duration, during func()) {
	t.Helper()
	stdinR, stdinW := io.Pipe()
	cfg.Stdin, cfg.Stdout, cfg.Stderr = stdinR, stdout, &s.stderr
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), req, cfg) }()

	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.stderr.String(), `{"ktrace":"ready"`) {
		select {
		case s.err = <-done:
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready status within 20 s; stderr:\n%s", s.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := stdinW.Write([]byte{'g'}); err != nil {
		t.Fatal(err)
	}
	during()
	stdinW.Close()
	select {
	case s.err = <-done:
	case <-time.After(stopWithin):
		t.Fatalf("Run did not return within %v of the end of stdin", stopWithin)
	}
}

// traced is one text line: the traced task and the event.
type tracedLine struct {
	comm    string
	pid     int
	event   string
	details string
}

// parseText reads text output the way the end-to-end tests do: field 3 is
// comm-pid, split at the last '-'.
func parseText(t *testing.T, out string) []tracedLine {
	t.Helper()
	var lines []tracedLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 5)
		if len(f) < 4 || !strings.HasPrefix(f[1], "[") || !strings.HasSuffix(f[3], ":") {
			t.Fatalf("malformed line %q", sc.Text())
		}
		i := strings.LastIndexByte(f[2], '-')
		pid, err := strconv.Atoi(f[2][i+1:])
		if i < 0 || err != nil {
			t.Fatalf("malformed task %q in %q", f[2], sc.Text())
		}
		l := tracedLine{comm: f[2][:i], pid: pid, event: strings.TrimSuffix(f[3], ":")}
		if len(f) == 5 {
			l.details = f[4]
		}
		lines = append(lines, l)
	}
	return lines
}

func privRequest(output, containerID string) wire.Request {
	return wire.Request{
		Version:   wire.ProtocolVersion,
		SessionID: fmt.Sprintf("priv-%d", time.Now().UnixNano()),
		Hook:      "sched",
		Output:    output,
		Targets: []wire.Target{{Node: "n1", Namespace: "test", Pod: "kt", PodUID: "u1",
			Container: "kttarget", ContainerID: containerID}},
	}
}

// The whole session on the real kernel: a target in its own cgroups and
// mount and network namespaces, an outsider doing the same work outside, a
// process that joins the container later (kubectl exec).
func TestRunTracesContainer(t *testing.T) {
	c := testenv.NewContainer(t)
	target := startLoop(t, "kttarget", syscall.CLONE_NEWNS|syscall.CLONE_NEWNET)
	c.Add(t, target.PID())
	target.Go(t)
	outsider := startLoop(t, "ktoutsider", 0)
	outsider.Go(t)
	late := startLoop(t, "ktexec", 0)

	ownNS, _ := os.Readlink("/proc/self/ns/mnt")
	targetNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", target.PID()))
	if ownNS == targetNS {
		t.Fatalf("target shares the test's mount namespace %s", ownNS)
	}

	// JSON first: the text session adds a process to the container.
	for _, output := range []string{hooks.OutputJSON, hooks.OutputText} {
		t.Run(output, func(t *testing.T) {
			req := privRequest(output, "containerd://"+c.ID)
			rec := &recordingRuntime{}
			s := runSession(t, req, Config{RefreshInterval: 200 * time.Millisecond, Runtimes: map[string]attach.Runtime{hooks.KindFtrace: rec}}, func() {
				time.Sleep(time.Second)
				if output == hooks.OutputText {
					// Joins the container, not as a child of a traced task
					// (kubectl exec). It starts its loop once the refresh
					// has found it, so that each of its forks is seen.
					c.Add(t, late.PID())
					time.Sleep(600 * time.Millisecond)
					late.Go(t)
				}
				time.Sleep(time.Second)
			})
			if s.err != nil {
				t.Fatalf("Run: %v\nstderr:\n%s", s.err, s.stderr.String())
			}
			statuses := parseStatuses(t, s.stderr.String())
			t.Logf("statuses: %s", s.stderr.String())
			var lines []tracedLine
			if output == hooks.OutputText {
				lines = parseText(t, s.stdout.String())
			} else {
				lines = parseJSON(t, s.stdout.String(), req.Targets[0])
			}
			rec.mu.Lock()
			joined := rec.added
			rec.mu.Unlock()
			checkTrace(t, lines, statuses, target.PID(), outsider.PID(), joined)
			if output == hooks.OutputText {
				seen := false
				for _, l := range lines {
					seen = seen || l.comm == "ktexec"
				}
				if !seen {
					t.Error("the process that joined the container later was not traced")
				}
			}
			if left := testenv.Instances(t, "kubectl-trace-"+req.SessionID+"-"); len(left) != 0 {
				t.Errorf("instances left: %v", left)
			}
		})
	}
}

// recordingRuntime opens the real ftrace hook and records the tids the
// membership refresh hands it: processes that joined the container (or
// were forked before the attach) without a fork event the trace shows.
type recordingRuntime struct {
	mu    sync.Mutex
	added []int
}

func (r *recordingRuntime) Open(ctx context.Context, a attach.Attachment) (attach.Session, error) {
	h, err := ftrace.Runtime{}.Open(ctx, a)
	if err != nil {
		return nil, err
	}
	return recordingHook{Session: h, ref: h.(attach.Threads), rec: r}, nil
}

type recordingHook struct {
	attach.Session
	ref attach.Threads
	rec *recordingRuntime
}

func (h recordingHook) AddThreads(target int, tids []int) error {
	h.rec.mu.Lock()
	h.rec.added = append(h.rec.added, tids...)
	h.rec.mu.Unlock()
	return h.ref.AddThreads(target, tids)
}

func parseJSON(t *testing.T, out string, tg wire.Target) []tracedLine {
	t.Helper()
	var lines []tracedLine
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev wire.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if ev.Node != tg.Node || ev.Namespace != tg.Namespace || ev.Pod != tg.Pod || ev.Container != tg.Container {
			t.Fatalf("event without its target: %s", sc.Text())
		}
		var d []string
		for k, v := range ev.Fields {
			d = append(d, k+"="+v)
		}
		lines = append(lines, tracedLine{comm: ev.Comm, pid: ev.PID, event: ev.Event, details: " " + strings.Join(d, " ") + " "})
	}
	return lines
}

// checkTrace asserts what every session of TestRunTracesContainer must show.
// joined are the tids the membership refresh added during the session.
func checkTrace(t *testing.T, lines []tracedLine, statuses []wire.Status, targetPID, outsiderPID int, joined []int) {
	t.Helper()
	kinds := kinds(statuses)
	wantKinds := []string{wire.StatusReady, wire.StatusResolved, wire.StatusStarted, wire.StatusStats}
	if strings.Join(kinds, ",") != strings.Join(wantKinds, ",") {
		t.Errorf("status kinds %v, want %v", kinds, wantKinds)
	}
	// The target, and the child it is waiting for when the scan runs ("ready" goes first: the rest is held until the go byte).
	r := statuses[1]
	if r.Method != attach.MethodProcCgroup || len(r.PIDs) == 0 || r.PIDs[0] != targetPID || len(r.PIDs) > 2 {
		t.Errorf("resolved status %+v, want method %s and pids [%d] or [%d <child>]", r, attach.MethodProcCgroup, targetPID, targetPID)
	}
	stats := statuses[len(statuses)-1]
	if stats.Events == 0 || stats.Events != uint64(len(lines)) {
		t.Errorf("stats events %d, want %d (> 0)", stats.Events, len(lines))
	}
	count := map[string]int{}
	for _, l := range lines {
		count[l.comm+" "+l.event]++
		if l.comm == "ktoutsider" || l.pid == outsiderPID {
			t.Errorf("outsider traced: %+v", l)
		}
	}
	t.Logf("%d events, lost %d: %v", len(lines), stats.Lost, count)
	for _, want := range []string{
		"kttarget sched_process_fork", // event-fork: the children follow
		"kttarget sched_switch",
		"true sched_process_exec",
		"true sched_process_exit",
		"sleep sched_process_exec",
	} {
		if count[want] == 0 {
			t.Errorf("no %q event traced", want)
		}
	}
	if stats.Lost > 0 {
		return // a lost fork event would break the check below
	}
	// Every traced task was in the container at the start, joined it, or
	// was forked by one of those.
	known := map[int]bool{}
	for _, pid := range append(append([]int{}, r.PIDs...), joined...) {
		known[pid] = true
	}
	for _, l := range lines {
		if l.event == "sched_process_fork" {
			for _, f := range strings.Fields(l.details) {
				if v, ok := strings.CutPrefix(f, "child_pid="); ok {
					n, _ := strconv.Atoi(v)
					known[n] = true
				}
			}
		}
	}
	for _, l := range lines {
		if !known[l.pid] {
			t.Errorf("traced pid %d (%s) is not the target's: %+v", l.pid, l.comm, l)
			break
		}
	}
}

// A target that is not on the node fails before anything is attached, with
// an error that says what to check, and leaves nothing behind.
func TestRunUnknownContainer(t *testing.T) {
	b := make([]byte, 32)
	rand.Read(b)
	req := privRequest(hooks.OutputText, "containerd://"+hex.EncodeToString(b))
	var stdout, stderr syncBuffer
	err := Run(context.Background(), req, Config{Stdin: strings.NewReader("g"), Stdout: &stdout, Stderr: &stderr})
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("Run error %v, want a NotFoundError", err)
	}
	statuses := parseStatuses(t, stderr.String())
	if len(statuses) != 1 || statuses[0].Kind != wire.StatusError || !strings.Contains(statuses[0].Message, "hostPID") {
		t.Errorf("statuses %+v, want one error about hostPID", statuses)
	}
	if stdout.String() != "" {
		t.Errorf("stdout %q, want nothing", stdout.String())
	}
	if left := testenv.Instances(t, "kubectl-trace-"+req.SessionID+"-"); len(left) != 0 {
		t.Errorf("instances left: %v", left)
	}
}

// A setup error inside the hook (after its instance was made) surfaces
// before ready and leaves no instance.
func TestRunAttachErrorLeavesNoInstance(t *testing.T) {
	c := testenv.NewContainer(t)
	target := startLoop(t, "kttarget", 0)
	c.Add(t, target.PID())
	req := privRequest(hooks.OutputText, "containerd://"+c.ID)
	var stdout, stderr syncBuffer
	err := Run(context.Background(), req, Config{
		Stdin: strings.NewReader("g"), Stdout: &stdout, Stderr: &stderr,
		Runtimes: map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(ctx context.Context, a attach.Attachment) (attach.Session, error) {
			a.Hook.Events = append(a.Hook.Events, "sched:no_such_event")
			return ftrace.Runtime{}.Open(ctx, a)
		})},
	})
	if err == nil || !strings.Contains(err.Error(), `enabling event "sched:no_such_event"`) {
		t.Fatalf("Run error %v, want one about the missing event", err)
	}
	t.Log(err)
	if k := kinds(parseStatuses(t, stderr.String())); strings.Join(k, ",") != "resolved,error" {
		t.Errorf("status kinds %v, want resolved, error", k)
	}
	if left := testenv.Instances(t, "kubectl-trace-"+req.SessionID+"-"); len(left) != 0 {
		t.Errorf("instances left: %v", left)
	}
}

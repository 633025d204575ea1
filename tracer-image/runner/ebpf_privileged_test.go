//go:build linux && privileged

package runner

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/test/testenv"
)

// Workloads of the eBPF tests are this binary, run again (testenv.Start).

// ebpfRun runs Run with the ebpf attacher, playing the plugin: wait for
// ready, send the go byte, call during(), close stdin. It returns stdout,
// the statuses and Run's error.
func ebpfRun(t *testing.T, req wire.Request, during func()) (string, []wire.Status, error) {
	t.Helper()
	return ebpfRunRefresh(t, req, 0, during)
}

// ebpfRunRefresh is ebpfRun with the membership refresh every refresh (0:
// the default).
func ebpfRunRefresh(t *testing.T, req wire.Request, refresh time.Duration, during func()) (string, []wire.Status, error) {
	t.Helper()
	cfg := Config{Runtimes: map[string]attach.Runtime{hooks.KindEBPF: ebpf.Runtime{}}, RefreshInterval: refresh}
	s := runSession(t, req, cfg, during)
	return s.stdout.String(), ebpfStatuses(t, s.stderr.String()), s.err
}

func ebpfStatuses(t *testing.T, stderr string) []wire.Status {
	t.Helper()
	var out []wire.Status
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if line == "" {
			continue
		}
		s, ok := wire.ParseStatus([]byte(line))
		if !ok {
			t.Fatalf("stderr line %q is not a status", line)
		}
		out = append(out, s)
	}
	return out
}

func ebpfRequest(hook, output string, args map[string]string, targets ...wire.Target) wire.Request {
	return wire.Request{
		Version:   wire.ProtocolVersion,
		SessionID: fmt.Sprintf("ebpf-%d", time.Now().UnixNano()),
		Hook:      hook,
		Args:      args,
		Output:    output,
		Targets:   targets,
	}
}

// The whole helper path with an eBPF hook: two containers resolved from
// /proc by their ids, each with a workload in its own mount and network
// namespaces, an outsider doing the same work; exec events, as JSON, carry
// their own container, and no program stays loaded.
func TestRunEBPFExec(t *testing.T) {
	bin := testenv.CopyBinary(t, "/bin/true", "ktexec-child")
	type target struct {
		c *testenv.Container
		p *testenv.Proc
	}
	var targets []target
	for i := 0; i < 2; i++ {
		c := testenv.NewContainer(t)
		p := testenv.Start(t, "kttarget"+strconv.Itoa(i), testenv.Work{Kind: "exec", Path: bin, Args: []string{"target", strconv.Itoa(i)}, Every: 20 * time.Millisecond},
			syscall.CLONE_NEWNS|syscall.CLONE_NEWNET)
		c.Add(t, p.PID())
		targets = append(targets, target{c, p})
	}
	outsider := testenv.Start(t, "ktoutsider", testenv.Work{Kind: "exec", Path: bin, Args: []string{"outsider"}, Every: 5 * time.Millisecond}, 0)
	before := testenv.AllPrograms(t)

	req := ebpfRequest("exec", hooks.OutputJSON, nil, targets[0].c.Target(), targets[1].c.Target())
	stdout, statuses, err := ebpfRun(t, req, func() {
		if n := len(testenv.OurPrograms(t, "kt_")); n == 0 {
			t.Error("no kt_ program loaded while the session runs")
		}
		for _, tg := range targets {
			tg.p.Go(t)
		}
		outsider.Go(t)
		time.Sleep(1500 * time.Millisecond)
	})
	if err != nil {
		t.Fatalf("Run: %v\nstatuses: %+v", err, statuses)
	}
	var kinds []string
	for _, s := range statuses {
		kinds = append(kinds, s.Kind)
	}
	if want := "ready,resolved,resolved,started,stats"; strings.Join(kinds, ",") != want {
		t.Errorf("status kinds %v, want %s: %+v", kinds, want, statuses)
	}
	stats := statuses[len(statuses)-1]

	perTarget := map[string]int{}
	n := 0
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		n++
		var ev wire.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		argv := ev.Fields["argv"]
		if strings.Contains(argv, "outsider") || ev.Fields["ppid"] == strconv.Itoa(outsider.PID()) {
			t.Errorf("outsider traced: %s", sc.Text())
		}
		for i, tg := range targets {
			if ev.Pod != tg.c.Target().Pod {
				continue
			}
			if ev.Fields["filename"] == bin {
				perTarget[ev.Pod]++
				if want := bin + " target " + strconv.Itoa(i); argv != want || ev.Fields["ppid"] != strconv.Itoa(tg.p.PID()) {
					t.Errorf("event of target %d: argv %q (want %q), ppid %s (want %d)", i, argv, want, ev.Fields["ppid"], tg.p.PID())
				}
			}
		}
		if ev.Node != "n1" || ev.Namespace != "test" || ev.Container != "app" {
			t.Errorf("event without its target: %s", sc.Text())
		}
	}
	t.Logf("%d events, stats %+v, per target %v", n, stats, perTarget)
	if len(perTarget) != 2 || perTarget[targets[0].c.Target().Pod] < 20 || perTarget[targets[1].c.Target().Pod] < 20 {
		t.Errorf("execs per target %v, want >= 20 for each of the 2 targets", perTarget)
	}
	if stats.Events != uint64(n) || stats.Lost != 0 {
		t.Errorf("stats %+v, want %d events and none lost", stats, n)
	}
	if left := testenv.WaitProgramsGone(t, "kt_", 5*time.Second); len(left) != 0 {
		t.Errorf("programs left: %v", left)
	}
	if after := testenv.AllPrograms(t); after != before {
		t.Errorf("BPF programs on the machine: %d before, %d after", before, after)
	}
}

// syscall-top through Run, as text, in both modes: rows every interval,
// the target's getppid calls counted exactly, times only with latency.
func TestRunEBPFSyscallTopText(t *testing.T) {
	const calls = 50000
	for _, latency := range []string{"true", "false"} {
		t.Run("latency="+latency, func(t *testing.T) {
			c := testenv.NewContainer(t)
			p := testenv.Start(t, "kttarget", testenv.Work{Kind: "syscalls", Count: calls}, syscall.CLONE_NEWNS|syscall.CLONE_NEWNET)
			c.Add(t, p.PID())
			outsider := testenv.Start(t, "ktoutsider", testenv.Work{Kind: "syscalls", Count: calls}, 0)
			req := ebpfRequest("syscall-top", hooks.OutputText, map[string]string{"interval": "300ms", "top": "5", "latency": latency}, c.Target())
			stdout, statuses, err := ebpfRun(t, req, func() {
				p.Go(t)
				outsider.Go(t)
				p.Line(t)
				outsider.Line(t)
				time.Sleep(700 * time.Millisecond)
			})
			if err != nil {
				t.Fatalf("Run: %v\nstatuses: %+v", err, statuses)
			}
			var getppid int
			lines := strings.Split(strings.TrimSpace(stdout), "\n")
			for _, line := range lines {
				// <time> [000] kttarget-<pid> syscall: syscall=… nr=… count=…
				f := strings.Fields(line)
				if len(f) < 5 || f[2] != "kttarget-"+strconv.Itoa(p.PID()) || f[3] != "syscall:" {
					t.Errorf("line %q", line)
					continue
				}
				if strings.Contains(line, " avg_ns=") != (latency == "true") {
					t.Errorf("line %q with latency=%s", line, latency)
				}
				if f[4] == "syscall=getppid" {
					for _, kv := range f[5:] {
						if v, ok := strings.CutPrefix(kv, "count="); ok {
							n, _ := strconv.Atoi(v)
							getppid += n
						}
					}
				}
			}
			t.Logf("%d rows, e.g. %q", len(lines), lines[0])
			if getppid != calls {
				t.Errorf("getppid calls %d, want %d", getppid, calls)
			}
			if left := testenv.WaitProgramsGone(t, "kt_", 5*time.Second); len(left) != 0 {
				t.Errorf("programs left: %v", left)
			}
		})
	}
}

// A setup error in the hook (a target in the node's mount namespace)
// fails before ready and leaves no program loaded.
func TestRunEBPFAttachErrorLeavesNothing(t *testing.T) {
	c := testenv.NewContainer(t)
	p := testenv.Start(t, "kthost", testenv.Work{Kind: "syscalls"}, 0) // no namespaces of its own
	c.Add(t, p.PID())
	req := ebpfRequest("open", hooks.OutputText, nil, c.Target())
	stdout, statuses, err := ebpfRun(t, req, func() { t.Error("the session started") })
	if err == nil || !strings.Contains(err.Error(), "mount namespace") {
		t.Fatalf("Run error %v, want one about the mount namespace", err)
	}
	t.Log(err)
	var kinds []string
	for _, s := range statuses {
		kinds = append(kinds, s.Kind)
	}
	if strings.Join(kinds, ",") != "resolved,error" || stdout != "" {
		t.Errorf("status kinds %v, stdout %q: want resolved, error and no data", kinds, stdout)
	}
	if left := testenv.WaitProgramsGone(t, "kt_", 5*time.Second); len(left) != 0 {
		t.Errorf("programs left: %v", left)
	}
}

// A target whose processes all exit ends a session that is not framed by
// itself, and every event it made before is delivered: the hook drains the
// kernel's buffers with the target still attached. Removing the target
// first dropped, silently, what still waited in the ring: here a burst too
// small to wake the reader (it polls every 50 ms), the workload killed at
// once, and a refresh every 5 ms that finds it gone before the poll.
func TestRunEBPFTargetGoneKeepsItsLastEvents(t *testing.T) {
	const opens = 2000
	file := filepath.Join(t.TempDir(), "ktgone-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := testenv.NewContainer(t)
	p := testenv.Start(t, "ktgone", testenv.Work{Kind: "open", Paths: []string{file}, Count: opens}, syscall.CLONE_NEWNS)
	c.Add(t, p.PID())
	req := ebpfRequest("open", hooks.OutputJSON, nil, c.Target())
	stdout, statuses, err := ebpfRunRefresh(t, req, 5*time.Millisecond, func() {
		p.Go(t)
		if line := p.Line(t); line != "done" {
			t.Fatalf("workload said %q, want done", line)
		}
		_ = p.Cmd.Process.Kill()
		_ = p.Wait()
		time.Sleep(time.Second)
	})
	if err != nil {
		t.Fatalf("Run: %v\nstatuses: %+v", err, statuses)
	}
	stats := statuses[len(statuses)-1]
	var gone bool
	for _, s := range statuses {
		gone = gone || (s.Kind == wire.StatusTargetEnded && s.Message == msgGone)
	}
	n, ours := 0, 0
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		n++
		var ev wire.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if ev.Fields["path"] == file {
			ours++
		}
	}
	t.Logf("%d events, %d opens of the file; stats %+v", n, ours, stats)
	if !gone || stats.Kind != wire.StatusStats || stats.Ended != endedTarget {
		t.Errorf("the session did not end with its target: statuses %+v", statuses)
	}
	if ours != opens || stats.Lost != 0 || stats.Events != uint64(n) {
		t.Errorf("%d opens of the file delivered, want all %d; stats %+v (want none lost, %d events)", ours, opens, stats, n)
	}
}

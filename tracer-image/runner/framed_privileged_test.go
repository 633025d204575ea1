//go:build linux && privileged

package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
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
	"github.com/ktrace-dev/kubectl-trace/hooks/ftrace"
	"github.com/ktrace-dev/kubectl-trace/hooks/tcpdump"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/test/testenv"
)

// framedRun plays the plugin of a framed session: it waits for ready,
// sends the go byte, then lets the test send control lines and wait for
// statuses; end closes stdin and waits for Run.
type framedRun struct {
	t              *testing.T
	stdin          *io.PipeWriter
	stdout, stderr syncBuffer
	done           chan error
}

func startFramed(t *testing.T, req wire.Request, cfg Config) *framedRun {
	t.Helper()
	r := &framedRun{t: t, done: make(chan error, 1)}
	stdinR, stdinW := io.Pipe()
	r.stdin = stdinW
	t.Cleanup(func() { stdinW.Close() })
	cfg.Stdin, cfg.Stdout, cfg.Stderr = stdinR, &r.stdout, &r.stderr
	go func() { r.done <- Run(context.Background(), req, cfg) }()
	r.wait("ready", func(s wire.Status) bool { return s.Kind == wire.StatusReady })
	if _, err := stdinW.Write([]byte{'g'}); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *framedRun) control(c wire.Control) {
	r.t.Helper()
	line, err := wire.EncodeControl(c)
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.stdin.Write(line); err != nil {
		r.t.Fatal(err)
	}
}

func (r *framedRun) wait(what string, ok func(wire.Status) bool) wire.Status {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(r.stderr.String(), "\n") {
			if s, good := wire.ParseStatus([]byte(line)); good && ok(s) {
				return s
			}
		}
		select {
		case err := <-r.done:
			r.t.Fatalf("Run returned %v while waiting for %s; stderr:\n%s", err, what, r.stderr.String())
		default:
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("no %s status within 20 s; stderr:\n%s", what, r.stderr.String())
	return wire.Status{}
}

func (r *framedRun) end() (map[int][]byte, []wire.Status) {
	return r.endFrames(true)
}

// endFrames is end; lines says whether each frame must end a line (not
// for pcap).
func (r *framedRun) endFrames(lines bool) (map[int][]byte, []wire.Status) {
	r.t.Helper()
	r.stdin.Close()
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Fatalf("Run: %v\nstderr:\n%s", err, r.stderr.String())
		}
	case <-time.After(20 * time.Second):
		r.t.Fatal("Run did not return within 20 s of the end of stdin")
	}
	out := map[int][]byte{}
	br := bytes.NewReader([]byte(r.stdout.String()))
	var buf []byte
	for {
		idx, p, nb, err := wire.ReadFrame(br, buf)
		buf = nb
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			r.t.Fatalf("stdout is not frames: %v", err)
		}
		if lines && (len(p) == 0 || p[len(p)-1] != '\n') {
			r.t.Errorf("frame of target %d does not end a line: %.200q", idx, p)
		}
		out[idx] = append(out[idx], p...)
	}
	statuses, _ := splitStderr(r.t, r.stderr.String())
	return out, statuses
}

func endedIndex(idx int) func(wire.Status) bool {
	return func(s wire.Status) bool {
		return s.Kind == wire.StatusTargetEnded && s.Index != nil && *s.Index == idx
	}
}

func addedIndex(idx int) func(wire.Status) bool {
	return func(s wire.Status) bool {
		return s.Kind == wire.StatusTargetAdded && s.Index != nil && *s.Index == idx
	}
}

func fakeTarget(c *testenv.Container, i int) wire.Target {
	return wire.Target{Node: "n1", Namespace: "test", Pod: "kt" + strconv.Itoa(i), PodUID: "u" + strconv.Itoa(i),
		Container: "app", ContainerID: "containerd://" + c.ID}
}

// The ftrace sched hook in a framed session: two containers from the
// start, a third added by a control message, the first one's processes
// killed. Each index gets its own container's events; the killed one ends
// by itself while the others go on.
func TestRunFramedFtraceSched(t *testing.T) {
	var (
		cs    []*testenv.Container
		loops []*testenv.Proc
	)
	for i := range 3 {
		c := testenv.NewContainer(t)
		l := startLoop(t, "ktloop"+strconv.Itoa(i), syscall.CLONE_NEWNS|syscall.CLONE_NEWNET)
		c.Add(t, l.PID())
		cs, loops = append(cs, c), append(loops, l)
	}
	req := privRequest(hooks.OutputText, "containerd://"+cs[0].ID)
	req.Framed = true
	req.Targets = []wire.Target{fakeTarget(cs[0], 0), fakeTarget(cs[1], 1)}
	r := startFramed(t, req, Config{RefreshInterval: 200 * time.Millisecond, Runtimes: map[string]attach.Runtime{hooks.KindFtrace: ftrace.Runtime{}}})
	for _, l := range loops {
		l.Go(t)
	}
	time.Sleep(700 * time.Millisecond)
	r.control(wire.Control{Add: ptr(fakeTarget(cs[2], 2))})
	r.wait("target-added 2", addedIndex(2))
	time.Sleep(700 * time.Millisecond)
	syscall.Kill(-loops[0].PID(), syscall.SIGKILL)
	killed := time.Now()
	gone := r.wait("target-ended 0", endedIndex(0))
	t.Logf("target 0 ended %s after the kill: %+v", time.Since(killed), gone)
	time.Sleep(time.Second)
	out, statuses := r.end()

	if gone.Message != msgGone || gone.Failed {
		t.Errorf("target-ended of the killed container: %+v", gone)
	}
	kinds := kindsBut(t, statuses)
	if want := "ready,resolved,resolved,started,target-added,target-ended,stats"; strings.Join(kinds, ",") != want {
		t.Errorf("status kinds %v, want %s", kinds, want)
	}
	last := map[int]float64{}
	for idx := range 3 {
		lines := parseText(t, string(out[idx]))
		own := 0
		for _, l := range lines {
			for j := range 3 {
				if l.comm == "ktloop"+strconv.Itoa(j) {
					if j == idx {
						own++
					} else {
						t.Errorf("target %d has an event of container %d: %+v", idx, j, l)
					}
				}
			}
		}
		raw := strings.Split(strings.TrimSpace(string(out[idx])), "\n")
		if ts, err := strconv.ParseFloat(strings.Fields(raw[len(raw)-1])[0], 64); err == nil {
			last[idx] = ts
		}
		t.Logf("target %d: %d events, %d of its loop", idx, len(lines), own)
		if own == 0 {
			t.Errorf("target %d: no event of its own loop", idx)
		}
	}
	// The others went on after the first was gone.
	if last[1] < last[0]+0.5 || last[2] < last[0]+0.5 {
		t.Errorf("last events: %v; targets 1 and 2 should go on well after 0", last)
	}
}

func ptr[T any](v T) *T { return &v }

// kindsBut returns the kinds of the statuses but warnings, which are
// logged: a helper of another test on the machine may leave a tracefs
// instance behind, which a session removes with a warning.
func kindsBut(t *testing.T, statuses []wire.Status) []string {
	t.Helper()
	var kinds []string
	for _, s := range statuses {
		if s.Kind == wire.StatusWarning {
			t.Logf("warning: %s", s.Message)
			continue
		}
		kinds = append(kinds, s.Kind)
	}
	return kinds
}

// An eBPF hook (exec) in a framed session: the same story.
func TestRunFramedEBPFExec(t *testing.T) {
	bin := testenv.CopyBinary(t, "/bin/true", "ktexec-child")
	var (
		cs    []*testenv.Container
		procs []*testenv.Proc
	)
	for i := range 3 {
		c := testenv.NewContainer(t)
		p := testenv.Start(t, "kttarget"+strconv.Itoa(i), testenv.Work{Kind: "exec", Path: bin, Args: []string{"target", strconv.Itoa(i)}, Every: 20 * time.Millisecond},
			syscall.CLONE_NEWNS|syscall.CLONE_NEWNET)
		c.Add(t, p.PID())
		cs, procs = append(cs, c), append(procs, p)
	}
	req := ebpfRequest("exec", hooks.OutputJSON, nil, cs[0].Target(), cs[1].Target())
	req.Framed = true
	r := startFramed(t, req, Config{RefreshInterval: 200 * time.Millisecond, Runtimes: map[string]attach.Runtime{hooks.KindEBPF: ebpf.Runtime{}}})
	for _, p := range procs {
		p.Go(t)
	}
	time.Sleep(700 * time.Millisecond)
	r.control(wire.Control{Add: ptr(cs[2].Target())})
	r.wait("target-added 2", addedIndex(2))
	time.Sleep(700 * time.Millisecond)
	procs[0].Cmd.Process.Kill()
	gone := r.wait("target-ended 0", endedIndex(0))
	time.Sleep(time.Second)
	out, statuses := r.end()

	if gone.Message != msgGone || gone.Failed {
		t.Errorf("target-ended of the killed container: %+v", gone)
	}
	kinds := kindsBut(t, statuses)
	if want := "ready,resolved,resolved,started,target-added,target-ended,stats"; strings.Join(kinds, ",") != want {
		t.Errorf("status kinds %v, want %s: %+v", kinds, want, statuses)
	}
	last := map[int]float64{}
	for idx := range 3 {
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(string(out[idx])), "\n") {
			if line == "" {
				continue
			}
			var ev wire.Event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("target %d: line %q: %v", idx, line, err)
			}
			if ev.Pod != cs[idx].Target().Pod {
				t.Errorf("target %d has an event of pod %s", idx, ev.Pod)
			}
			if want := bin + " target " + strconv.Itoa(idx); ev.Fields["filename"] == bin && ev.Fields["argv"] != want {
				t.Errorf("target %d: argv %q, want %q", idx, ev.Fields["argv"], want)
			}
			n++
			last[idx] = max(last[idx], ev.Time)
		}
		t.Logf("target %d: %d events", idx, n)
		if n < 10 {
			t.Errorf("target %d: %d events, want >= 10", idx, n)
		}
	}
	if last[1] < last[0]+0.5 || last[2] < last[0]+0.5 {
		t.Errorf("last events: %v; targets 1 and 2 should go on well after 0", last)
	}
	if left := testenv.WaitProgramsGone(t, "kt_", 5*time.Second); len(left) != 0 {
		t.Errorf("programs left: %v", left)
	}
}

// tcpdump in a framed session: a capture per target, each target's lines
// in its own frames without a prefix; a third target added, the first
// removed by a control message. pcap: a stream per target, each a whole
// pcap file.
func TestRunFramedTcpdump(t *testing.T) {
	ports := []int{7211, 7212, 7213}
	var cs []*testenv.Container
	for i, port := range ports {
		c := testenv.NewContainer(t)
		p := testenv.StartPeer(t, port, "hello-"+strconv.Itoa(i), 0)
		c.Add(t, p.PID())
		cs = append(cs, c)
	}
	attachers := map[string]attach.Runtime{hooks.KindTcpdump: tcpdump.Runtime{}}

	t.Run("text", func(t *testing.T) {
		req := tcpdumpRequest(hooks.OutputText, "", map[string]string{"filter": "tcp[tcpflags] & tcp-syn != 0"})
		req.Framed = true
		req.Targets = []wire.Target{fakeTarget(cs[0], 0), fakeTarget(cs[1], 1)}
		r := startFramed(t, req, Config{RefreshInterval: 200 * time.Millisecond, Runtimes: attachers})
		time.Sleep(700 * time.Millisecond)
		r.control(wire.Control{Add: ptr(fakeTarget(cs[2], 2))})
		r.wait("target-added 2", addedIndex(2))
		time.Sleep(700 * time.Millisecond)
		r.control(wire.Control{Remove: ptr(0)})
		removed := r.wait("target-ended 0", endedIndex(0))
		time.Sleep(time.Second)
		out, statuses := r.end()
		if removed.Message != msgRemoved || removed.Failed {
			t.Errorf("target-ended of the removed target: %+v", removed)
		}
		var kinds []string
		for _, s := range statuses {
			kinds = append(kinds, s.Kind)
		}
		if want := "ready,resolved,resolved,started,target-added,target-ended,stats"; strings.Join(kinds, ",") != want {
			t.Errorf("status kinds %v, want %s: %+v", kinds, want, statuses)
		}
		for idx, port := range ports {
			lines := strings.Split(strings.TrimSpace(string(out[idx])), "\n")
			for _, l := range lines {
				if !strings.Contains(l, "127.0.0.1."+strconv.Itoa(port)) || strings.HasPrefix(l, "[") {
					t.Errorf("target %d: line %q", idx, l)
				}
			}
			t.Logf("target %d: %d lines", idx, len(lines))
			if len(lines) < 5 {
				t.Errorf("target %d: %d lines, want >= 5", idx, len(lines))
			}
		}
	})

	t.Run("pcap", func(t *testing.T) {
		req := tcpdumpRequest(hooks.OutputPCAP, "", nil)
		req.Framed = true
		req.Targets = []wire.Target{fakeTarget(cs[0], 0), fakeTarget(cs[1], 1)}
		r := startFramed(t, req, Config{RefreshInterval: 200 * time.Millisecond, Runtimes: attachers})
		time.Sleep(1500 * time.Millisecond)
		out, _ := r.endFrames(false)
		for idx := range 2 {
			file := filepath.Join(t.TempDir(), "cap.pcap")
			if err := os.WriteFile(file, out[idx], 0o644); err != nil {
				t.Fatal(err)
			}
			text := testenv.ReadPcap(t, file)
			if !strings.Contains(text, "hello-"+strconv.Itoa(idx)) || strings.Contains(text, "hello-"+strconv.Itoa(1-idx)) {
				t.Errorf("target %d: capture\n%s", idx, text)
			}
		}
	})
}

// A hook that sums per target (syscall-top) takes a target added while it
// runs: its rows come under the new index, its getppid calls counted
// exactly.
func TestRunFramedEBPFSyscallTopAdd(t *testing.T) {
	const calls = 20000
	var (
		cs    []*testenv.Container
		procs []*testenv.Proc
	)
	for i := range 2 {
		c := testenv.NewContainer(t)
		p := testenv.Start(t, "kttarget"+strconv.Itoa(i), testenv.Work{Kind: "syscalls", Count: calls}, syscall.CLONE_NEWNS|syscall.CLONE_NEWNET)
		c.Add(t, p.PID())
		cs, procs = append(cs, c), append(procs, p)
	}
	req := ebpfRequest("syscall-top", hooks.OutputText, map[string]string{"interval": "300ms", "top": "5"}, cs[0].Target())
	req.Framed = true
	r := startFramed(t, req, Config{RefreshInterval: 200 * time.Millisecond, Runtimes: map[string]attach.Runtime{hooks.KindEBPF: ebpf.Runtime{}}})
	r.control(wire.Control{Add: ptr(cs[1].Target())})
	r.wait("target-added 1", addedIndex(1))
	for _, p := range procs {
		p.Go(t)
		p.Line(t)
	}
	time.Sleep(700 * time.Millisecond)
	out, _ := r.end()
	for idx := range 2 {
		getppid := 0
		for _, line := range strings.Split(strings.TrimSpace(string(out[idx])), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 || f[2] != "kttarget"+strconv.Itoa(idx)+"-"+strconv.Itoa(procs[idx].PID()) {
				t.Errorf("target %d: line %q", idx, line)
				continue
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
		if getppid != calls {
			t.Errorf("target %d: getppid calls %d, want %d", idx, getppid, calls)
		}
	}
}

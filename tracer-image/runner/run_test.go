package runner

import (
	"bufio"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// fakeHook stands for a kernel hook: Stream emits before at once, then
// waits for the end, then emits after (what a real hook drains).
type fakeHook struct {
	before, after []wire.Event
	clock         string // the clock of its events' Time
	streamErr     error
	onStream      func()

	mu       sync.Mutex
	streamed bool
	closed   int
	events   uint64
	added    map[int][]int
	addedCh  chan struct{}
}

func (f *fakeHook) Stream(ctx context.Context, out attach.Sink) error {
	f.mu.Lock()
	f.streamed = true
	f.mu.Unlock()
	send := func(evs []wire.Event) error {
		for i := range evs {
			ev := evs[i]
			if err := out.Emit(&ev, "k=v"); err != nil {
				return err
			}
			f.mu.Lock()
			f.events++
			f.mu.Unlock()
		}
		return nil
	}
	if err := send(f.before); err != nil {
		return err
	}
	if f.onStream != nil {
		f.onStream()
	}
	if f.streamErr != nil {
		return f.streamErr
	}
	<-ctx.Done()
	return send(f.after)
}

// Output is a hook's that writes events, of clock (by default one that
// cannot be related to the wall clock: the statuses carry no offset).
func (f *fakeHook) Output() attach.Output { return attach.Output{Clock: f.clock} }

func (f *fakeHook) Stats() attach.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return attach.Stats{Events: f.events, Lost: 3}
}

func (f *fakeHook) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return nil
}

func (f *fakeHook) AddThreads(target int, tids []int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.added == nil {
		f.added = map[int][]int{}
	}
	f.added[target] = append(f.added[target], tids...)
	if f.addedCh != nil {
		close(f.addedCh)
		f.addedCh = nil
	}
	return nil
}

// fakeNode is a node with one container (id) running pid 4242 with two
// threads, in a cgroup v1 memory hierarchy under cg/.
func fakeNode(t *testing.T) (procRoot, cgroupRoot, cgroupDir string) {
	t.Helper()
	dir := t.TempDir()
	cpath := "/kubepods/besteffort/pod" + podUID + "/" + id
	procRoot = filepath.Join(dir, "proc")
	writeProc(t, procRoot, append(append([]fakeProc{}, bystanders...),
		fakeProc{pid: 4242, cgroup: v1(cpath, "/"), tids: []int{4242, 4243}}))
	cgroupRoot = filepath.Join(dir, "cg")
	cgroupDir = filepath.Join(cgroupRoot, "memory", cpath)
	mustWrite(t, filepath.Join(cgroupDir, "cgroup.procs"), "4242\n")
	return procRoot, cgroupRoot, cgroupDir
}

func request(output string, containerIDs ...string) wire.Request {
	r := wire.Request{Version: wire.ProtocolVersion, SessionID: "s1", Hook: "sched", Output: output}
	for _, c := range containerIDs {
		r.Targets = append(r.Targets, target(c))
	}
	return r
}

// fakeClock returns start, then start+2.5s for every later call.
func fakeClock() func() time.Time {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	calls := 0
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return start
		}
		return start.Add(2500 * time.Millisecond)
	}
}

func parseStatuses(t *testing.T, stderr string) []wire.Status {
	t.Helper()
	var out []wire.Status
	sc := bufio.NewScanner(strings.NewReader(stderr))
	for sc.Scan() {
		s, ok := wire.ParseStatus(sc.Bytes())
		if !ok {
			t.Errorf("stderr line is not a status: %q", sc.Text())
			continue
		}
		out = append(out, s)
	}
	return out
}

func kinds(ss []wire.Status) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Kind)
	}
	return out
}

// absent is a container id that no process of the fake node has.
var absent = strings.Repeat("ab", 32)

var ev1 = wire.Event{Time: 1.000001, CPU: 1, PID: 4242, Comm: "app", Event: "sched_switch",
	Node: "n1", Namespace: "ns", Pod: "web", Container: "app"}
var ev2 = wire.Event{Time: 2.5, CPU: 0, PID: 4243, Comm: "app worker", Event: "sched_process_exit",
	Node: "n1", Namespace: "ns", Pod: "web", Container: "app"}

func TestRunLifecycle(t *testing.T) {
	tests := []struct {
		name string
		req  wire.Request
		// stdin returns the plugin's end of stdin; cancel cancels Run's
		// context.
		stdin      func(cancel context.CancelFunc) io.Reader
		cancelAt   string // "start": before Run; "stream": when Stream runs
		attachErr  error
		streamErr  error
		noAttacher bool

		wantKinds    []string
		wantStdout   string
		wantErr      string
		wantStreamed bool
		wantAttached bool
	}{
		{
			name:         "go byte then end of stdin streams everything, drained events too",
			req:          request(hooks.OutputText, "containerd://"+id),
			stdin:        func(context.CancelFunc) io.Reader { return strings.NewReader("g") },
			wantKinds:    []string{wire.StatusReady, wire.StatusResolved, wire.StatusStarted, wire.StatusStats},
			wantStdout:   "1.000001 [001] app-4242 sched_switch: k=v\n2.500000 [000] app_worker-4243 sched_process_exit: k=v\n",
			wantStreamed: true, wantAttached: true,
		},
		{
			name: "a stop message ends the session while stdin stays open",
			req:  request(hooks.OutputText, "containerd://"+id),
			stdin: func(context.CancelFunc) io.Reader {
				// Never ends: only the stop message can end the session.
				return io.MultiReader(strings.NewReader("\n"+`{"stop":true}`+"\n"), blockingReader{})
			},
			wantKinds:    []string{wire.StatusReady, wire.StatusResolved, wire.StatusStarted, wire.StatusStats},
			wantStdout:   "1.000001 [001] app-4242 sched_switch: k=v\n2.500000 [000] app_worker-4243 sched_process_exit: k=v\n",
			wantStreamed: true, wantAttached: true,
		},
		{
			name:      "json output",
			req:       request(hooks.OutputJSON, "containerd://"+id),
			stdin:     func(context.CancelFunc) io.Reader { return strings.NewReader("g") },
			wantKinds: []string{wire.StatusReady, wire.StatusResolved, wire.StatusStarted, wire.StatusStats},
			wantStdout: `{"time":1.000001,"cpu":1,"pid":4242,"comm":"app","event":"sched_switch","node":"n1","namespace":"ns","pod":"web","container":"app"}` + "\n" +
				`{"time":2.5,"cpu":0,"pid":4243,"comm":"app worker","event":"sched_process_exit","node":"n1","namespace":"ns","pod":"web","container":"app"}` + "\n",
			wantStreamed: true, wantAttached: true,
		},
		{
			name:         "end of stdin before the go byte stops without data",
			req:          request(hooks.OutputText, "containerd://"+id),
			stdin:        func(context.CancelFunc) io.Reader { return strings.NewReader("") },
			wantKinds:    []string{wire.StatusReady, wire.StatusResolved, wire.StatusStats},
			wantAttached: true,
		},
		{
			name: "signal before the go byte stops without data",
			req:  request(hooks.OutputText, "containerd://"+id),
			stdin: func(context.CancelFunc) io.Reader {
				r, _ := io.Pipe()
				return r
			},
			cancelAt:     "start",
			wantKinds:    []string{wire.StatusReady, wire.StatusResolved, wire.StatusStats},
			wantAttached: true,
		},
		{
			name: "signal while streaming stops cleanly",
			req:  request(hooks.OutputText, "containerd://"+id),
			stdin: func(context.CancelFunc) io.Reader {
				r, w := io.Pipe()
				go w.Write([]byte("g"))
				return r
			},
			cancelAt:     "stream",
			wantKinds:    []string{wire.StatusReady, wire.StatusResolved, wire.StatusStarted, wire.StatusStats},
			wantStdout:   "1.000001 [001] app-4242 sched_switch: k=v\n2.500000 [000] app_worker-4243 sched_process_exit: k=v\n",
			wantStreamed: true, wantAttached: true,
		},
		{
			name:      "target not on this node",
			req:       request(hooks.OutputText, "containerd://"+absent),
			stdin:     func(context.CancelFunc) io.Reader { return strings.NewReader("g") },
			wantKinds: []string{wire.StatusError},
			wantErr:   `container "abababababab…" of pod ns/web (container app) not found in`,
		},
		{
			name:         "one of two targets not on this node is a warning",
			req:          request(hooks.OutputText, "containerd://"+absent, "containerd://"+id),
			stdin:        func(context.CancelFunc) io.Reader { return strings.NewReader("") },
			wantKinds:    []string{wire.StatusReady, wire.StatusResolved, wire.StatusWarning, wire.StatusStats},
			wantAttached: true,
		},
		{
			name:         "attach failure surfaces before ready",
			req:          request(hooks.OutputText, "containerd://"+id),
			stdin:        func(context.CancelFunc) io.Reader { return strings.NewReader("g") },
			attachErr:    errors.New("creating tracefs instance: permission denied"),
			wantKinds:    []string{wire.StatusResolved, wire.StatusError},
			wantErr:      `attaching hook "sched": creating tracefs instance: permission denied`,
			wantAttached: true,
		},
		{
			name:         "stream failure is an error after the data so far",
			req:          request(hooks.OutputText, "containerd://"+id),
			stdin:        func(context.CancelFunc) io.Reader { return strings.NewReader("g") },
			streamErr:    errors.New("reading trace_pipe: input/output error"),
			wantKinds:    []string{wire.StatusReady, wire.StatusResolved, wire.StatusStarted, wire.StatusError},
			wantStdout:   "1.000001 [001] app-4242 sched_switch: k=v\n",
			wantErr:      "tracing: reading trace_pipe: input/output error",
			wantStreamed: true, wantAttached: true,
		},
		{
			name:       "no runtime for the hook's kind",
			req:        request(hooks.OutputText, "containerd://"+id),
			stdin:      func(context.CancelFunc) io.Reader { return strings.NewReader("g") },
			noAttacher: true,
			wantKinds:  []string{wire.StatusError},
			wantErr:    `hook "sched" of kind "ftrace" is not supported by this tracer`,
		},
		{
			name:      "invalid request",
			req:       wire.Request{Version: 99, SessionID: "s1", Hook: "sched", Output: hooks.OutputText, Targets: []wire.Target{target("containerd://" + id)}},
			stdin:     func(context.CancelFunc) io.Reader { return strings.NewReader("g") },
			wantKinds: []string{wire.StatusError},
			wantErr:   "invalid request: protocol version 99 is not 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			procRoot, cgroupRoot, _ := fakeNode(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelAt == "start" {
				cancel()
			}
			h := &fakeHook{before: []wire.Event{ev1}, after: []wire.Event{ev2}, streamErr: tt.streamErr}
			if tt.cancelAt == "stream" {
				h.onStream = cancel
			}
			var attached *attach.Attachment
			attachers := map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(_ context.Context, a attach.Attachment) (attach.Session, error) {
				attached = &a
				if tt.attachErr != nil {
					return nil, tt.attachErr
				}
				return h, nil
			})}
			if tt.noAttacher {
				attachers = map[string]attach.Runtime{}
			}
			var stdout, stderr syncBuffer
			err := Run(ctx, tt.req, Config{
				ProcRoot: procRoot, CgroupRoot: cgroupRoot,
				Stdin: tt.stdin(cancel), Stdout: &stdout, Stderr: &stderr,
				Runtimes: attachers, Now: fakeClock(), RefreshInterval: -1,
			})

			if tt.wantErr == "" && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)) {
				t.Fatalf("Run error %v, want one starting with %q", err, tt.wantErr)
			}
			statuses := parseStatuses(t, stderr.String())
			if diff := cmp.Diff(tt.wantKinds, kinds(statuses)); diff != "" {
				t.Errorf("status kinds mismatch (-want +got):\n%s", diff)
			}
			if last := statuses[len(statuses)-1]; tt.wantErr != "" && last.Message != err.Error() {
				t.Errorf("error status %q, want the returned error %q", last.Message, err)
			}
			if diff := cmp.Diff(tt.wantStdout, stdout.String()); diff != "" {
				t.Errorf("stdout mismatch (-want +got):\n%s", diff)
			}
			if h.streamed != tt.wantStreamed {
				t.Errorf("streamed = %v, want %v", h.streamed, tt.wantStreamed)
			}
			if (attached != nil) != tt.wantAttached {
				t.Errorf("attached = %v, want %v", attached != nil, tt.wantAttached)
			}
			if tt.wantAttached && tt.attachErr == nil && h.closed == 0 {
				t.Error("the hook was not closed")
			}
		})
	}
}

func TestRunStatuses(t *testing.T) {
	procRoot, cgroupRoot, cgroupDir := fakeNode(t)
	h := &fakeHook{before: []wire.Event{ev1}, after: []wire.Event{ev2}}
	var attached attach.Attachment
	var stdout, stderr syncBuffer
	req := request(hooks.OutputJSON, "containerd://"+id)
	err := Run(context.Background(), req, Config{
		ProcRoot: procRoot, CgroupRoot: cgroupRoot,
		Stdin: strings.NewReader("go"), Stdout: &stdout, Stderr: &stderr,
		Runtimes: map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(_ context.Context, a attach.Attachment) (attach.Session, error) {
			attached = a
			a.Warn("removed tracefs instance \"x\" left by a helper that is gone")
			return h, nil
		})},
		Now: fakeClock(), RefreshInterval: -1,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	tg := target("containerd://" + id)
	zero := 0
	want := []wire.Status{
		{Kind: wire.StatusReady},
		{Kind: wire.StatusResolved, Target: &tg, Index: &zero, Method: attach.MethodProcCgroup, PIDs: []int{4242},
			Message: "1 process, 2 threads in cgroup /kubepods/besteffort/pod" + podUID + "/" + id +
				"; processes that join later are found in " + cgroupDir},
		{Kind: wire.StatusWarning, Message: "removed tracefs instance \"x\" left by a helper that is gone"},
		{Kind: wire.StatusStarted},
		{Kind: wire.StatusStats, Events: 2, Lost: 3, Seconds: 2.5},
	}
	if diff := cmp.Diff(want, parseStatuses(t, stderr.String())); diff != "" {
		t.Errorf("statuses mismatch (-want +got):\n%s", diff)
	}
	wantAttach := attach.Attachment{
		Request: req, Fields: true, ProcRoot: procRoot,
		Targets: []attach.Target{{Target: tg, Method: attach.MethodProcCgroup, PIDs: []int{4242}, TIDs: []int{4242, 4243},
			Cgroups: []attach.Cgroup{
				{Controllers: "cpu,cpuacct", Path: "/kubepods/besteffort/pod" + podUID + "/" + id},
				{Controllers: "devices", Path: "/kubepods/besteffort/pod" + podUID + "/" + id},
				{Controllers: "memory", Path: "/kubepods/besteffort/pod" + podUID + "/" + id},
				{Controllers: "pids", Path: "/kubepods/besteffort/pod" + podUID + "/" + id},
			}}},
	}
	wantAttach.Hook, _ = hooks.Lookup("sched")
	if diff := cmp.Diff(wantAttach, attached, cmpopts.IgnoreFields(attach.Attachment{}, "Warn", "Log")); diff != "" {
		t.Errorf("attachment mismatch (-want +got):\n%s", diff)
	}
}

// A process that joins the container while the session runs (kubectl exec)
// reaches the hook through the membership refresh.
func TestRunRefresh(t *testing.T) {
	procRoot, cgroupRoot, cgroupDir := fakeNode(t)
	stdinR, stdinW := io.Pipe()
	added := make(chan struct{})
	h := &fakeHook{addedCh: added}
	h.onStream = func() {
		writeProc(t, procRoot, []fakeProc{{pid: 5000, cgroup: "0::/\n", tids: []int{5000, 5001}}})
		mustWrite(t, filepath.Join(cgroupDir, "cgroup.procs"), "4242\n5000\n")
		go func() {
			select {
			case <-added:
			case <-time.After(10 * time.Second):
			}
			stdinW.Close()
		}()
	}
	go stdinW.Write([]byte("g"))
	var stdout, stderr syncBuffer
	err := Run(context.Background(), request(hooks.OutputText, "containerd://"+id), Config{
		ProcRoot: procRoot, CgroupRoot: cgroupRoot,
		Stdin: stdinR, Stdout: &stdout, Stderr: &stderr,
		Runtimes:        map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(context.Context, attach.Attachment) (attach.Session, error) { return h, nil })},
		RefreshInterval: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if diff := cmp.Diff(map[int][]int{0: {5000, 5001}}, h.added); diff != "" {
		t.Errorf("added pids mismatch (-want +got):\n%s", diff)
	}
}

// When the container's processes are all gone, the session says so once
// and, its only target gone in a session that is not framed, ends by
// itself as a limit would.
func TestRunRefreshContainerGone(t *testing.T) {
	procRoot, cgroupRoot, cgroupDir := fakeNode(t)
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	var stderr syncBuffer
	h := &fakeHook{before: []wire.Event{ev1}}
	h.onStream = func() {
		mustWrite(t, filepath.Join(cgroupDir, "cgroup.procs"), "")
	}
	go stdinW.Write([]byte("g"))
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), request(hooks.OutputText, "containerd://"+id), Config{
			ProcRoot: procRoot, CgroupRoot: cgroupRoot,
			Stdin: stdinR, Stdout: io.Discard, Stderr: &stderr,
			Runtimes:        map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(context.Context, attach.Attachment) (attach.Session, error) { return h, nil })},
			RefreshInterval: 5 * time.Millisecond,
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end when its only target was gone")
	}
	statuses := parseStatuses(t, stderr.String())
	want := []string{wire.StatusReady, wire.StatusResolved, wire.StatusStarted, wire.StatusTargetEnded, wire.StatusStats}
	if diff := cmp.Diff(want, kinds(statuses)); diff != "" {
		t.Fatalf("status kinds mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(msgGone, statuses[3].Message); diff != "" {
		t.Errorf("target-ended mismatch (-want +got):\n%s", diff)
	}
	if statuses[3].Index == nil || *statuses[3].Index != 0 || statuses[3].Failed {
		t.Errorf("target-ended: index %v, failed %v; want 0, not failed", statuses[3].Index, statuses[3].Failed)
	}
	if diff := cmp.Diff(endedTarget, statuses[4].Ended); diff != "" {
		t.Errorf("stats Ended mismatch (-want +got):\n%s", diff)
	}
}

// A process that starts between the scan and the attach is found by the
// look the session takes right after attaching, before "ready".
func TestRunRefreshAfterAttach(t *testing.T) {
	procRoot, cgroupRoot, cgroupDir := fakeNode(t)
	h := &fakeHook{}
	var stderr syncBuffer
	err := Run(context.Background(), request(hooks.OutputText, "containerd://"+id), Config{
		ProcRoot: procRoot, CgroupRoot: cgroupRoot,
		Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &stderr,
		Runtimes: map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(context.Context, attach.Attachment) (attach.Session, error) {
			writeProc(t, procRoot, []fakeProc{{pid: 5000, cgroup: "0::/\n", tids: []int{5000, 5001}}})
			mustWrite(t, filepath.Join(cgroupDir, "cgroup.procs"), "4242\n5000\n")
			return h, nil
		})},
		RefreshInterval: time.Hour,
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if diff := cmp.Diff(map[int][]int{0: {5000, 5001}}, h.added); diff != "" {
		t.Errorf("added pids mismatch (-want +got):\n%s", diff)
	}
}

// blockingReader never returns: stdin held open by a plugin.
type blockingReader struct{}

func (blockingReader) Read([]byte) (int, error) { select {} }

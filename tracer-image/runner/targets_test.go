package runner

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Containers of the multi-target fake node: pod a (pid 4242, the id of
// fakeNode), b (5000) and c (6000), each in a cgroup of its own.
var multi = []struct {
	pod, id string
	pid     int
}{
	{"a", id, 4242},
	{"b", strings.Repeat("b1", 32), 5000},
	{"c", strings.Repeat("c2", 32), 6000},
}

func multiTarget(i int) wire.Target {
	return wire.Target{Node: "n1", Namespace: "ns", Pod: multi[i].pod, PodUID: podUID, Container: "app", ContainerID: "containerd://" + multi[i].id}
}

// multiNode builds a node with the containers of multi; it returns the
// cgroup.procs file of each.
func multiNode(t *testing.T) (procRoot, cgroupRoot string, procs []string) {
	t.Helper()
	dir := t.TempDir()
	procRoot = filepath.Join(dir, "proc")
	cgroupRoot = filepath.Join(dir, "cg")
	ps := append([]fakeProc{}, bystanders...)
	for _, c := range multi {
		cpath := "/kubepods/besteffort/pod" + podUID + "/" + c.id
		ps = append(ps, fakeProc{pid: c.pid, cgroup: v1(cpath, "/"), tids: []int{c.pid}})
		f := filepath.Join(cgroupRoot, "memory", cpath, "cgroup.procs")
		mustWrite(t, f, fmt.Sprint(c.pid, "\n"))
		procs = append(procs, f)
	}
	writeProc(t, procRoot, ps)
	return procRoot, cgroupRoot, procs
}

func multiRequest(output string, n int) wire.Request {
	r := wire.Request{Version: wire.ProtocolVersion, SessionID: "s1", Hook: "sched", Output: output, Framed: true}
	for i := range n {
		r.Targets = append(r.Targets, multiTarget(i))
	}
	return r
}

// multiHook is a hook of several targets: Stream emits what the test
// feeds it until the end; it takes and removes targets.
type multiHook struct {
	feed chan wire.Event

	mu      sync.Mutex
	targets []wire.Target // by slot
	removed []int
	addErr  error
}

func newMultiHook(a attach.Attachment) *multiHook {
	h := &multiHook{feed: make(chan wire.Event)}
	for _, r := range a.Targets {
		h.targets = append(h.targets, r.Target)
	}
	return h
}

func (h *multiHook) Stream(ctx context.Context, out attach.Sink) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-h.feed:
			if err := out.Emit(&ev, "k=v"); err != nil {
				return err
			}
		}
	}
}

// send emits one event of slot's target, numbered n.
func (h *multiHook) send(slot, n int) {
	h.mu.Lock()
	tg := h.targets[slot]
	h.mu.Unlock()
	h.feed <- wire.Event{Time: float64(n), PID: 1, Comm: tg.Pod, Event: "e", Node: tg.Node, Namespace: tg.Namespace, Pod: tg.Pod, Container: tg.Container}
}

func (h *multiHook) Output() attach.Output { return attach.Output{} }
func (h *multiHook) Stats() attach.Stats   { return attach.Stats{} }
func (h *multiHook) Close() error          { return nil }

func (h *multiHook) AddTarget(slot int, r attach.Target) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.addErr != nil {
		return h.addErr
	}
	if slot != len(h.targets) {
		return fmt.Errorf("slot %d, want %d", slot, len(h.targets))
	}
	h.targets = append(h.targets, r.Target)
	return nil
}

func (h *multiHook) RemoveTarget(slot int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removed = append(h.removed, slot)
	return nil
}

// frames decodes stdout into each target's payload, checking that every
// frame holds whole lines (or pcap records, when pcap).
func frames(t *testing.T, b []byte) (byTarget map[int][]byte, list []int) {
	t.Helper()
	byTarget = map[int][]byte{}
	r := bytes.NewReader(b)
	var buf []byte
	for {
		idx, p, nb, err := wire.ReadFrame(r, buf)
		buf = nb
		if errors.Is(err, io.EOF) {
			return byTarget, list
		}
		if err != nil {
			t.Fatalf("reading frames: %v", err)
		}
		byTarget[idx] = append(byTarget[idx], p...)
		list = append(list, idx)
	}
}

// session runs Run in the background on a pipe for stdin.
type testSession struct {
	stdin          *io.PipeWriter
	stdout, stderr syncBuffer
	done           chan error
}

func startSession(t *testing.T, req wire.Request, cfg Config) *testSession {
	t.Helper()
	s := &testSession{done: make(chan error, 1)}
	r, w := io.Pipe()
	s.stdin = w
	cfg.Stdin, cfg.Stdout, cfg.Stderr = r, &s.stdout, &s.stderr
	if cfg.Now == nil {
		cfg.Now = fakeClock()
	}
	go func() { s.done <- Run(context.Background(), req, cfg) }()
	t.Cleanup(func() { w.Close() })
	return s
}

func (s *testSession) write(t *testing.T, line string) {
	t.Helper()
	if _, err := s.stdin.Write([]byte(line)); err != nil {
		t.Fatalf("writing stdin: %v", err)
	}
}

// waitStatus waits for a status line for which ok is true.
func (s *testSession) waitStatus(t *testing.T, what string, ok func(wire.Status) bool) wire.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(s.stderr.String(), "\n") {
			if st, good := wire.ParseStatus([]byte(line)); good && ok(st) {
				return st
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no %s status; stderr:\n%s", what, s.stderr.String())
	return wire.Status{}
}

func (s *testSession) end(t *testing.T) []wire.Status {
	t.Helper()
	s.stdin.Close()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	return parseStatuses(t, s.stderr.String())
}

func kindIs(kind string, idx int) func(wire.Status) bool {
	return func(s wire.Status) bool { return s.Kind == kind && s.Index != nil && *s.Index == idx }
}

// Framed output: each target's records in frames of its index, whole
// lines only, and nothing but frames on stdout; json alike.
func TestRunFramedEvents(t *testing.T) {
	for _, output := range []string{hooks.OutputText, hooks.OutputJSON} {
		t.Run(output, func(t *testing.T) {
			procRoot, cgroupRoot, _ := multiNode(t)
			var h *multiHook
			// No flush in between: records of one target in a row share a frame.
			s := startSession(t, multiRequest(output, 2), Config{ProcRoot: procRoot, CgroupRoot: cgroupRoot, RefreshInterval: -1, FlushInterval: time.Hour,
				Runtimes: map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(_ context.Context, a attach.Attachment) (attach.Session, error) {
					h = newMultiHook(a)
					return h, nil
				})}})
			s.write(t, "g")
			for i, slot := range []int{0, 1, 1, 0, 1} {
				h.send(slot, i)
			}
			statuses := s.end(t)
			if diff := cmp.Diff([]string{"ready", "resolved", "resolved", "started", "stats"}, kinds(statuses)); diff != "" {
				t.Errorf("status kinds (-want +got):\n%s", diff)
			}
			got, list := frames(t, []byte(s.stdout.String()))
			if output == hooks.OutputText {
				want := map[int][]byte{
					0: []byte("0.000000 [000] a-1 e: k=v\n3.000000 [000] a-1 e: k=v\n"),
					1: []byte("1.000000 [000] b-1 e: k=v\n2.000000 [000] b-1 e: k=v\n4.000000 [000] b-1 e: k=v\n"),
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("frames (-want +got):\n%s", diff)
				}
				// Records of one target in a row share a frame.
				if diff := cmp.Diff([]int{0, 1, 0, 1}, list); diff != "" {
					t.Errorf("frame order (-want +got):\n%s", diff)
				}
				return
			}
			for idx, pod := range []string{"a", "b"} {
				lines := strings.Split(strings.TrimSuffix(string(got[idx]), "\n"), "\n")
				for _, l := range lines {
					if !strings.Contains(l, `"pod":"`+pod+`"`) || !strings.HasSuffix(l, "}") {
						t.Errorf("target %d: line %q", idx, l)
					}
				}
			}
		})
	}
}

// Limits count across targets, framed too.
func TestRunFramedLimits(t *testing.T) {
	procRoot, cgroupRoot, _ := multiNode(t)
	var h *multiHook
	req := multiRequest(hooks.OutputText, 2)
	req.MaxEvents = 3
	s := startSession(t, req, Config{ProcRoot: procRoot, CgroupRoot: cgroupRoot, RefreshInterval: -1,
		Runtimes: map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(_ context.Context, a attach.Attachment) (attach.Session, error) {
			h = newMultiHook(a)
			return h, nil
		})}})
	s.write(t, "g")
	h.send(0, 0)
	h.send(1, 1)
	h.send(1, 2)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the limit did not end the session")
	}
	statuses := parseStatuses(t, s.stderr.String())
	if last := statuses[len(statuses)-1]; last.Ended != endedMaxEvents || last.Events != 3 {
		t.Errorf("stats %+v, want 3 events, ended by max events", last)
	}
	got, _ := frames(t, []byte(s.stdout.String()))
	if len(got[0]) == 0 || strings.Count(string(got[1]), "\n") != 2 {
		t.Errorf("frames %q, %q", got[0], got[1])
	}
}

// multiRawHook writes each target's pcap stream to its own writer.
type multiRawHook struct {
	streams [][]byte
	chunk   int
}

func (f *multiRawHook) Output() attach.Output { return attach.Output{Raw: true} }
func (f *multiRawHook) Stats() attach.Stats   { return attach.Stats{} }
func (f *multiRawHook) Close() error          { return nil }

func (f *multiRawHook) Stream(ctx context.Context, out attach.Sink) error {
	w := out.Raw
	// Interleave the targets' pieces, as concurrent captures would.
	rest := slices.Clone(f.streams)
	for more := true; more; {
		more = false
		for slot, b := range rest {
			if len(b) == 0 {
				continue
			}
			n := min(f.chunk, len(b))
			if _, err := w(slot).Write(b[:n]); err != nil {
				return err
			}
			rest[slot] = b[n:]
			more = true
		}
	}
	<-ctx.Done()
	return nil
}

// Framed pcap: each target's file header is the first frame of its index,
// alone; then whole records; the size limit counts over the targets.
func TestRunFramedPcap(t *testing.T) {
	a, _ := pcapStream(binary.LittleEndian, 100, 50, 70)
	b, _ := pcapStream(binary.BigEndian, 30, 40)
	tests := []struct {
		name     string
		maxBytes int64
		// records each target gets
		want [2]int
	}{
		{name: "no limit", want: [2]int{3, 2}},
		// In 13-byte pieces taken in turn, b's records (46, 56) complete
		// before a's first (116): 2 headers (48) + 102 = 150, and a's
		// first does not fit 260.
		{name: "size limit across targets", maxBytes: 260, want: [2]int{0, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			procRoot, cgroupRoot, _ := multiNode(t)
			req := multiRequest(hooks.OutputPCAP, 2)
			req.Hook = "tcpdump"
			req.MaxBytes = tt.maxBytes
			h := &multiRawHook{streams: [][]byte{a, b}, chunk: 13}
			s := startSession(t, req, Config{ProcRoot: procRoot, CgroupRoot: cgroupRoot, RefreshInterval: -1,
				Runtimes: map[string]attach.Runtime{hooks.KindTcpdump: attach.OpenFunc(func(context.Context, attach.Attachment) (attach.Session, error) { return h, nil })}})
			s.write(t, "g")
			if tt.maxBytes == 0 {
				time.Sleep(50 * time.Millisecond)
				s.end(t)
			} else {
				select {
				case err := <-s.done:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("the limit did not end the session")
				}
			}
			r := bytes.NewReader([]byte(s.stdout.String()))
			var buf []byte
			first := map[int]bool{}
			got := map[int][]byte{}
			for {
				idx, p, nb, err := wire.ReadFrame(r, buf)
				buf = nb
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if !first[idx] {
					first[idx] = true
					if len(p) != pcapHeaderLen {
						t.Errorf("target %d: first frame of %d bytes, want the 24-byte header alone", idx, len(p))
					}
				}
				got[idx] = append(got[idx], p...)
			}
			for i := range 2 {
				if n := checkPcap(t, got[i]); n != tt.want[i] {
					t.Errorf("target %d: %d records, want %d", i, n, tt.want[i])
				}
			}
		})
	}
}

// Control messages: Add traces a third container under index 2, Remove
// stops one, a bad line is a warning, an Add that cannot be resolved
// ends its index as failed; the statuses before the go byte are held.
func TestRunControl(t *testing.T) {
	procRoot, cgroupRoot, _ := multiNode(t)
	var h *multiHook
	s := startSession(t, multiRequest(hooks.OutputText, 2), Config{ProcRoot: procRoot, CgroupRoot: cgroupRoot, RefreshInterval: time.Hour,
		Runtimes: map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(_ context.Context, a attach.Attachment) (attach.Session, error) {
			h = newMultiHook(a)
			a.Warn("from attach")
			return h, nil
		})}})
	s.waitStatus(t, "ready", func(st wire.Status) bool { return st.Kind == wire.StatusReady })
	time.Sleep(20 * time.Millisecond)
	if got := kinds(parseStatuses(t, s.stderr.String())); !slices.Equal(got, []string{wire.StatusReady}) {
		t.Fatalf("before the go byte stderr has %v, want ready alone", got)
	}
	add := func(tg wire.Target) string {
		b, err := wire.EncodeControl(wire.Control{Add: &tg})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// The go byte and the first message in one write.
	s.write(t, "g"+add(multiTarget(2)))
	added := s.waitStatus(t, "target-added", kindIs(wire.StatusTargetAdded, 2))
	if added.Target == nil || added.Target.Pod != "c" {
		t.Errorf("target-added %+v", added)
	}
	h.send(2, 7)
	h.send(0, 8)
	s.write(t, "{not json\n\n")
	s.waitStatus(t, "warning", func(st wire.Status) bool {
		return st.Kind == wire.StatusWarning && strings.HasPrefix(st.Message, "ignoring a control message")
	})
	s.write(t, `{"remove":0}`+"\n")
	s.waitStatus(t, "target-ended", kindIs(wire.StatusTargetEnded, 0))
	h.send(0, 9) // dropped: removed
	h.send(1, 10)
	absentTarget := multiTarget(2)
	absentTarget.Pod, absentTarget.ContainerID = "gone", "containerd://"+absent
	s.write(t, add(absentTarget))
	failed := s.waitStatus(t, "failed target-ended", kindIs(wire.StatusTargetEnded, 3))
	// Removing the target that failed to join says nothing; an index the
	// session never had is a warning.
	s.write(t, `{"remove":3}`+"\n"+`{"remove":9}`+"\n")
	s.waitStatus(t, "warning", func(st wire.Status) bool {
		return st.Kind == wire.StatusWarning && strings.Contains(st.Message, "no target 9")
	})
	statuses := s.end(t)

	want := []string{"ready", "resolved", "resolved", "warning", "started", "target-added", "warning", "target-ended", "target-ended", "warning", "stats"}
	if diff := cmp.Diff(want, kinds(statuses)); diff != "" {
		t.Errorf("status kinds (-want +got):\n%s", diff)
	}
	if !failed.Failed || !strings.Contains(failed.Message, "not found") {
		t.Errorf("failed add: %+v", failed)
	}
	for _, st := range statuses {
		if st.Kind == wire.StatusTargetEnded && *st.Index == 0 && (st.Message != msgRemoved || st.Failed) {
			t.Errorf("removed: %+v", st)
		}
	}
	got, _ := frames(t, []byte(s.stdout.String()))
	want2 := map[int][]byte{
		0: []byte("8.000000 [000] a-1 e: k=v\n"),
		1: []byte("10.000000 [000] b-1 e: k=v\n"),
		2: []byte("7.000000 [000] c-1 e: k=v\n"),
	}
	if diff := cmp.Diff(want2, got); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if diff := cmp.Diff([]int{0}, h.removed); diff != "" {
		t.Errorf("removed slots (-want +got):\n%s", diff)
	}
}

// A hook that cannot take targets: an Add ends its index, failed.
func TestRunControlAddUnsupported(t *testing.T) {
	procRoot, cgroupRoot, _ := fakeNode(t)
	h := &fakeHook{}
	req := request(hooks.OutputText, "containerd://"+id)
	req.Framed = true
	s := startSession(t, req, Config{ProcRoot: procRoot, CgroupRoot: cgroupRoot, RefreshInterval: -1,
		Runtimes: map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(context.Context, attach.Attachment) (attach.Session, error) { return h, nil })}})
	tg := multiTarget(2)
	line, _ := wire.EncodeControl(wire.Control{Add: &tg})
	s.write(t, "g"+string(line))
	st := s.waitStatus(t, "target-ended", kindIs(wire.StatusTargetEnded, 1))
	if !st.Failed || !strings.Contains(st.Message, "cannot add a target") {
		t.Errorf("status %+v", st)
	}
	s.end(t)
}

// In a framed session a target whose processes are gone ends alone, once;
// the others go on, and the session too.
func TestRunFramedTargetGone(t *testing.T) {
	procRoot, cgroupRoot, procs := multiNode(t)
	var h *multiHook
	s := startSession(t, multiRequest(hooks.OutputText, 2), Config{ProcRoot: procRoot, CgroupRoot: cgroupRoot, RefreshInterval: 5 * time.Millisecond,
		Runtimes: map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(_ context.Context, a attach.Attachment) (attach.Session, error) {
			h = newMultiHook(a)
			return h, nil
		})}})
	s.write(t, "g")
	mustWrite(t, procs[1], "")
	s.waitStatus(t, "target-ended", kindIs(wire.StatusTargetEnded, 1))
	time.Sleep(30 * time.Millisecond) // several more refreshes
	h.send(0, 1)
	h.send(1, 2) // dropped
	statuses := s.end(t)
	want := []string{"ready", "resolved", "resolved", "started", "target-ended", "stats"}
	if diff := cmp.Diff(want, kinds(statuses)); diff != "" {
		t.Errorf("status kinds (-want +got):\n%s", diff)
	}
	if st := statuses[4]; st.Message != msgGone || st.Failed {
		t.Errorf("target-ended %+v", st)
	}
	if st := statuses[5]; st.Ended != "" {
		t.Errorf("stats Ended %q, want none", st.Ended)
	}
	got, _ := frames(t, []byte(s.stdout.String()))
	if diff := cmp.Diff(map[int][]byte{0: []byte("1.000000 [000] a-1 e: k=v\n")}, got); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{1}, h.removed); diff != "" {
		t.Errorf("removed slots (-want +got):\n%s", diff)
	}
}

// A framed session whose first target is not on the node: its index ends,
// failed, and the others keep their indexes.
func TestRunFramedNotFound(t *testing.T) {
	procRoot, cgroupRoot, _ := multiNode(t)
	req := multiRequest(hooks.OutputText, 2)
	req.Targets[0].ContainerID = "containerd://" + absent
	var h *multiHook
	s := startSession(t, req, Config{ProcRoot: procRoot, CgroupRoot: cgroupRoot, RefreshInterval: -1,
		Runtimes: map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(_ context.Context, a attach.Attachment) (attach.Session, error) {
			h = newMultiHook(a)
			return h, nil
		})}})
	s.write(t, "g")
	h.send(0, 1)
	statuses := s.end(t)
	want := []string{"ready", "resolved", "target-ended", "started", "stats"}
	if diff := cmp.Diff(want, kinds(statuses)); diff != "" {
		t.Fatalf("status kinds (-want +got):\n%s", diff)
	}
	if st := statuses[2]; *st.Index != 0 || !st.Failed {
		t.Errorf("target-ended %+v", st)
	}
	got, _ := frames(t, []byte(s.stdout.String()))
	if diff := cmp.Diff(map[int][]byte{1: []byte("1.000000 [000] b-1 e: k=v\n")}, got); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
}

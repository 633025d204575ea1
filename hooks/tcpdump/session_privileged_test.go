//go:build linux && privileged

// Privileged tests: run as root on a real kernel, with tcpdump installed,
// with
//
//	go test -tags privileged ./hooks/tcpdump/
//
// They never skip: a machine that cannot run them fails them.
package tcpdump

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/test/testenv"
)

// ownNetns is the test process's network namespace at the start.
var ownNetns string

func TestMain(m *testing.M) {
	testenv.Main()
	ownNetns, _ = os.Readlink("/proc/self/ns/net")
	os.Exit(m.Run())
}

// checkThreads fails when a thread of the test process is not in the
// process's own network namespace.
func checkThreads(t *testing.T) {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		ns, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns", "net"))
		if err == nil && ns != ownNetns {
			t.Errorf("thread %s of the test is in %s, not in the process's own %s", task.Name(), ns, ownNetns)
		}
	}
}

const (
	targetPort   = 7101
	outsiderPort = 7102
)

func descriptor(t *testing.T) hooks.Descriptor {
	t.Helper()
	d, ok := hooks.Lookup("tcpdump")
	if !ok {
		t.Fatal("no tcpdump hook")
	}
	return d
}

func peerTarget(p *testenv.Peer, pod string) attach.Target {
	return attach.Target{Target: wire.Target{Node: "n1", Namespace: "ns", Pod: pod, Container: "app"}, PIDs: []int{p.PID()}}
}

// logs collects Attachment.Log and Attachment.Warn.
type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, s)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func open(t *testing.T, output string, args map[string]string, targets ...attach.Target) (*Session, *logs) {
	t.Helper()
	l := &logs{}
	s, err := openWith(t, output, args, targets, l)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, l
}

// openWith opens a session as the runner does: the arguments checked
// against the descriptor and with its defaults first.
func openWith(t *testing.T, output string, args map[string]string, targets []attach.Target, l *logs) (*Session, error) {
	t.Helper()
	d := descriptor(t)
	resolved, err := d.ResolveArgs(args)
	if err != nil {
		return nil, err
	}
	a := attach.Attachment{Request: wire.Request{Output: output}, Hook: d, Args: resolved, Targets: targets}
	if l != nil {
		a.Log, a.Warn = l.add, func(m string) { l.add("WARN " + m) }
	}
	return Runtime{}.open(context.Background(), a)
}

// rawTo is a Sink of bytes only, all to w.
type rawTo struct{ w io.Writer }

func (r rawTo) Emit(*wire.Event, string) error { panic("text and pcap are bytes") }
func (r rawTo) Raw(int) io.Writer              { return r.w }

// emitter is a Sink of events only.
type emitter func(ev *wire.Event, details string) error

func (e emitter) Emit(ev *wire.Event, details string) error { return e(ev, details) }
func (e emitter) Raw(int) io.Writer                         { panic("json is events") }

// captureRaw streams for d and returns what was written.
func captureRaw(t *testing.T, s *Session, d time.Duration) []byte {
	t.Helper()
	var buf lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	if err := s.Stream(ctx, rawTo{&buf}); err != nil {
		t.Fatalf("Stream: %v", err)
	}
	if took := time.Since(start) - d; took > 2*time.Second {
		t.Errorf("tcpdump took %s to stop after SIGINT", took)
	}
	return buf.Bytes()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

// tcpdump runs in the target's network namespace: the thread that forked
// it had entered it with setns, and the child inherited it.
func TestTcpdumpStartsInTheTargetsNetns(t *testing.T) {
	target := testenv.StartPeer(t, targetPort, "target-hello", 0)
	s, _ := open(t, hooks.OutputText, nil, peerTarget(target, "web"))
	c := s.caps[0]
	got, want := testenv.Netns(t, c.cmd.Process.Pid), testenv.Netns(t, target.PID())
	if got != want {
		t.Errorf("tcpdump's netns %d, target's %d", got, want)
	}
	if own := testenv.Netns(t, os.Getpid()); own == got {
		t.Errorf("tcpdump is in the test's own netns %d", own)
	}
	// No thread of this process stayed in the target's namespace, while
	// tcpdump runs (the forking thread waits for it) and after.
	checkThreads(t)
	// tcpdump dropped root for its user once capturing.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] == "0" {
			t.Errorf("tcpdump still runs as root: %s", line)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkThreads(t)
}

// The pcap holds the target's connections and not the outsider's, which
// does the same in another namespace; tcpdump -r reads it.
func TestTcpdumpPcapIsScopedToTheTarget(t *testing.T) {
	target := testenv.StartPeer(t, targetPort, "target-hello", 0)
	outsider := testenv.StartPeer(t, outsiderPort, "outsider-hello", 0)
	_ = outsider
	s, l := open(t, hooks.OutputPCAP, nil, peerTarget(target, "web"))
	data := captureRaw(t, s, 1500*time.Millisecond)
	if len(data) < 24 || binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 {
		t.Fatalf("stdout is not pcap: % x", data[:min(len(data), 24)])
	}
	if lt := binary.LittleEndian.Uint32(data[20:]); lt != 276 {
		t.Errorf("link type %d, want 276 (LINUX_SLL2, interface any)", lt)
	}
	file := filepath.Join(t.TempDir(), "cap.pcap")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	text := testenv.ReadPcap(t, file)
	records := strings.Count(text, " IP 127.0.0.1.")
	t.Logf("%d bytes of pcap, %d packets; logs:\n%s", len(data), records, l)
	if !strings.Contains(text, fmt.Sprintf("> 127.0.0.1.%d: Flags [S]", targetPort)) || !strings.Contains(text, "target-hello") {
		t.Errorf("the target's connections are not in the capture:\n%.2000s", text)
	}
	if strings.Contains(text, fmt.Sprintf("127.0.0.1.%d", outsiderPort)) || strings.Contains(text, "outsider-hello") {
		t.Errorf("the outsider's connections are in the capture")
	}
	st := s.Stats()
	if st.Lost != 0 {
		t.Errorf("the kernel dropped %d packets", st.Lost)
	}
	if st.Events == 0 || int(st.Events) != records {
		t.Errorf("stats %+v, want as many events as the %d packets in the file", st, records)
	}
	logged := l.String()
	for _, want := range []string{"tcpdump: listening on any, link-type LINUX_SLL2", "tcpdump: " + fmt.Sprint(st.Events) + " packets captured", "packets dropped by kernel"} {
		if !strings.Contains(logged, want) {
			t.Errorf("tcpdump's stderr lacks %q:\n%s", want, logged)
		}
	}
	if strings.Contains(logged, "data link type") || strings.Contains(logged, "WARN") {
		t.Errorf("logs:\n%s", logged)
	}
}

func TestTcpdumpText(t *testing.T) {
	target := testenv.StartPeer(t, targetPort, "target-hello", 0)
	testenv.StartPeer(t, outsiderPort, "outsider-hello", 0)
	s, _ := open(t, hooks.OutputText, map[string]string{"filter": fmt.Sprintf("tcp dst port %d", targetPort)}, peerTarget(target, "web"))
	out := string(captureRaw(t, s, time.Second))
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 10 {
		t.Fatalf("only %d lines:\n%s", len(lines), out)
	}
	for _, line := range lines {
		// 04:50:57.495619 lo    In  IP 127.0.0.1.46510 > 127.0.0.1.7101: Flags [S], …
		if !strings.Contains(line, fmt.Sprintf(" IP 127.0.0.1.")) || !strings.Contains(line, fmt.Sprintf("> 127.0.0.1.%d: ", targetPort)) {
			t.Errorf("line outside the filter or not tcpdump's: %q", line)
		}
	}
	if st := s.Stats(); int(st.Events) != len(lines) {
		t.Errorf("stats %+v, want %d events (the lines)", st, len(lines))
	}
}

func TestTcpdumpJSON(t *testing.T) {
	target := testenv.StartPeer(t, targetPort, "target-hello", 0)
	s, _ := open(t, hooks.OutputJSON, map[string]string{"filter": "tcp", "interface": "lo", "snaplen": "96"}, peerTarget(target, "web"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var events []wire.Event
	err := s.Stream(ctx, emitter(func(ev *wire.Event, details string) error {
		e := *ev
		events = append(events, e)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) < 10 {
		t.Fatalf("%d events", len(events))
	}
	now := float64(time.Now().UnixNano()) / 1e9
	for _, e := range events[:5] {
		if e.Event != "packet" || e.Pod != "web" || e.Namespace != "ns" || e.Node != "n1" || now-e.Time > 10 || e.Time > now {
			t.Errorf("event %+v (now %f)", e, now)
		}
		if !strings.HasPrefix(e.Fields["line"], "IP 127.0.0.1.") {
			t.Errorf("line %q, want tcpdump's decoding after the timestamp", e.Fields["line"])
		}
	}
}

// Several targets: one tcpdump each, text lines prefixed with the target.
func TestTcpdumpTwoTargets(t *testing.T) {
	a := testenv.StartPeer(t, targetPort, "a", 0)
	b := testenv.StartPeer(t, outsiderPort, "b", 0)
	s, l := open(t, hooks.OutputText, map[string]string{"filter": "tcp[tcpflags] & tcp-syn != 0"}, peerTarget(a, "a"), peerTarget(b, "b"))
	out := string(captureRaw(t, s, time.Second))
	count := map[string]int{}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "[ns/a/app] ") && strings.Contains(line, fmt.Sprintf(".%d", targetPort)):
			count["a"]++
		case strings.HasPrefix(line, "[ns/b/app] ") && strings.Contains(line, fmt.Sprintf(".%d", outsiderPort)):
			count["b"]++
		default:
			t.Errorf("line %q", line)
		}
	}
	if count["a"] == 0 || count["b"] == 0 {
		t.Errorf("lines per target %v", count)
	}
	if !strings.Contains(l.String(), "tcpdump[ns/a/app]: listening on") || !strings.Contains(l.String(), "tcpdump[ns/b/app]: listening on") {
		t.Errorf("logs:\n%s", l)
	}
}

func TestTcpdumpOpenErrors(t *testing.T) {
	target := testenv.StartPeer(t, targetPort, "x", 0)
	other := testenv.StartPeer(t, outsiderPort, "y", 0)
	tests := []struct {
		name    string
		output  string
		args    map[string]string
		targets []attach.Target
		wantErr string
	}{
		{name: "bad filter", output: hooks.OutputPCAP, args: map[string]string{"filter": "tcp port eighty"},
			wantErr: "tcpdump ended (exit status 1) before it started capturing: "},
		{name: "option as filter", output: hooks.OutputPCAP, args: map[string]string{"filter": "-w /tmp/x"},
			wantErr: "cannot start with '-'"},
		{name: "no such interface in the target's namespace", output: hooks.OutputText, args: map[string]string{"interface": "eth0"},
			wantErr: "eth0"},
		{name: "pcap with two targets", output: hooks.OutputPCAP, targets: []attach.Target{peerTarget(target, "a"), peerTarget(other, "b")},
			wantErr: "pcap output to stdout takes one target, not 2"},
		{name: "target gone", output: hooks.OutputText, targets: []attach.Target{{Target: wire.Target{Namespace: "ns", Pod: "gone", Container: "app"}, PIDs: []int{1 << 30}}},
			wantErr: "no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			targets := tt.targets
			if targets == nil {
				targets = []attach.Target{peerTarget(target, "web")}
			}
			s, err := openWith(t, tt.output, tt.args, targets, nil)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// Close without a stream stops tcpdump even when its output filled the
// pipe, and leaves no process.
func TestTcpdumpCloseWithoutStream(t *testing.T) {
	target := testenv.StartPeer(t, targetPort, strings.Repeat("z", 60000), 0)
	s, _ := open(t, hooks.OutputPCAP, nil, peerTarget(target, "web"))
	time.Sleep(1500 * time.Millisecond) // more than a pipe's 64 KiB
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %s", took)
	}
	c := s.caps[0]
	if c.cmd.ProcessState == nil || !c.cmd.ProcessState.Exited() {
		t.Errorf("tcpdump did not exit by itself: %v", c.cmd.ProcessState)
	}
	if st := s.Stats(); st.Events == 0 {
		t.Errorf("stats %+v: tcpdump's counts are missing", st)
	}
}

// tcpdump that dies while streaming ends the stream with its error.
func TestTcpdumpDiesWhileStreaming(t *testing.T) {
	target := testenv.StartPeer(t, targetPort, "x", 0)
	s, _ := open(t, hooks.OutputText, nil, peerTarget(target, "web"))
	go func() {
		time.Sleep(300 * time.Millisecond)
		s.caps[0].cmd.Process.Kill()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.Stream(ctx, rawTo{&lockedBuffer{}})
	if err == nil || !strings.Contains(err.Error(), "tcpdump for ns/web/app ended (signal: killed)") {
		t.Fatalf("Stream error %v", err)
	}
	if ctx.Err() != nil {
		t.Error("Stream waited for the context")
	}
}

// A target in the node's network namespace (hostNetwork) is captured with
// a warning, which waits for the stream like tcpdump's own lines.
func TestTcpdumpHostNetworkWarns(t *testing.T) {
	host := attach.Target{Target: wire.Target{Namespace: "kube-system", Pod: "agent", Container: "app"}, PIDs: []int{os.Getpid()}}
	s, l := open(t, hooks.OutputText, map[string]string{"interface": "lo", "filter": "tcp port 1"}, host)
	if got := l.String(); got != "" {
		t.Errorf("logged before the stream started:\n%s", got)
	}
	captureRaw(t, s, 200*time.Millisecond)
	got := l.String()
	if !strings.HasPrefix(got, "WARN pod kube-system/agent uses the node's network (hostNetwork)") ||
		!strings.Contains(got, "\ntcpdump: listening on lo") {
		t.Errorf("logs:\n%s", got)
	}
}

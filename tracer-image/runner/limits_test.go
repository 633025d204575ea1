package runner

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// fakeRawHook stands for tcpdump: Stream writes before in pieces of
// chunk bytes at once, then waits for the end (the end of stdin, or a
// limit), then writes after (what tcpdump flushes on SIGINT).
type fakeRawHook struct {
	before, after []byte
	chunk         int
	streamErr     error

	mu      sync.Mutex
	stopped bool // ctx was done when Stream returned
	closed  int
}

func (f *fakeRawHook) Output() attach.Output { return attach.Output{Raw: true} }

func (f *fakeRawHook) Stream(ctx context.Context, out attach.Sink) error {
	w := out.Raw(0)
	write := func(b []byte) error {
		for len(b) > 0 {
			n := min(f.chunk, len(b))
			if f.chunk == 0 {
				n = len(b)
			}
			if _, err := w.Write(b[:n]); err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	}
	if err := write(f.before); err != nil {
		return err
	}
	if f.streamErr != nil {
		return f.streamErr
	}
	<-ctx.Done()
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	return write(f.after)
}

// Stats says what tcpdump's counts would: Run reports the records it wrote.
func (f *fakeRawHook) Stats() attach.Stats { return attach.Stats{Events: 999, Lost: 2} }

func (f *fakeRawHook) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return nil
}

// pcapStream is a pcap file (little endian, microseconds, snaplen 262144,
// LINUX_SLL2) with one record per caplen, each filled with its index.
func pcapStream(order binary.ByteOrder, caplens ...int) (stream []byte, ends []int) {
	var b bytes.Buffer
	hdr := make([]byte, 24)
	order.PutUint32(hdr[0:], pcapMagicMicros)
	order.PutUint16(hdr[4:], 2)
	order.PutUint16(hdr[6:], 4)
	order.PutUint32(hdr[16:], 262144)
	order.PutUint32(hdr[20:], 276)
	b.Write(hdr)
	ends = append(ends, b.Len())
	for i, n := range caplens {
		rec := make([]byte, 16)
		order.PutUint32(rec[0:], uint32(1767323045+i))
		order.PutUint32(rec[4:], uint32(i))
		order.PutUint32(rec[8:], uint32(n))
		order.PutUint32(rec[12:], uint32(n+100))
		b.Write(rec)
		b.Write(bytes.Repeat([]byte{byte(i)}, n))
		ends = append(ends, b.Len())
	}
	return b.Bytes(), ends
}

// checkPcap fails unless b is a pcap file header followed by whole records
// and nothing else, and returns the number of records.
func checkPcap(t *testing.T, b []byte) int {
	t.Helper()
	if len(b) < 24 {
		t.Fatalf("pcap of %d bytes has no file header", len(b))
	}
	order := binary.ByteOrder(binary.LittleEndian)
	if order.Uint32(b) != pcapMagicMicros {
		order = binary.BigEndian
	}
	n := 0
	for off := 24; off < len(b); n++ {
		if len(b)-off < 16 {
			t.Fatalf("record %d: header cut after %d of 16 bytes", n, len(b)-off)
		}
		caplen := int(order.Uint32(b[off+8:]))
		if len(b)-off-16 < caplen {
			t.Fatalf("record %d: %d of its %d bytes", n, len(b)-off-16, caplen)
		}
		off += 16 + caplen
	}
	return n
}

type limitRun struct {
	stdout string
	stats  wire.Status
	kinds  []string
	err    error
}

// runLimited runs a session whose stdin stays open: only the hook's end or
// a limit ends it (or the test's timeout).
func runLimited(t *testing.T, req wire.Request, kind string, h attach.Session) limitRun {
	t.Helper()
	procRoot, cgroupRoot, _ := fakeNode(t)
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	go stdinW.Write([]byte("g"))
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), req, Config{
			ProcRoot: procRoot, CgroupRoot: cgroupRoot,
			Stdin: stdinR, Stdout: &stdout, Stderr: &stderr,
			Runtimes: map[string]attach.Runtime{kind: attach.OpenFunc(func(context.Context, attach.Attachment) (attach.Session, error) { return h, nil })},
			Now:      fakeClock(), RefreshInterval: -1,
		})
	}()
	var r limitRun
	select {
	case r.err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the session did not end by itself; stderr:\n%s", stderr.String())
	}
	statuses := parseStatuses(t, stderr.String())
	r.kinds = kinds(statuses)
	r.stats = statuses[len(statuses)-1]
	r.stdout = stdout.String()
	return r
}

func rawRequest(output string, maxEvents, maxBytes int64) wire.Request {
	r := request(output, "containerd://"+id)
	r.Hook, r.MaxEvents, r.MaxBytes = "tcpdump", maxEvents, maxBytes
	return r
}

func TestRunRawPcapLimits(t *testing.T) {
	sizes := []int{60, 1514, 0, 74, 262144, 54}
	stream, ends := pcapStream(binary.LittleEndian, sizes...)
	// ends[i] is where record i ends (ends[0]: the file header).
	tests := []struct {
		name                string
		maxEvents, maxBytes int64
		chunk               int
		before              []byte // default: the whole stream
		wantLen             int    // bytes on stdout
		wantEnded           string
	}{
		{name: "no limit: every byte, and the records drained after the stop", wantLen: len(stream)},
		{name: "max events", maxEvents: 3, chunk: 7, wantLen: ends[3], wantEnded: "max events reached"},
		{name: "max events, whole writes", maxEvents: 1, wantLen: ends[1], wantEnded: "max events reached"},
		{name: "max size cuts before a record that does not fit", maxBytes: int64(ends[2] + 10), chunk: 5, wantLen: ends[2], wantEnded: "max size reached"},
		{name: "max size inside a record header", maxBytes: int64(ends[4] + 3), chunk: 1000, wantLen: ends[4], wantEnded: "max size reached"},
		{name: "max size known from a record header, before its data", maxBytes: int64(ends[4] + 100), chunk: 6, wantLen: ends[4], wantEnded: "max size reached"},
		{name: "max size on a record boundary", maxBytes: int64(ends[2]), chunk: 3, wantLen: ends[2], wantEnded: "max size reached"},
		{name: "max size below the first record: the header alone", maxBytes: 30, wantLen: 24, wantEnded: "max size reached"},
		{name: "max size below the header: the header anyway", maxBytes: 10, chunk: 4, wantLen: 24, wantEnded: "max size reached"},
		{name: "both: size first", maxEvents: 5, maxBytes: int64(ends[4] - 1), wantLen: ends[3], wantEnded: "max size reached"},
		{name: "both: events first", maxEvents: 2, maxBytes: int64(ends[4] - 1), chunk: 2, wantLen: ends[2], wantEnded: "max events reached"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Up to the header of the big record before the end, the rest
			// drained after it.
			h := &fakeRawHook{before: stream[:ends[4]+20], after: stream[ends[4]+20:], chunk: tt.chunk}
			req := rawRequest(hooks.OutputPCAP, tt.maxEvents, tt.maxBytes)
			var r limitRun
			if tt.wantEnded == "" {
				r = runWithEOF(t, req, h)
			} else {
				r = runLimited(t, req, hooks.KindTcpdump, h)
			}
			if r.err != nil {
				t.Fatalf("Run: %v", r.err)
			}
			if diff := cmp.Diff([]string{wire.StatusReady, wire.StatusResolved, wire.StatusStarted, wire.StatusStats}, r.kinds); diff != "" {
				t.Errorf("status kinds (-want +got):\n%s", diff)
			}
			if len(r.stdout) != tt.wantLen || r.stdout != string(stream[:tt.wantLen]) {
				t.Errorf("stdout is %d bytes, want the stream's first %d", len(r.stdout), tt.wantLen)
			}
			n := checkPcap(t, []byte(r.stdout))
			if r.stats.Ended != tt.wantEnded || r.stats.Events != uint64(n) || r.stats.Lost != 2 {
				t.Errorf("stats %+v, want ended %q, %d events (the records written), lost 2", r.stats, tt.wantEnded, n)
			}
			if !h.stopped || h.closed == 0 {
				t.Errorf("the hook was not stopped (%v) and closed (%d)", h.stopped, h.closed)
			}
		})
	}
}

// runWithEOF runs a session that the end of stdin stops, after the
// hook's first writes have reached stdout.
func runWithEOF(t *testing.T, req wire.Request, h attach.Session) limitRun {
	t.Helper()
	procRoot, cgroupRoot, _ := fakeNode(t)
	stdinR, stdinW := io.Pipe()
	var stdout, stderr syncBuffer
	go func() {
		stdinW.Write([]byte("g"))
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(stderr.String(), `"started"`) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
		stdinW.Close()
	}()
	err := Run(context.Background(), req, Config{
		ProcRoot: procRoot, CgroupRoot: cgroupRoot,
		Stdin: stdinR, Stdout: &stdout, Stderr: &stderr,
		Runtimes: map[string]attach.Runtime{hooks.KindTcpdump: attach.OpenFunc(func(context.Context, attach.Attachment) (attach.Session, error) { return h, nil })},
		Now:      fakeClock(), RefreshInterval: -1,
	})
	statuses := parseStatuses(t, stderr.String())
	return limitRun{stdout: stdout.String(), stats: statuses[len(statuses)-1], kinds: kinds(statuses), err: err}
}

func TestRunRawPcapBigEndian(t *testing.T) {
	stream, ends := pcapStream(binary.BigEndian, 100, 200, 300)
	h := &fakeRawHook{before: stream, chunk: 9}
	r := runLimited(t, rawRequest(hooks.OutputPCAP, 0, int64(ends[2]+1)), hooks.KindTcpdump, h)
	if r.err != nil || r.stdout != string(stream[:ends[2]]) || r.stats.Events != 2 {
		t.Errorf("err %v, stdout %d bytes (want %d), stats %+v", r.err, len(r.stdout), ends[2], r.stats)
	}
}

func TestRunRawPcapErrors(t *testing.T) {
	stream, ends := pcapStream(binary.LittleEndian, 100, 200)
	corrupt := append([]byte{}, stream...)
	binary.LittleEndian.PutUint32(corrupt[ends[1]+8:], 1<<30) // caplen of record 2
	tests := []struct {
		name        string
		before      []byte
		wantErr     string
		wantKinds   []string
		wantWarning string
		wantStdout  int
	}{
		{name: "not pcap", before: []byte("12:00:00.000000 IP 10.0.0.1 > 10.0.0.2: tcp\n"),
			wantErr: "tracing: the hook's output is not pcap", wantKinds: []string{"ready", "resolved", "started", "error"}},
		{name: "pcapng", before: []byte{0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			wantErr: "tracing: the hook wrote pcapng", wantKinds: []string{"ready", "resolved", "started", "error"}},
		{name: "corrupt record length", before: corrupt,
			wantErr: "tracing: corrupt pcap stream: a record of 1073741824 bytes", wantKinds: []string{"ready", "resolved", "started", "error"},
			wantStdout: ends[1]},
		{name: "stream ends inside a record: the part is dropped", before: stream[:ends[2]-50],
			wantKinds: []string{"ready", "resolved", "started", "warning", "stats"}, wantStdout: ends[1],
			wantWarning: fmt.Sprintf("the hook's output ended inside a pcap record: its last %d bytes were dropped", 16+200-50)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &fakeRawHook{before: tt.before, chunk: 11}
			procRoot, cgroupRoot, _ := fakeNode(t)
			var stdout, stderr syncBuffer
			err := Run(context.Background(), rawRequest(hooks.OutputPCAP, 0, 0), Config{
				ProcRoot: procRoot, CgroupRoot: cgroupRoot,
				Stdin: strings.NewReader("g"), Stdout: &stdout, Stderr: &stderr,
				Runtimes: map[string]attach.Runtime{hooks.KindTcpdump: attach.OpenFunc(func(context.Context, attach.Attachment) (attach.Session, error) { return h, nil })},
				Now:      fakeClock(), RefreshInterval: -1,
			})
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.wantErr)) {
				t.Fatalf("Run error %v, want %q", err, tt.wantErr)
			}
			statuses := parseStatuses(t, stderr.String())
			if diff := cmp.Diff(tt.wantKinds, kinds(statuses)); diff != "" {
				t.Errorf("status kinds (-want +got):\n%s", diff)
			}
			if tt.wantWarning != "" && statuses[3].Message != tt.wantWarning {
				t.Errorf("warning %q, want %q", statuses[3].Message, tt.wantWarning)
			}
			if len(stdout.String()) != tt.wantStdout {
				t.Errorf("stdout %d bytes, want %d", len(stdout.String()), tt.wantStdout)
			}
			if h.closed == 0 {
				t.Error("the hook was not closed")
			}
		})
	}
}

func TestRunRawTextLimits(t *testing.T) {
	lines := "12:00:00.000001 lo In IP 127.0.0.1.40000 > 127.0.0.1.8080: Flags [S], length 0\n" +
		"12:00:00.000002 lo In IP 127.0.0.1.8080 > 127.0.0.1.40000: Flags [S.], length 0\n" +
		"12:00:00.000003 lo In IP 127.0.0.1.40000 > 127.0.0.1.8080: Flags [.], length 0\n"
	first2 := strings.Join(strings.SplitAfter(lines, "\n")[:2], "")
	tests := []struct {
		name                string
		maxEvents, maxBytes int64
		after               string
		want                string
		wantEnded           string
		wantEvents          uint64
	}{
		{name: "max events", maxEvents: 2, want: first2, wantEnded: "max events reached", wantEvents: 2},
		{name: "max size", maxBytes: int64(len(first2) + 20), want: first2, wantEnded: "max size reached", wantEvents: 2},
		{name: "no limit, a last line without newline gets one", after: "tcpdump exiting", want: lines + "tcpdump exiting\n", wantEvents: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &fakeRawHook{before: []byte(lines), after: []byte(tt.after), chunk: 13}
			req := rawRequest(hooks.OutputText, tt.maxEvents, tt.maxBytes)
			var r limitRun
			if tt.wantEnded == "" {
				r = runWithEOF(t, req, h)
			} else {
				r = runLimited(t, req, hooks.KindTcpdump, h)
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if diff := cmp.Diff(tt.want, r.stdout); diff != "" {
				t.Errorf("stdout (-want +got):\n%s", diff)
			}
			if r.stats.Ended != tt.wantEnded || r.stats.Events != tt.wantEvents {
				t.Errorf("stats %+v, want ended %q and %d events", r.stats, tt.wantEnded, tt.wantEvents)
			}
		})
	}
}

// Limits apply to event hooks too: whole lines, the hook drained and
// stopped as at the end of stdin.
func TestRunEventLimits(t *testing.T) {
	var many []wire.Event
	for i := 0; i < 10; i++ {
		ev := ev1
		ev.PID = 1000 + i
		many = append(many, ev)
	}
	textLine := len("1.000001 [001] app-1000 sched_switch: k=v\n")
	jsonLine, err := json.Marshal(many[0])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                string
		output              string
		maxEvents, maxBytes int64
		wantLines           int
		wantEnded           string
	}{
		{name: "max events, text", output: hooks.OutputText, maxEvents: 4, wantLines: 4, wantEnded: "max events reached"},
		{name: "max events, json", output: hooks.OutputJSON, maxEvents: 1, wantLines: 1, wantEnded: "max events reached"},
		{name: "max size, text", output: hooks.OutputText, maxBytes: int64(3*textLine + textLine/2), wantLines: 3, wantEnded: "max size reached"},
		{name: "max size exactly, text", output: hooks.OutputText, maxBytes: int64(5 * textLine), wantLines: 5, wantEnded: "max size reached"},
		{name: "max size, json", output: hooks.OutputJSON, maxBytes: int64(2*len(jsonLine) + 2 + len(jsonLine)/2), wantLines: 2, wantEnded: "max size reached"},
		{name: "limit above what comes", output: hooks.OutputText, maxEvents: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &fakeHook{before: many, after: []wire.Event{ev2}}
			req := request(tt.output, "containerd://"+id)
			req.MaxEvents, req.MaxBytes = tt.maxEvents, tt.maxBytes
			if tt.wantEnded == "" {
				// Only the end of stdin ends it: 10 events before, 1 drained.
				procRoot, cgroupRoot, _ := fakeNode(t)
				var stdout, stderr syncBuffer
				err := Run(context.Background(), req, Config{ProcRoot: procRoot, CgroupRoot: cgroupRoot,
					Stdin: strings.NewReader("g"), Stdout: &stdout, Stderr: &stderr,
					Runtimes: map[string]attach.Runtime{hooks.KindFtrace: attach.OpenFunc(func(context.Context, attach.Attachment) (attach.Session, error) { return h, nil })},
					Now:      fakeClock(), RefreshInterval: -1})
				if err != nil {
					t.Fatal(err)
				}
				st := parseStatuses(t, stderr.String())
				if n := strings.Count(stdout.String(), "\n"); n != 11 || st[len(st)-1].Ended != "" || st[len(st)-1].Events != 11 {
					t.Errorf("%d lines, stats %+v; want 11 lines, no ended", n, st[len(st)-1])
				}
				return
			}
			r := runLimited(t, req, hooks.KindFtrace, h)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if n := strings.Count(r.stdout, "\n"); n != tt.wantLines || !strings.HasSuffix(r.stdout, "\n") {
				t.Errorf("stdout has %d whole lines (want %d):\n%s", n, tt.wantLines, r.stdout)
			}
			if tt.maxBytes > 0 && int64(len(r.stdout)) > tt.maxBytes {
				t.Errorf("stdout %d bytes, over the limit %d", len(r.stdout), tt.maxBytes)
			}
			if r.stats.Ended != tt.wantEnded || r.stats.Events != uint64(tt.wantLines) || r.stats.Lost != 3 {
				t.Errorf("stats %+v, want ended %q, %d events, lost 3", r.stats, tt.wantEnded, tt.wantLines)
			}
			if diff := cmp.Diff([]string{wire.StatusReady, wire.StatusResolved, wire.StatusStarted, wire.StatusStats}, r.kinds); diff != "" {
				t.Errorf("status kinds (-want +got):\n%s", diff)
			}
		})
	}
}

// pcap needs a hook that writes bytes.
func TestRunPcapNeedsARawHook(t *testing.T) {
	procRoot, cgroupRoot, _ := fakeNode(t)
	h := &fakeHook{}
	var stderr syncBuffer
	err := Run(context.Background(), rawRequest(hooks.OutputPCAP, 0, 0), Config{ProcRoot: procRoot, CgroupRoot: cgroupRoot,
		Stdin: strings.NewReader("g"), Stdout: io.Discard, Stderr: &stderr,
		Runtimes:        map[string]attach.Runtime{hooks.KindTcpdump: attach.OpenFunc(func(context.Context, attach.Attachment) (attach.Session, error) { return h, nil })},
		RefreshInterval: -1})
	if err == nil || !strings.Contains(err.Error(), `hook "tcpdump" writes events, not pcap`) {
		t.Fatalf("Run error %v", err)
	}
	if h.closed == 0 || h.streamed {
		t.Errorf("closed %d, streamed %v: want closed, never streamed", h.closed, h.streamed)
	}
}

// A tool's own lines (attach.Attachment.Log) reach stderr as they are, between
// the status lines.
func TestRunLogLines(t *testing.T) {
	procRoot, cgroupRoot, _ := fakeNode(t)
	h := &fakeRawHook{}
	var stderr syncBuffer
	err := Run(context.Background(), rawRequest(hooks.OutputText, 0, 0), Config{ProcRoot: procRoot, CgroupRoot: cgroupRoot,
		Stdin: strings.NewReader("g"), Stdout: io.Discard, Stderr: &stderr,
		Runtimes: map[string]attach.Runtime{hooks.KindTcpdump: attach.OpenFunc(func(_ context.Context, a attach.Attachment) (attach.Session, error) {
			a.Log("tcpdump: listening on any, link-type LINUX_SLL2 (Linux cooked v2), snapshot length 262144 bytes\n")
			return h, nil
		})},
		Now: fakeClock(), RefreshInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 5 || lines[2] != "tcpdump: listening on any, link-type LINUX_SLL2 (Linux cooked v2), snapshot length 262144 bytes" {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

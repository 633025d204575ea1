//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// A tracer is whatever watches the workload in one run: the helper, a
// baseline tool, or nothing.
type tracer interface {
	// start attaches to the process pid in container c and returns when
	// events of pid are being recorded.
	start(ctx context.Context, pid int, c *fakeContainer) error
	// stop ends the trace after the workload is done and returns what the
	// tracer saw.
	stop() (seen, error)
}

// seen is what a tracer reports about one run.
type seen struct {
	events, lost uint64  // the helper's stats (or the tool's count)
	lines        int64   // lines of trace data on stdout
	cpu          float64 // the tracer's CPU seconds (user + system)
	note         string
	counted      map[string]uint64 // syscall-top and bpftrace: calls counted, by syscall
}

type untraced struct{}

func (untraced) start(context.Context, int, *fakeContainer) error { return nil }
func (untraced) stop() (seen, error)                              { return seen{}, nil }

// helper runs bin/tracer the way the helper pod does: the request in
// KTRACE_REQUEST, the plugin's part played here (wait for ready, send the
// go byte, end stdin to stop).
type helper struct {
	bin  string
	hook string
	args map[string]string
	// file, when set, receives the trace data instead of a counting pipe.
	file *os.File

	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *lineCounter
	status chan wire.Status
	done   chan struct{} // stdout and stderr drained
	mu     sync.Mutex
	stats  *wire.Status
	errs   []string
}

func (h *helper) start(ctx context.Context, pid int, c *fakeContainer) error {
	desc, ok := hooks.Lookup(h.hook)
	if !ok {
		return fmt.Errorf("unknown hook %q", h.hook)
	}
	args, err := desc.ResolveArgs(h.args)
	if err != nil {
		return err
	}
	req := wire.Request{Version: wire.ProtocolVersion, SessionID: fmt.Sprintf("bench-%d", time.Now().UnixNano()),
		Hook: h.hook, Args: args, Output: hooks.OutputJSON, Targets: []wire.Target{c.target()}}
	enc, err := req.Encode()
	if err != nil {
		return err
	}
	h.cmd = exec.CommandContext(ctx, h.bin)
	h.cmd.Env = append(os.Environ(), wire.RequestEnv+"="+enc)
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		return err
	}
	var stdout io.Reader = strings.NewReader("")
	if h.file != nil {
		h.cmd.Stdout = h.file
	} else if stdout, err = h.cmd.StdoutPipe(); err != nil {
		return err
	}
	stderr, err := h.cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := h.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", h.bin, err)
	}
	h.out = &lineCounter{keep: 1 << 20}
	h.status = make(chan wire.Status, 16)
	h.done = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(h.out, stdout) }()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s, ok := wire.ParseStatus(sc.Bytes())
			if !ok {
				continue
			}
			h.mu.Lock()
			switch s.Kind {
			case wire.StatusStats:
				h.stats = &s
			case wire.StatusError, wire.StatusWarning:
				h.errs = append(h.errs, s.Kind+": "+s.Message)
			}
			h.mu.Unlock()
			select {
			case h.status <- s:
			default:
			}
		}
	}()
	go func() { wg.Wait(); close(h.done) }()
	if err := h.await(ctx, wire.StatusReady); err != nil {
		return err
	}
	if _, err := h.stdin.Write([]byte{'g'}); err != nil {
		return err
	}
	return h.await(ctx, wire.StatusStarted)
}

// await waits for a status of kind; an error status or the tracer's end
// fails it.
func (h *helper) await(ctx context.Context, kind string) error {
	for {
		select {
		case s := <-h.status:
			if s.Kind == kind {
				return nil
			}
			if s.Kind == wire.StatusError {
				return fmt.Errorf("tracer: %s", s.Message)
			}
		case <-h.done:
			h.cmd.Wait()
			return fmt.Errorf("tracer ended before %q: %s", kind, strings.Join(h.errs, "; "))
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q: %w", kind, ctx.Err())
		}
	}
}

func (h *helper) stop() (seen, error) {
	h.stdin.Close()
	<-h.done
	err := h.cmd.Wait()
	var s seen
	s.cpu = cpuSeconds(h.cmd.ProcessState)
	s.lines = h.out.lines
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stats == nil {
		return s, fmt.Errorf("tracer (hook %s) reported no stats: %v %s", h.hook, err, strings.Join(h.errs, "; "))
	}
	if err != nil {
		return s, fmt.Errorf("tracer (hook %s): %w", h.hook, err)
	}
	s.events, s.lost = h.stats.Events, h.stats.Lost
	s.note = strings.Join(h.errs, "; ")
	if h.hook == "syscall-top" {
		s.counted = syscallTopCounts(h.out.kept.Bytes())
	}
	return s, nil
}

// syscallTopCounts sums syscall-top's JSON rows by syscall.
func syscallTopCounts(out []byte) map[string]uint64 {
	m := map[string]uint64{}
	for _, l := range bytes.Split(out, []byte("\n")) {
		var ev wire.Event
		if len(l) == 0 || jsonUnmarshal(l, &ev) != nil {
			continue
		}
		n, _ := strconv.ParseUint(ev.Fields["count"], 10, 64)
		m[ev.Fields["syscall"]] += n
	}
	return m
}

// bpftraceCount runs a bpftrace baseline that counts the workload's system
// calls by number in the map named counts: the baseline of the issue
// (bpftraceCountScript, the cheapest thing bpftrace does per event), or
// the same with latency (bpftraceLatencyScript).
type bpftraceCount struct {
	script func(pid int) string
	counts string // the map of counts by number: "@", "@c"

	cmd    *exec.Cmd
	out    bytes.Buffer // stdout, guarded by mu
	stderr *lineCounter
	mu     sync.Mutex
	done   chan struct{}
}

// bpftraceCountScript counts the system calls of pid by number; BEGIN says
// when it is attached.
func bpftraceCountScript(pid int) string {
	return fmt.Sprintf(`BEGIN { printf("ready\n"); } tracepoint:raw_syscalls:sys_enter /pid == %d/ { @[args->id] = count(); }`, pid)
}

// bpftraceLatencyScript counts and times the system calls of pid by
// number, as syscall-top's latency mode does: the entry time per thread,
// count and sum on exit.
func bpftraceLatencyScript(pid int) string {
	return fmt.Sprintf(`BEGIN { printf("ready\n"); } `+
		`tracepoint:raw_syscalls:sys_enter /pid == %[1]d/ { @s[tid] = nsecs; } `+
		`tracepoint:raw_syscalls:sys_exit /pid == %[1]d && @s[tid]/ { @c[args->id] = count(); @t[args->id] = sum(nsecs - @s[tid]); delete(@s[tid]); }`, pid)
}

func (b *bpftraceCount) start(ctx context.Context, pid int, _ *fakeContainer) error {
	b.cmd = exec.CommandContext(ctx, "bpftrace", "-e", b.script(pid))
	b.cmd.Cancel = func() error { return b.cmd.Process.Signal(os.Interrupt) }
	b.cmd.WaitDelay = 10 * time.Second
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	b.stderr = &lineCounter{keep: 1 << 16}
	b.cmd.Stderr = b.stderr
	if err := b.cmd.Start(); err != nil {
		return fmt.Errorf("starting bpftrace (apt-get install bpftrace): %w", err)
	}
	ready := make(chan struct{})
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		r := bufio.NewReader(stdout)
		once := false
		for {
			l, err := r.ReadString('\n')
			b.mu.Lock()
			b.out.WriteString(l)
			b.mu.Unlock()
			// BEGIN runs once every probe is attached.
			if !once && l == "ready\n" {
				once = true
				close(ready)
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-ready:
		return nil
	case <-b.done:
		b.cmd.Wait()
		return fmt.Errorf("bpftrace ended before attaching: %s", b.stderr.kept.String())
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *bpftraceCount) stop() (seen, error) {
	b.cmd.Process.Signal(os.Interrupt)
	<-b.done
	err := b.cmd.Wait()
	s := seen{cpu: cpuSeconds(b.cmd.ProcessState), counted: map[string]uint64{}}
	b.mu.Lock()
	defer b.mu.Unlock()
	row := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(b.counts) + `\[(\d+)\]: (\d+)$`)
	for _, m := range row.FindAllStringSubmatch(b.out.String(), -1) {
		nr, _ := strconv.Atoi(m[1])
		n, _ := strconv.ParseUint(m[2], 10, 64)
		s.counted[syscallName(nr)] += n
		s.events += n
	}
	if s.events == 0 {
		return s, fmt.Errorf("bpftrace counted nothing (%v): %q %q", err, b.out.String(), b.stderr.kept.String())
	}
	return s, nil
}

// straceCount is `strace -f -c` attached to the workload.
type straceCount struct {
	cmd    *exec.Cmd
	file   string
	stderr *lineCounter
}

func (st *straceCount) start(ctx context.Context, pid int, _ *fakeContainer) error {
	f, err := os.CreateTemp("", "ktbench-strace-*")
	if err != nil {
		return err
	}
	f.Close()
	st.file = f.Name()
	st.cmd = exec.CommandContext(ctx, "strace", "-f", "-c", "-o", st.file, "-p", strconv.Itoa(pid))
	st.stderr = &lineCounter{keep: 1 << 16, want: []byte("attached")}
	st.cmd.Stderr = st.stderr
	if err := st.cmd.Start(); err != nil {
		return fmt.Errorf("starting strace (apt-get install strace): %w", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st.stderr.found() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("strace did not attach: %s", st.stderr.kept.String())
		}
	}
}

var straceRow = regexp.MustCompile(`(?m)^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$`)

func (st *straceCount) stop() (seen, error) {
	// strace ends with its last tracee; the workload has exited by now.
	err := st.cmd.Wait()
	s := seen{cpu: cpuSeconds(st.cmd.ProcessState), counted: map[string]uint64{}}
	b, rerr := os.ReadFile(st.file)
	os.Remove(st.file)
	if rerr != nil {
		return s, rerr
	}
	for _, m := range straceRow.FindAllStringSubmatch(string(b), -1) {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		if m[2] != "total" {
			s.counted[m[2]] += n
			s.events += n
		}
	}
	if err != nil {
		return s, fmt.Errorf("strace: %w", err)
	}
	return s, nil
}

// lineCounter counts the lines written to it and keeps the first keep
// bytes; found says whether want was in them.
type lineCounter struct {
	mu    sync.Mutex
	lines int64
	keep  int
	kept  bytes.Buffer
	want  []byte
}

func (w *lineCounter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines += int64(bytes.Count(p, []byte{'\n'}))
	if room := w.keep - w.kept.Len(); room > 0 {
		w.kept.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (w *lineCounter) found() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.want) > 0 && bytes.Contains(w.kept.Bytes(), w.want)
}

func cpuSeconds(ps *os.ProcessState) float64 {
	if ps == nil {
		return 0
	}
	return (ps.UserTime() + ps.SystemTime()).Seconds()
}

// syscallName names the x86-64 system calls the workloads make.
func syscallName(nr int) string {
	switch nr {
	case syscall.SYS_GETPPID:
		return "getppid"
	case syscall.SYS_OPENAT:
		return "openat"
	case syscall.SYS_CLOSE:
		return "close"
	}
	return "nr" + strconv.Itoa(nr)
}

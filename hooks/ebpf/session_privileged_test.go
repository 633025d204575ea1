//go:build linux && privileged

// Privileged tests: run as root on a real kernel with
//
//	go test -tags privileged ./hooks/ebpf/
//
// They never skip: a machine that cannot run them fails them.
package ebpf

import (
	"context"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/test/testenv"
)

func init() { testenv.Main() }

// got is one emitted event, copied.
type got struct {
	ev      wire.Event
	details string
}

// traced is a session's result.
type traced struct {
	events   []got
	stats    attach.Stats
	counters Counters
	warns    []string
	// delays are how long each event streamed before the stop took from
	// the kernel's timestamp to the emit function.
	delays []time.Duration
	// loaded are the names of the programs the session loaded, sorted.
	loaded []string
}

// traceConfig changes what trace does.
type traceConfig struct {
	runtime Runtime
	// framed asks for a framed session, which takes targets.
	framed        bool
	allowMismatch bool // events outside the target's memory cgroup are expected
	allowLost     bool
	// opened, when set, receives the session once open.
	opened func(*Session)
}

// trace opens hook on the targets, runs during() while streaming, stops
// and returns what was emitted. It checks that no program of the package
// stays loaded, and that nothing was lost.
func trace(t *testing.T, hook string, args map[string]string, targets []attach.Target, during func()) traced {
	t.Helper()
	return traceWith(t, traceConfig{}, hook, args, targets, during)
}

func traceWith(t *testing.T, cfg traceConfig, hook string, args map[string]string, targets []attach.Target, during func()) traced {
	t.Helper()
	if left := testenv.WaitProgramsGone(t, "kt_", 5*time.Second); len(left) != 0 {
		t.Fatalf("programs of an earlier session still loaded: %v", left)
	}
	before := testenv.AllPrograms(t)
	d, ok := hooks.Lookup(hook)
	if !ok {
		t.Fatalf("hook %q not in the catalogue", hook)
	}
	resolved, err := d.ResolveArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		res traced
	)
	a := attach.Attachment{
		Request: wire.Request{Framed: cfg.framed}, Hook: d, Args: resolved, Targets: targets, Fields: true, ProcRoot: "/proc",
		Warn: func(msg string) {
			mu.Lock()
			res.warns = append(res.warns, msg)
			mu.Unlock()
		},
	}
	s, err := cfg.runtime.open(a, memcgOf)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if cfg.opened != nil {
		cfg.opened(s)
	}
	loaded := testenv.OurPrograms(t, "kt_")
	if len(loaded) == 0 {
		t.Error("no kt_ program loaded while the session is open")
	}
	for _, l := range loaded {
		name, _, _ := strings.Cut(l, "#")
		res.loaded = append(res.loaded, name)
	}
	slices.Sort(res.loaded)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- s.Stream(ctx, emitter(func(ev *wire.Event, details string) error {
			c := *ev
			c.Fields = maps.Clone(ev.Fields)
			delay := time.Duration(now() - uint64(ev.Time*1e9))
			mu.Lock()
			res.events = append(res.events, got{c, details})
			if ctx.Err() == nil {
				res.delays = append(res.delays, delay)
			}
			mu.Unlock()
			return nil
		}))
	}()
	during()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stream did not return within 10 s of the stop")
	}
	elapsed := time.Since(start)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	res.stats, res.counters = s.Stats(), s.Counters()
	closed := time.Now()
	if left := testenv.WaitProgramsGone(t, "kt_", 5*time.Second); len(left) != 0 {
		t.Errorf("programs left 5 s after Close: %v", left)
	}
	t.Logf("%s: programs gone %v after Close", hook, time.Since(closed).Round(time.Millisecond))
	after := testenv.AllPrograms(t)
	t.Logf("%s: programs loaded %v; BPF programs on the machine before %d, after %d", hook, loaded, before, after)
	if after != before {
		t.Errorf("BPF programs on the machine: %d before, %d after the session", before, after)
	}
	t.Logf("%s: %d events in %v (%.0f/s), stats %+v, warnings %q", hook, len(res.events), elapsed.Round(time.Millisecond),
		float64(len(res.events))/elapsed.Seconds(), res.stats, res.warns)
	if res.stats.Events != uint64(len(res.events)) {
		t.Errorf("Stats.Events %d, emitted %d", res.stats.Events, len(res.events))
	}
	if res.counters.Lost != 0 && !cfg.allowLost {
		t.Errorf("lost %d: want none", res.counters.Lost)
	}
	if res.counters.MemcgMismatch != 0 && !cfg.allowMismatch {
		t.Errorf("memory cgroup mismatches %d: want none", res.counters.MemcgMismatch)
	}
	if len(res.delays) > 0 {
		d := slices.Clone(res.delays)
		slices.Sort(d)
		t.Logf("%s: delay from the kernel to emit: median %v, max %v (%d events)", hook, d[len(d)/2].Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond), len(d))
	}
	return res
}

// memcgDirs are the fake containers' memory cgroup directories, by
// container id: where the harness made them, which need not be under
// /sys/fs/cgroup, where memCgroupDirs looks.
var memcgDirs sync.Map

// memcgOf finds a target's memory cgroup directory in memcgDirs.
func memcgOf(t attach.Target) []string {
	if d, ok := memcgDirs.Load(t.ContainerID); ok {
		return []string{d.(string)}
	}
	return nil
}

// execAttachment attaches the exec hook to targets.
func execAttachment(targets ...attach.Target) attach.Attachment {
	d, _ := hooks.Lookup("exec")
	return attach.Attachment{Hook: d, Targets: targets}
}

// emitter is a Sink of events only.
type emitter func(ev *wire.Event, details string) error

func (e emitter) Emit(ev *wire.Event, details string) error { return e(ev, details) }
func (e emitter) Raw(int) io.Writer                         { panic("ebpf writes events") }

// target makes a fake container holding a workload in its own mount and
// network namespaces.
func target(t *testing.T, name string, w testenv.Work) (*testenv.Container, *testenv.Proc, attach.Target) {
	t.Helper()
	c := testenv.NewContainer(t)
	p := testenv.Start(t, name, w, syscall.CLONE_NEWNS|syscall.CLONE_NEWNET)
	c.Add(t, p.PID())
	memcgDirs.Store(c.Target().ContainerID, c.Dir(t, "memory"))
	return c, p, attach.Target{Target: c.Target(), PIDs: []int{p.PID()}}
}

// checkFields asserts that every event has exactly the descriptor's
// fields, minus those allowed to be absent, and that the details line
// agrees with them.
func checkFields(t *testing.T, hook string, events []got, optional ...string) {
	t.Helper()
	d, _ := hooks.Lookup(hook)
	for _, e := range events {
		for _, f := range d.Fields {
			if _, ok := e.ev.Fields[f.Name]; !ok && !slices.Contains(optional, f.Name) {
				t.Errorf("event without field %q: %+v", f.Name, e)
				return
			}
		}
		for k := range e.ev.Fields {
			if !slices.ContainsFunc(d.Fields, func(f hooks.Field) bool { return f.Name == k }) {
				t.Errorf("field %q is not documented in the descriptor of %s", k, hook)
				return
			}
			if !strings.Contains(e.details, k+"=") {
				t.Errorf("details %q lack %s=", e.details, k)
				return
			}
		}
		if strings.Contains(e.details, "\n") {
			t.Errorf("details span lines: %q", e.details)
		}
	}
}

func TestExec(t *testing.T) {
	inside := testenv.CopyBinary(t, "/bin/true", "ktexec-in")
	outside := testenv.CopyBinary(t, "/bin/true", "ktexec-out")
	_, tp, tg := target(t, "kttarget", testenv.Work{Kind: "exec", Path: inside, Args: []string{"--who", "the target", "x"}, Every: 20 * time.Millisecond})
	op := testenv.Start(t, "ktoutsider", testenv.Work{Kind: "exec", Path: outside, Args: []string{"--who", "outsider"}, Every: 5 * time.Millisecond}, 0)
	res := trace(t, "exec", nil, []attach.Target{tg}, func() {
		tp.Go(t)
		op.Go(t)
		time.Sleep(1500 * time.Millisecond)
	})
	n := 0
	for _, e := range res.events {
		f := e.ev.Fields
		if e.ev.Event != "exec" || e.ev.Pod != tg.Pod || e.ev.Container != tg.Container {
			t.Errorf("event %+v", e)
		}
		if strings.Contains(f["filename"], "ktexec-out") || f["ppid"] == strconv.Itoa(op.PID()) || e.ev.PID == op.PID() {
			t.Errorf("outsider traced: %+v", e)
		}
		if f["filename"] == inside {
			n++
			if f["ppid"] != strconv.Itoa(tp.PID()) || e.ev.Comm != "ktexec-in" || f["pid"] != strconv.Itoa(e.ev.PID) || f["uid"] != "0" {
				t.Errorf("exec of the target's child: %+v", e)
			}
			if want := inside + ` --who "the target" x`; f["argv"] != want {
				t.Errorf("argv %q, want %q", f["argv"], want)
			}
		}
	}
	if n < 20 {
		t.Errorf("%d execs of %s traced, want >= 20 (one per 20 ms)", n, inside)
	}
	checkFields(t, "exec", res.events)
	// Few events: the programs never wake the reader, which polls every
	// DefaultPollInterval.
	if m := slices.Max(res.delays); m > 3*DefaultPollInterval {
		t.Errorf("an event took %v to reach user space, want < %v", m, 3*DefaultPollInterval)
	}
	if len(res.events) > 0 {
		t.Logf("e.g. %s-%d %s: %s", res.events[0].ev.Comm, res.events[0].ev.PID, res.events[0].ev.Event, res.events[0].details)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	in, out, missing := filepath.Join(dir, "kt-open-in"), filepath.Join(dir, "kt-open-out"), filepath.Join(dir, "kt-open-missing")
	in = testenv.CopyBinary(t, "/bin/true", "kt-open-in")
	out = testenv.CopyBinary(t, "/bin/true", "kt-open-out")
	_, tp, tg := target(t, "kttarget", testenv.Work{Kind: "open", Paths: []string{in, missing}, Every: 20 * time.Millisecond})
	op := testenv.Start(t, "ktoutsider", testenv.Work{Kind: "open", Paths: []string{out, missing}, Every: 5 * time.Millisecond}, 0)
	res := trace(t, "open", nil, []attach.Target{tg}, func() {
		tp.Go(t)
		op.Go(t)
		time.Sleep(1500 * time.Millisecond)
	})
	var ok, failed int
	for _, e := range res.events {
		f := e.ev.Fields
		if e.ev.PID == op.PID() || f["path"] == out {
			t.Errorf("outsider traced: %+v", e)
		}
		if e.ev.PID != tp.PID() {
			continue // the Go runtime of the target, at its start
		}
		switch f["path"] {
		case in:
			ok++
			if fd, err := strconv.Atoi(f["result"]); err != nil || fd < 0 || f["flags"] != "O_RDONLY|O_CLOEXEC" || f["error"] != "" {
				t.Errorf("open of %s: %+v", in, e)
			}
		case missing:
			failed++
			if f["result"] != "-2" || f["error"] != "ENOENT" {
				t.Errorf("open of %s: %+v", missing, e)
			}
		}
	}
	if ok < 20 || failed < 20 {
		t.Errorf("%d opens of %s and %d of %s traced, want >= 20 each", ok, in, failed, missing)
	}
	checkFields(t, "open", res.events, "error")
}

func TestTCP(t *testing.T) {
	const port = 47113
	_, tp, tg := target(t, "kttarget", testenv.Work{Kind: "tcp", Port: port, Every: 20 * time.Millisecond})
	// The outsider does the same on the same port, in a network namespace
	// of its own, outside the container's mount namespace and cgroups.
	op := testenv.Start(t, "ktoutsider", testenv.Work{Kind: "tcp", Port: port, Every: 5 * time.Millisecond}, syscall.CLONE_NEWNET)
	res := trace(t, "tcp", nil, []attach.Target{tg}, func() {
		tp.Go(t)
		op.Go(t)
		time.Sleep(1500 * time.Millisecond)
	})
	count := map[string]int{}
	p := strconv.Itoa(port)
	for _, e := range res.events {
		f := e.ev.Fields
		if e.ev.PID != tp.PID() {
			t.Errorf("event of another process (outsider %d): %+v", op.PID(), e)
			continue
		}
		if f["saddr"] != "127.0.0.1" || f["daddr"] != "127.0.0.1" || f["family"] != "ipv4" {
			t.Errorf("addresses: %+v", e)
		}
		switch e.ev.Event {
		case "connect":
			if f["dport"] != p || f["sport"] == "0" {
				t.Errorf("connect: %+v", e)
			}
		case "accept":
			if f["sport"] != p || f["dport"] == "0" {
				t.Errorf("accept: %+v", e)
			}
		case "close":
			if f["sport"] != p && f["dport"] != p || f["sport"] == "0" || f["dport"] == "0" || f["duration_us"] == "" {
				t.Errorf("close: %+v", e)
			}
		default:
			t.Errorf("event %q", e.ev.Event)
		}
		count[e.ev.Event]++
	}
	t.Logf("events: %v", count)
	if count["connect"] < 20 || count["accept"] < 20 || count["close"] < 40 {
		t.Errorf("events %v, want >= 20 connects and accepts and >= 40 closes (both ends)", count)
	}
	checkFields(t, "tcp", res.events, "duration_us")
}

// syscallTopModes are syscall-top's two modes and the programs of each.
var syscallTopModes = []struct {
	latency  string
	programs []string
}{
	{"true", []string{"kt_sys_enter", "kt_sys_exit"}},
	{"false", []string{"kt_sys_count"}},
}

func TestSyscallTop(t *testing.T) {
	// Enough calls to outlast several 200 ms intervals even on an idle
	// machine (~300 ns each), so rows are printed more than once.
	const calls = 2000000
	for _, mode := range syscallTopModes {
		t.Run("latency="+mode.latency, func(t *testing.T) {
			_, tp, tg := target(t, "kttarget", testenv.Work{Kind: "syscalls", Count: calls})
			op := testenv.Start(t, "ktoutsider", testenv.Work{Kind: "syscalls", Count: calls}, 0)
			res := trace(t, "syscall-top", map[string]string{"interval": "200ms", "top": "50", "latency": mode.latency}, []attach.Target{tg}, func() {
				tp.Go(t)
				op.Go(t)
				tp.Line(t) // done
				op.Line(t)
				time.Sleep(500 * time.Millisecond)
			})
			if !slices.Equal(res.loaded, mode.programs) {
				t.Errorf("programs loaded %v, want %v", res.loaded, mode.programs)
			}
			var getppid uint64
			times := map[float64]bool{}
			for _, e := range res.events {
				f := e.ev.Fields
				times[e.ev.Time] = true
				if e.ev.Event != "syscall" || e.ev.PID != tp.PID() || e.ev.Comm != "kttarget" {
					t.Errorf("row %+v", e)
				}
				_, timed := f["avg_ns"]
				if _, total := f["total_ns"]; timed != total || timed != (mode.latency == "true") {
					t.Errorf("row with latency=%s: %+v", mode.latency, e)
				}
				if f["syscall"] == "getppid" {
					n, _ := strconv.ParseUint(f["count"], 10, 64)
					getppid += n
					if avg, _ := strconv.ParseUint(f["avg_ns"], 10, 64); timed && avg == 0 {
						t.Errorf("row without latency: %+v", e)
					}
				}
			}
			// The Go runtime does not call getppid: every call is the
			// workload's, and the outsider's would show.
			if getppid != calls {
				t.Errorf("getppid count %d, want exactly %d", getppid, calls)
			}
			if len(times) < 2 {
				t.Errorf("rows at %d times, want several (interval 200ms)", len(times))
			}
			if res.counters.Dropped != 0 {
				t.Errorf("dropped %d, want none", res.counters.Dropped)
			}
			checkFields(t, "syscall-top", res.events, "total_ns", "avg_ns")
			if len(res.events) > 0 {
				t.Logf("e.g. %s", res.events[0].details)
			}
		})
	}
}

// syscall-top remembers a task's target in task storage (latency mode):
// a target removed and added again under another index (a pod that went
// and came back) gets the calls made after its return, none lost.
func TestSyscallTopTargetAgain(t *testing.T) {
	const calls = 100000
	c, tp, tg := target(t, "kttarget", testenv.Work{Kind: "syscall-rounds", Count: calls})
	again := tg
	again.Target = c.Target()
	again.Pod = "again"
	var s *Session
	res := traceWith(t, traceConfig{runtime: Runtime{SpareTargets: 1}, framed: true, opened: func(o *Session) { s = o }},
		"syscall-top", map[string]string{"interval": "100ms", "top": "50"}, []attach.Target{tg}, func() {
			tp.Go(t)
			tp.Line(t) // done: the task has its storage, with target 0
			time.Sleep(400 * time.Millisecond)
			if err := s.RemoveTarget(0); err != nil {
				t.Errorf("RemoveTarget: %v", err)
			}
			if err := s.AddTarget(1, again); err != nil {
				t.Errorf("AddTarget: %v", err)
			}
			tp.Go(t)
			tp.Line(t)
			time.Sleep(300 * time.Millisecond)
		})
	byPod := map[string]uint64{}
	for _, e := range res.events {
		if e.ev.Fields["syscall"] == "getppid" {
			n, _ := strconv.ParseUint(e.ev.Fields["count"], 10, 64)
			byPod[e.ev.Pod] += n
		}
	}
	if byPod[tg.Pod] != calls || byPod["again"] != calls || len(byPod) != 2 {
		t.Errorf("getppid counts by pod %v, want %d for %s and for again", byPod, calls, tg.Pod)
	}
	if res.counters.Dropped != 0 {
		t.Errorf("dropped %d, want none", res.counters.Dropped)
	}
}

// The memory cgroup cross-check of syscall-top, in both modes: a process
// that enters the target's mount namespace but stays outside its cgroup
// is counted as a mismatch; its calls count as the target's, or are
// dropped with MemcgFilter.
func TestSyscallTopMemcg(t *testing.T) {
	const calls, intruderCalls = 100000, 30000
	for _, mode := range syscallTopModes {
		for _, filter := range []bool{false, true} {
			t.Run(fmt.Sprintf("latency=%s/filter=%v", mode.latency, filter), func(t *testing.T) {
				_, tp, tg := target(t, "kttarget", testenv.Work{Kind: "syscalls", Count: calls})
				in := testenv.StartInMountNamespace(t, "ktintruder", testenv.Work{Kind: "syscalls", Count: intruderCalls}, tp.PID())
				res := traceWith(t, traceConfig{runtime: Runtime{MemcgFilter: filter}, allowMismatch: true},
					"syscall-top", map[string]string{"interval": "0", "top": "50", "latency": mode.latency}, []attach.Target{tg}, func() {
						tp.Go(t)
						in.Go(t)
						tp.Line(t)
						in.Line(t)
					})
				var getppid uint64
				for _, e := range res.events {
					if e.ev.Fields["syscall"] == "getppid" {
						n, _ := strconv.ParseUint(e.ev.Fields["count"], 10, 64)
						getppid += n
					}
				}
				want := uint64(calls + intruderCalls)
				if filter {
					want = calls
				}
				if getppid != want {
					t.Errorf("getppid count %d, want %d", getppid, want)
				}
				// Count only checks every call; latency checks each task
				// when its target is first looked up.
				least := uint64(intruderCalls)
				if mode.latency == "true" {
					least = 1
				}
				if res.counters.MemcgMismatch < least {
					t.Errorf("memory cgroup mismatches %d, want >= %d", res.counters.MemcgMismatch, least)
				}
				if len(res.warns) != 1 || !strings.Contains(res.warns[0], "outside its memory cgroup") {
					t.Errorf("warnings %q, want one about the memory cgroup", res.warns)
				}
			})
		}
	}
}

func TestRunqlat(t *testing.T) {
	_, tp, tg := target(t, "kttarget", testenv.Work{Kind: "spin", Count: 2})
	op := testenv.Start(t, "ktoutsider", testenv.Work{Kind: "spin", Count: 4}, 0)
	var switches uint64
	res := trace(t, "runqlat", map[string]string{"interval": "500ms"}, []attach.Target{tg}, func() {
		s0 := testenv.SwitchCount(t, tp.PID())
		tp.Go(t)
		op.Go(t)
		time.Sleep(2 * time.Second)
		switches = testenv.SwitchCount(t, tp.PID()) - s0
	})
	var total uint64
	times := map[float64]bool{}
	for _, e := range res.events {
		f := e.ev.Fields
		times[e.ev.Time] = true
		if e.ev.Event != "runqlat" || e.ev.PID != tp.PID() {
			t.Errorf("row %+v", e)
		}
		n, _ := strconv.ParseUint(f["count"], 10, 64)
		total += n
		lo, _ := strconv.ParseUint(f["usecs_lo"], 10, 64)
		hi, _ := strconv.ParseUint(f["usecs_hi"], 10, 64)
		if hi < lo || (lo != 0 && hi != 2*lo-1) {
			t.Errorf("bucket %+v", e)
		}
	}
	// Each wait ends with a switch to one of the target's threads; the
	// outsider's (or anyone else's) waits would push the total past the
	// target's own switches. A few switches happen outside the window.
	t.Logf("histogram total %d, target's context switches %d, rows at %d times", total, switches, len(times))
	if total == 0 || total > switches+switches/10+20 {
		t.Errorf("histogram holds %d waits, want > 0 and about the target's %d switches at most", total, switches)
	}
	if len(times) < 2 {
		t.Errorf("rows at %d times, want several (interval 500ms)", len(times))
	}
	checkFields(t, "runqlat", res.events)
	for _, e := range res.events {
		t.Logf("  %s", e.details)
	}
}

func TestOOMKill(t *testing.T) {
	c, tp, tg := target(t, "kttarget", testenv.Work{Kind: "alloc"})
	c.SetMemoryLimit(t, 64<<20)
	// The outsider gets the same limit in a cgroup of its own.
	oc := testenv.NewContainer(t)
	op := testenv.Start(t, "ktoutsider", testenv.Work{Kind: "alloc"}, 0)
	oc.Add(t, op.PID())
	oc.SetMemoryLimit(t, 64<<20)
	res := trace(t, "oomkill", nil, []attach.Target{tg}, func() {
		op.Go(t)
		if err := op.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("outsider: %v, want killed", err)
		}
		tp.Go(t)
		if err := tp.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("target: %v, want killed", err)
		}
		time.Sleep(200 * time.Millisecond)
	})
	if len(res.events) != 1 {
		t.Fatalf("%d events, want 1: %+v", len(res.events), res.events)
	}
	e := res.events[0]
	f := e.ev.Fields
	pid := strconv.Itoa(tp.PID())
	if e.ev.Event != "oomkill" || e.ev.PID != tp.PID() || e.ev.Comm != "kttarget" || f["victim_pid"] != pid ||
		f["victim_comm"] != "kttarget" || f["trigger_pid"] != pid || f["victim_uid"] != "0" {
		t.Errorf("event %+v", e)
	}
	// The victim holds about the limit (64 MiB = 16384 pages) when killed,
	// plus the file pages of its binary.
	if pages, _ := strconv.Atoi(f["pages"]); pages < 16384/2 || pages > 16384*2 {
		t.Errorf("pages %d, want about 16384", pages)
	}
	t.Logf("%s", e.details)
	checkFields(t, "oomkill", res.events)
}

// A target in the tracer's own mount namespace would scope nothing: Open
// refuses it, and leaves nothing loaded.
func TestOpenRefusesHostMountNamespace(t *testing.T) {
	p := testenv.Start(t, "kthost", testenv.Work{Kind: "syscalls"}, 0)
	_, err := Runtime{}.open(execAttachment(attach.Target{Target: wire.Target{Namespace: "a", Pod: "b", Container: "c"}, PIDs: []int{p.PID()}}), nil)
	if err == nil || !strings.Contains(err.Error(), "mount namespace") {
		t.Fatalf("Open error %v, want a refusal", err)
	}
	t.Log(err)
	if left := testenv.WaitProgramsGone(t, "kt_", 5*time.Second); len(left) != 0 {
		t.Errorf("programs left: %v", left)
	}
}

// The memory cgroup cross-check: a process that enters the target's mount
// namespace (nsenter) but stays outside its cgroup is counted and reported;
// with MemcgFilter its events are dropped.
func TestMemcgCrossCheck(t *testing.T) {
	bin := testenv.CopyBinary(t, "/bin/true", "ktexec-child")
	_, tp, tg := target(t, "kttarget", testenv.Work{Kind: "exec", Path: bin, Args: []string{"target"}, Every: 20 * time.Millisecond})
	for _, filter := range []bool{false, true} {
		t.Run(fmt.Sprintf("filter=%v", filter), func(t *testing.T) {
			in := testenv.StartInMountNamespace(t, "ktintruder", testenv.Work{Kind: "exec", Path: bin, Args: []string{"intruder"}, Every: 20 * time.Millisecond}, tp.PID())
			res := traceWith(t, traceConfig{runtime: Runtime{MemcgFilter: filter}, allowMismatch: true},
				"exec", nil, []attach.Target{tg}, func() {
					if !filter {
						tp.Go(t)
					}
					in.Go(t)
					time.Sleep(time.Second)
				})
			count := map[string]int{}
			for _, e := range res.events {
				count[e.ev.Fields["argv"]]++
			}
			t.Logf("execs by argv: %v", count)
			intruder, targets := count[bin+" intruder"], count[bin+" target"]
			if targets < 10 {
				t.Errorf("%d execs of the target, want >= 10", targets)
			}
			if filter && intruder != 0 || !filter && intruder < 10 {
				t.Errorf("%d execs of the intruder with MemcgFilter=%v", intruder, filter)
			}
			if res.counters.MemcgMismatch < 10 {
				t.Errorf("memory cgroup mismatches %d, want >= 10", res.counters.MemcgMismatch)
			}
			if len(res.warns) != 1 || !strings.Contains(res.warns[0], "outside its memory cgroup") {
				t.Errorf("warnings %q, want one about the memory cgroup", res.warns)
			}
		})
	}
}

// Throughput: the target opens a file as fast as it can; every open is an
// event or counted lost.
func TestOpenThroughput(t *testing.T) {
	const opens = 300000
	path := testenv.CopyBinary(t, "/bin/true", "kt-open-fast")
	_, tp, tg := target(t, "kttarget", testenv.Work{Kind: "open", Paths: []string{path}, Count: opens})
	var took time.Duration
	res := traceWith(t, traceConfig{allowLost: true}, "open", nil, []attach.Target{tg}, func() {
		start := time.Now()
		tp.Go(t)
		tp.Line(t) // done
		took = time.Since(start)
	})
	n := 0
	for _, e := range res.events {
		if e.ev.Fields["path"] == path {
			n++
		}
	}
	t.Logf("%d opens in %v: %.0f opens/s; %d events of them, %d lost (%.2f%%)", opens, took.Round(time.Millisecond),
		opens/took.Seconds(), n, res.stats.Lost, 100*float64(res.stats.Lost)/opens)
	if n > opens || uint64(n)+res.stats.Lost < opens {
		t.Errorf("%d events + %d lost, want %d opens accounted for", n, res.stats.Lost, opens)
	}
}

// AllTasks (node-wide tracing): a process in no target's mount namespace
// is traced as target 0, and the session takes no more targets.
func TestAllTasks(t *testing.T) {
	outside := testenv.CopyBinary(t, "/bin/true", "ktexec-all")
	op := testenv.Start(t, "ktoutsider", testenv.Work{Kind: "exec", Path: outside, Args: []string{"node"}, Every: 20 * time.Millisecond}, 0)
	node := attach.Target{Target: wire.Target{Kind: wire.TargetNode, Node: "n1"}}
	var addErr error
	res := traceWith(t, traceConfig{}, "exec", nil, []attach.Target{node}, func() {
		op.Go(t)
		time.Sleep(time.Second)
	})
	n := 0
	for _, e := range res.events {
		if e.ev.Node != "n1" || e.ev.Pod != "" {
			t.Errorf("event not named by the node target: %+v", e)
		}
		if e.ev.Fields["filename"] == outside && e.ev.Fields["ppid"] == strconv.Itoa(op.PID()) {
			n++
		}
	}
	if n < 10 {
		t.Errorf("%d execs of the outsider traced with AllTasks, want >= 10 (one per 20 ms)", n)
	}
	if len(res.warns) != 0 {
		t.Errorf("warnings %q, want none", res.warns)
	}

	s, err := Runtime{}.open(execAttachment(node), nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	addErr = s.AddTarget(1, attach.Target{Target: wire.Target{Namespace: "a", Pod: "b", Container: "c"}, PIDs: []int{op.PID()}})
	s.Close()
	if addErr == nil || !strings.Contains(addErr.Error(), "every task") {
		t.Errorf("AddTarget with AllTasks: %v, want a refusal", addErr)
	}
	if _, err := (Runtime{}).open(execAttachment(node, node), nil); err == nil || !strings.Contains(err.Error(), "exactly one target") {
		t.Errorf("Open with AllTasks and two targets: %v, want a refusal", err)
	}
	if left := testenv.WaitProgramsGone(t, "kt_", 5*time.Second); len(left) != 0 {
		t.Errorf("programs left: %v", left)
	}
}

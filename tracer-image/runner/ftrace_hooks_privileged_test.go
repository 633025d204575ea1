//go:build linux && privileged

// Privileged tests of the ftrace hooks other than sched, one per hook: a
// target in its own cgroups and mount and network namespaces does the work,
// an outsider does the same outside, and only the target's events may
// show. Run as root on a real kernel with
//
//	go test -tags privileged -run TestFtraceHook ./tracer-image/runner/
package runner

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"github.com/ktrace-dev/kubectl-trace/test/testenv"
)

// binDir copies binaries under new names (name -> source) into a
// temporary directory: a copy's comm is its new name.
func binDir(t *testing.T, bins map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range bins {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// hookCase is one session of a hook against a target and an outsider.
type hookCase struct {
	hook   string
	args   map[string]string
	output string
	// target and outsider start the two workloads; the target is moved
	// into the fake container before it starts working.
	target, outsider func(t *testing.T) *testenv.Proc
	// during runs while the session streams (after both started).
	during func(t *testing.T, target, outsider *testenv.Proc)
	// outsiderComms are comms only the outsider's processes have.
	outsiderComms []string
}

// hookRun is what a session produced.
type hookRun struct {
	events   []wire.Event // JSON output
	lines    []tracedLine // text output
	statuses []wire.Status
	target   *testenv.Proc
	outsider *testenv.Proc
	err      error
}

func runHookCase(t *testing.T, hc hookCase) *hookRun {
	t.Helper()
	c := testenv.NewContainer(t)
	target := hc.target(t)
	c.Add(t, target.PID())
	ownNS, _ := os.Readlink("/proc/self/ns/mnt")
	targetNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", target.PID()))
	if ownNS == targetNS {
		t.Fatalf("target shares the test's mount namespace %s", ownNS)
	}
	outsider := hc.outsider(t)
	req := wire.Request{
		Version:   wire.ProtocolVersion,
		SessionID: fmt.Sprintf("priv-%s-%d", hc.hook, time.Now().UnixNano()),
		Hook:      hc.hook,
		Args:      hc.args,
		Output:    hc.output,
		Targets: []wire.Target{{Node: "n1", Namespace: "test", Pod: "kt", PodUID: "u1",
			Container: "kttarget", ContainerID: "containerd://" + c.ID}},
	}
	if d, ok := hooks.Lookup(hc.hook); ok {
		// What the plugin does before it sends the request.
		args, err := d.ResolveArgs(hc.args)
		if err != nil {
			t.Fatal(err)
		}
		req.Args = args
	}
	run := &hookRun{target: target, outsider: outsider}
	s := runSession(t, req, Config{RefreshInterval: 200 * time.Millisecond}, func() {
		target.Go(t)
		outsider.Go(t)
		if hc.during != nil {
			hc.during(t, target, outsider)
		} else {
			time.Sleep(1500 * time.Millisecond)
		}
	})
	run.err = s.err
	run.statuses = parseStatuses(t, s.stderr.String())
	if out := s.stdout.String(); out != "" {
		sample := strings.SplitN(out, "\n", 6)
		t.Logf("first lines of stdout:\n%s", strings.Join(sample[:len(sample)-1], "\n"))
	}
	t.Logf("statuses: %s", s.stderr.String())
	if s.err == nil {
		if hc.output == hooks.OutputJSON {
			run.events = parseEvents(t, s.stdout.String(), req.Targets[0])
		} else {
			run.lines = parseText(t, s.stdout.String())
		}
	}
	if left := testenv.Instances(t, "kubectl-trace-"+req.SessionID+"-"); len(left) != 0 {
		t.Errorf("instances left: %v", left)
	}
	checkTracersReset(t)
	if s.err != nil {
		return run
	}
	k := kinds(run.statuses)
	want := []string{wire.StatusReady, wire.StatusResolved, wire.StatusStarted, wire.StatusStats}
	if strings.Join(k, ",") != strings.Join(want, ",") {
		t.Errorf("status kinds %v, want %v", k, want)
	}
	stats := run.statuses[len(run.statuses)-1]
	n := len(run.events) + len(run.lines)
	if stats.Events == 0 || stats.Events != uint64(n) {
		t.Errorf("stats events %d, want %d (> 0)", stats.Events, n)
	}
	t.Logf("%d events, lost %d", n, stats.Lost)
	// No event is the outsider's.
	outsiderPID := outsider.PID()
	check := func(pid int, comm, what string) {
		if pid == outsiderPID {
			t.Errorf("event traced to the outsider's pid: %s", what)
		}
		for _, oc := range hc.outsiderComms {
			if comm == oc {
				t.Errorf("event traced to the outsider's %s: %s", comm, what)
			}
		}
	}
	for _, ev := range run.events {
		b, _ := json.Marshal(ev)
		check(ev.PID, ev.Comm, string(b))
	}
	for _, l := range run.lines {
		check(l.pid, l.comm, fmt.Sprintf("%+v", l))
	}
	return run
}

// parseEvents reads JSON output.
func parseEvents(t *testing.T, out string, tg wire.Target) []wire.Event {
	t.Helper()
	var evs []wire.Event
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var ev wire.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if ev.Node != tg.Node || ev.Pod != tg.Pod || ev.Container != tg.Container || ev.Fields == nil {
			t.Fatalf("event without its target or fields: %s", sc.Text())
		}
		evs = append(evs, ev)
	}
	return evs
}

// checkTracersReset asserts that no instance, nor the top level, is left
// with a tracer other than nop.
func checkTracersReset(t *testing.T) {
	t.Helper()
	dir := testenv.Tracefs(t)
	files, _ := filepath.Glob(filepath.Join(dir, "instances", "*", "current_tracer"))
	files = append(files, filepath.Join(dir, "current_tracer"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // an instance removed meanwhile
		}
		if got := strings.TrimSpace(string(b)); got != "nop" {
			t.Errorf("%s is %q, want nop", strings.TrimPrefix(f, dir), got)
		}
	}
}

// count returns how many events satisfy ok.
func count(evs []wire.Event, ok func(ev wire.Event) bool) int {
	n := 0
	for _, ev := range evs {
		if ok(ev) {
			n++
		}
	}
	return n
}

func TestFtraceHookSyscalls(t *testing.T) {
	bins := binDir(t, map[string]string{"kttarget": "/bin/sh", "ktcat": "/bin/cat", "ktoutsider": "/bin/sh", "ktocat": "/bin/cat"})
	work := func(cat string) string {
		return fmt.Sprintf("read x; while :; do %s/%s /etc/hostname > /dev/null; %s/%s /nonexistent-ktrace 2>/dev/null; sleep 0.02; done", bins, cat, bins, cat)
	}
	hc := hookCase{
		hook: "syscalls",
		target: func(t *testing.T) *testenv.Proc {
			return testenv.StartProcess(t, unix.CLONE_NEWNS|unix.CLONE_NEWNET, nil, bins+"/kttarget", "-c", work("ktcat"))
		},
		outsider: func(t *testing.T) *testenv.Proc {
			return testenv.StartProcess(t, 0, nil, bins+"/ktoutsider", "-c", work("ktocat"))
		},
		outsiderComms: []string{"ktoutsider", "ktocat"},
	}
	t.Run("json all", func(t *testing.T) {
		hc := hc
		hc.output = hooks.OutputJSON
		r := runHookCase(t, hc)
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
		enoent := count(r.events, func(ev wire.Event) bool {
			return ev.Comm == "ktcat" && ev.Event == "syscall" && ev.Fields["name"] == "openat" && ev.Fields["errno"] == "ENOENT" && ev.Fields["ret"] == "-2"
		})
		reads := count(r.events, func(ev wire.Event) bool {
			d, err := strconv.ParseInt(ev.Fields["duration_ns"], 10, 64)
			n, _ := strconv.Atoi(ev.Fields["ret"])
			return ev.Comm == "ktcat" && ev.Fields["name"] == "read" && n > 0 && err == nil && d > 0 && strings.HasPrefix(ev.Fields["args"], "fd: ")
		})
		shell := count(r.events, func(ev wire.Event) bool { return ev.Comm == "kttarget" && ev.PID == r.target.PID() })
		exits := count(r.events, func(ev wire.Event) bool { return ev.Fields["name"] == "exit_group" })
		t.Logf("openat ENOENT: %d, reads: %d, shell's: %d, exit_group: %d", enoent, reads, shell, exits)
		if enoent == 0 || reads == 0 || shell == 0 || exits == 0 {
			t.Error("missing events of the target")
		}
		for _, ev := range r.events {
			if ev.Event != "syscall" || ev.Fields["name"] == "" {
				t.Errorf("not a syscall event: %+v", ev)
				break
			}
		}
	})
	t.Run("text list", func(t *testing.T) {
		hc := hc
		hc.output = hooks.OutputText
		hc.args = map[string]string{"syscalls": "openat,read"}
		r := runHookCase(t, hc)
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
		names := map[string]int{}
		for _, l := range r.lines {
			name, _, _ := strings.Cut(strings.TrimPrefix(l.details, "name="), " ")
			names[name]++
			if l.event != "syscall" {
				t.Errorf("line %+v is not a syscall", l)
			}
		}
		t.Logf("syscalls: %v", names)
		if names["openat"] == 0 || names["read"] == 0 || len(names) != 2 {
			t.Errorf("syscalls %v, want openat and read only", names)
		}
	})
	t.Run("unknown syscall", func(t *testing.T) {
		hc := hc
		hc.output = hooks.OutputText
		hc.args = map[string]string{"syscalls": "openat,no_such_call"}
		r := runHookCase(t, hc)
		if r.err == nil || !strings.Contains(r.err.Error(), "no syscall event for no_such_call") {
			t.Fatalf("Run error %v, want one about no_such_call", r.err)
		}
	})
}

func TestFtraceHookSignals(t *testing.T) {
	bins := binDir(t, map[string]string{"kttarget": "/bin/sh", "ktoutsider": "/bin/sh", "ktbystander": "/bin/sleep"})
	bystander := exec.Command(bins+"/ktbystander", "600")
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bystander.Process.Kill(); bystander.Wait() })
	// Each sends itself SIGUSR1 (handled) and the bystander SIGCONT (which
	// it ignores: result delivered, nothing to deliver).
	work := fmt.Sprintf("trap : USR1 USR2; read x; while :; do kill -USR1 $$; kill -CONT %d; sleep 0.05; done", bystander.Process.Pid)
	hc := hookCase{
		hook: "signals",
		target: func(t *testing.T) *testenv.Proc {
			return testenv.StartProcess(t, unix.CLONE_NEWNS|unix.CLONE_NEWNET, nil, bins+"/kttarget", "-c", work)
		},
		outsider: func(t *testing.T) *testenv.Proc {
			return testenv.StartProcess(t, 0, nil, bins+"/ktoutsider", "-c", work)
		},
		// The test (an outsider) sends the target SIGUSR2, and the
		// outsider SIGUSR2 too.
		during: func(t *testing.T, target, outsider *testenv.Proc) {
			for i := 0; i < 10; i++ {
				time.Sleep(120 * time.Millisecond)
				syscall.Kill(target.PID(), syscall.SIGUSR2)
				syscall.Kill(outsider.PID(), syscall.SIGUSR2)
			}
		},
		outsiderComms: []string{"ktoutsider"},
	}
	for _, output := range []string{hooks.OutputJSON, hooks.OutputText} {
		t.Run(output, func(t *testing.T) {
			hc := hc
			hc.output = output
			r := runHookCase(t, hc)
			if r.err != nil {
				t.Fatalf("Run: %v", r.err)
			}
			tp, op := strconv.Itoa(r.target.PID()), strconv.Itoa(r.outsider.PID())
			// kill(2) from the test runs on one of its threads.
			fromTest := func(tid string) bool {
				_, err := os.Stat("/proc/self/task/" + tid)
				return err == nil
			}
			evs := r.events
			if output == hooks.OutputText {
				for _, l := range r.lines {
					evs = append(evs, wire.Event{PID: l.pid, Comm: l.comm, Event: l.event, Fields: fieldsOf(l.details)})
				}
			}
			self := count(evs, func(ev wire.Event) bool {
				return ev.Event == "signal_generate" && ev.Fields["signame"] == "SIGUSR1" && ev.Fields["sender_pid"] == tp && ev.Fields["receiver_pid"] == tp && ev.Fields["result"] == "delivered"
			})
			toBystander := count(evs, func(ev wire.Event) bool {
				return ev.Event == "signal_generate" && ev.Fields["signame"] == "SIGCONT" && ev.PID == r.target.PID() &&
					ev.Fields["sender_pid"] == tp && ev.Fields["receiver_comm"] == "ktbystander"
			})
			fromOutside := count(evs, func(ev wire.Event) bool {
				return ev.Event == "signal_generate" && ev.Fields["signame"] == "SIGUSR2" && ev.PID == r.target.PID() &&
					ev.Fields["receiver_pid"] == tp && fromTest(ev.Fields["sender_pid"]) && ev.Fields["result"] == "delivered"
			})
			delivered := count(evs, func(ev wire.Event) bool {
				return ev.Event == "signal_deliver" && ev.Fields["signame"] == "SIGUSR2" && ev.PID == r.target.PID()
			})
			t.Logf("to itself %d, to the bystander %d, from outside %d, SIGUSR2 delivered %d", self, toBystander, fromOutside, delivered)
			if self == 0 || toBystander == 0 || fromOutside == 0 || delivered == 0 {
				t.Error("missing signals of the target")
			}
			for _, ev := range evs {
				if ev.Fields["sender_pid"] == op || ev.Fields["receiver_pid"] == op {
					t.Errorf("a signal of the outsider: %+v", ev)
				}
			}
		})
	}
}

// fieldsOf parses "k=v k=v" details of a text line back into fields.
func fieldsOf(details string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Fields(details) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// loopDevice attaches a loop device over a new 16 MiB file and returns its
// path and its "major,minor".
func loopDevice(t *testing.T) (string, string) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v: %s", dev, err, out)
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		t.Fatal(err)
	}
	return dev, fmt.Sprintf("%d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
}

func TestFtraceHookBlock(t *testing.T) {
	bins := binDir(t, map[string]string{"kttarget": "/bin/sh", "ktdd": "/bin/dd", "ktoutsider": "/bin/sh", "ktodd": "/bin/dd"})
	targetDev, targetNum := loopDevice(t)
	outsiderDev, outsiderNum := loopDevice(t)
	t.Logf("target writes %s (%s), the outsider %s (%s)", targetDev, targetNum, outsiderDev, outsiderNum)
	// O_DIRECT writes, then a read, straight to the loop device.
	work := func(dd, dev string) string {
		return fmt.Sprintf("read x; while :; do %s/%s if=/dev/zero of=%s bs=4k count=4 oflag=direct conv=notrunc 2>/dev/null; %s/%s if=%s of=/dev/null bs=8k count=2 iflag=direct 2>/dev/null; sleep 0.05; done",
			bins, dd, dev, bins, dd, dev)
	}
	hc := hookCase{
		hook: "block",
		target: func(t *testing.T) *testenv.Proc {
			return testenv.StartProcess(t, unix.CLONE_NEWNS|unix.CLONE_NEWNET, nil, bins+"/kttarget", "-c", work("ktdd", targetDev))
		},
		outsider: func(t *testing.T) *testenv.Proc {
			return testenv.StartProcess(t, 0, nil, bins+"/ktoutsider", "-c", work("ktodd", outsiderDev))
		},
		outsiderComms: []string{"ktoutsider", "ktodd"},
	}
	for _, output := range []string{hooks.OutputJSON, hooks.OutputText} {
		t.Run(output, func(t *testing.T) {
			hc := hc
			hc.output = output
			r := runHookCase(t, hc)
			if r.err != nil {
				t.Fatalf("Run: %v", r.err)
			}
			evs := r.events
			if output == hooks.OutputText {
				for _, l := range r.lines {
					evs = append(evs, wire.Event{PID: l.pid, Comm: l.comm, Event: l.event, Fields: fieldsOf(l.details)})
				}
			}
			writes := count(evs, func(ev wire.Event) bool {
				lat, err := strconv.ParseInt(ev.Fields["latency_ns"], 10, 64)
				return ev.Event == "block_io" && ev.Comm == "ktdd" && ev.Fields["dev"] == targetNum && strings.HasPrefix(ev.Fields["rwbs"], "W") &&
					ev.Fields["bytes"] == "4096" && err == nil && lat > 0 && ev.Fields["error"] == "0"
			})
			reads := count(evs, func(ev wire.Event) bool {
				return ev.Event == "block_io" && ev.Comm == "ktdd" && ev.Fields["dev"] == targetNum && strings.HasPrefix(ev.Fields["rwbs"], "R")
			})
			t.Logf("target's writes %d, reads %d", writes, reads)
			if writes == 0 || reads == 0 {
				t.Error("missing block I/O of the target")
			}
			for _, ev := range evs {
				if ev.Fields["dev"] == outsiderNum {
					t.Errorf("block I/O of the outsider's device: %+v", ev)
					break
				}
			}
		})
	}
}

func TestFtraceHookPageFaults(t *testing.T) {
	work := testenv.Work{Kind: "pagefaults", Every: 50 * time.Millisecond}
	hc := hookCase{
		hook: "pagefaults",
		target: func(t *testing.T) *testenv.Proc {
			return testenv.Start(t, "ktfault", work, unix.CLONE_NEWNS|unix.CLONE_NEWNET)
		},
		outsider:      func(t *testing.T) *testenv.Proc { return testenv.Start(t, "ktofault", work, 0) },
		outsiderComms: []string{"ktofault"},
	}
	t.Run("json user", func(t *testing.T) {
		hc := hc
		hc.output = hooks.OutputJSON
		r := runHookCase(t, hc)
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
		writes := count(r.events, func(ev wire.Event) bool {
			return ev.Event == "page_fault_user" && ev.Comm == "ktfault" && ev.Fields["access"] == "write" && ev.Fields["cause"] == "not-present" &&
				strings.HasPrefix(ev.Fields["address"], "0x") && strings.HasPrefix(ev.Fields["ip"], "0x")
		})
		kernel := count(r.events, func(ev wire.Event) bool { return ev.Event == "page_fault_kernel" })
		t.Logf("user write faults of the target: %d, kernel faults %d", writes, kernel)
		// 4 MiB a round, 20 rounds a second: thousands.
		if writes < 1000 {
			t.Errorf("%d write faults of the target, want thousands", writes)
		}
		if kernel != 0 {
			t.Errorf("%d kernel faults without kernel=true", kernel)
		}
	})
	t.Run("text kernel", func(t *testing.T) {
		hc := hc
		hc.output = hooks.OutputText
		hc.args = map[string]string{"kernel": "true"}
		r := runHookCase(t, hc)
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
		kinds := map[string]int{}
		for _, l := range r.lines {
			if l.comm == "ktfault" {
				kinds[l.event]++
			}
		}
		t.Logf("target's faults: %v", kinds)
		if kinds["page_fault_user"] < 1000 || kinds["page_fault_kernel"] < 100 {
			t.Errorf("faults %v, want thousands from user and kernel mode", kinds)
		}
	})
}

// functionTracing reports whether the kernel lets an instance use the
// function tracer (a kernel in lockdown, or without CONFIG_FUNCTION_TRACER,
// does not), trying it in a scratch instance of the test's own.
func functionTracing(t *testing.T) (bool, string) {
	t.Helper()
	dir := testenv.Tracefs(t)
	inst := filepath.Join(dir, "instances", fmt.Sprintf("ktrace-test-probe-%d", os.Getpid()))
	if err := os.Mkdir(inst, 0o750); err != nil {
		t.Fatal(err)
	}
	defer func() {
		os.WriteFile(filepath.Join(inst, "current_tracer"), []byte("nop"), 0)
		if err := unix.Rmdir(inst); err != nil {
			t.Errorf("removing %s: %v", inst, err)
		}
	}()
	if _, err := os.ReadFile(filepath.Join(dir, "available_filter_functions")); err != nil {
		return false, fmt.Sprintf("reading available_filter_functions: %v", err)
	}
	if err := os.WriteFile(filepath.Join(inst, "set_ftrace_filter"), []byte("vfs_read"), 0); err != nil {
		return false, fmt.Sprintf("writing set_ftrace_filter: %v", err)
	}
	if err := os.WriteFile(filepath.Join(inst, "current_tracer"), []byte("function"), 0); err != nil {
		return false, fmt.Sprintf("writing current_tracer: %v", err)
	}
	return true, ""
}

// funcgraph traces the named functions when the kernel allows function
// tracing; where it does not, the session fails before ready with an error
// that says why, and leaves no instance and no tracer behind.
func TestFtraceHookFuncgraph(t *testing.T) {
	bins := binDir(t, map[string]string{"kttarget": "/bin/sh", "ktcat": "/bin/cat", "ktoutsider": "/bin/sh", "ktocat": "/bin/cat"})
	work := func(cat string) string {
		return fmt.Sprintf("read x; while :; do %s/%s /etc/hostname > /dev/null; sleep 0.02; done", bins, cat)
	}
	hc := hookCase{
		hook:   "funcgraph",
		output: hooks.OutputJSON,
		target: func(t *testing.T) *testenv.Proc {
			return testenv.StartProcess(t, unix.CLONE_NEWNS|unix.CLONE_NEWNET, nil, bins+"/kttarget", "-c", work("ktcat"))
		},
		outsider: func(t *testing.T) *testenv.Proc {
			return testenv.StartProcess(t, 0, nil, bins+"/ktoutsider", "-c", work("ktocat"))
		},
		outsiderComms: []string{"ktoutsider", "ktocat"},
	}
	ok, why := functionTracing(t)
	t.Logf("function tracing allowed: %v %s", ok, why)
	r := runHookCase(t, hc)
	if !ok {
		if r.err == nil || !strings.Contains(r.err.Error(), "must allow function tracing") {
			t.Fatalf("Run error %v, want one that says the kernel refuses function tracing", r.err)
		}
		if k := kinds(r.statuses); strings.Join(k, ",") != "resolved,error" {
			t.Errorf("status kinds %v, want resolved, error", k)
		}
		return
	}
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	reads := count(r.events, func(ev wire.Event) bool {
		return ev.Event == "function" && ev.Comm == "ktcat" && ev.Fields["func"] == "vfs_read" && ev.Fields["caller"] != ""
	})
	t.Logf("vfs_read calls of the target: %d", reads)
	if reads == 0 {
		t.Error("no vfs_read call of the target")
	}
}

package ftrace

import (
	"bufio"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks"
)

// shown is a record as a test compares it.
type shown struct {
	PID     int
	Comm    string
	Event   string
	Time    float64
	Details string
	Fields  map[string]string
}

// descriptor is the catalogue's descriptor of hook.
func descriptor(t *testing.T, hook string) hooks.Descriptor {
	t.Helper()
	d, ok := hooks.Lookup(hook)
	if !ok {
		t.Fatalf("no hook %q in the catalogue", hook)
	}
	return d
}

// fakeKernel answers kernelInfo from lists.
type fakeKernel struct {
	sys, fns []string
	err      error
}

func (k fakeKernel) syscalls() ([]string, error)        { return k.sys, k.err }
func (k fakeKernel) filterFunctions() ([]string, error) { return k.fns, k.err }

// feed runs the lines of a capture (testdata/<name>, whose first line is
// "# target=<pid>") through the hook's processor, as a session with one
// target and JSON output would, and returns what it shows.
func feed(t *testing.T, hook string, args map[string]string, name string) []shown {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(lines[0], "# target="))
	if err != nil {
		t.Fatalf("%s: first line %q is not # target=<pid>", name, lines[0])
	}
	return feedLines(t, hook, args, []int{pid}, lines[1:])
}

func feedLines(t *testing.T, hook string, args map[string]string, tids []int, lines []string) []shown {
	t.Helper()
	tr := newTracker()
	tr.add(0, tids, func(int) string { return "initial" })
	p, err := newPlan(descriptor(t, hook), args, true, tr, fakeKernel{sys: []string{"openat", "read", "write"}})
	if err != nil {
		t.Fatal(err)
	}
	var out []shown
	emit := func(r *record) error {
		s := shown{PID: r.task.pid, Comm: r.task.comm, Event: r.event, Time: r.time, Details: r.details, Fields: map[string]string{}}
		if r.fields == nil {
			s.Fields = Fields(r.details)
		}
		for _, f := range r.fields {
			s.Fields[f.key] = f.value
		}
		// Text and JSON say the same.
		if r.fields != nil {
			if diff := cmp.Diff(s.Fields, Fields(r.details)); diff != "" {
				t.Errorf("fields and text of %s differ (-fields +text):\n%s", r.details, diff)
			}
		}
		out = append(out, s)
		return nil
	}
	for _, s := range lines {
		if strings.TrimSpace(s) == "" || strings.HasPrefix(s, "#") {
			continue
		}
		l, err := ParseLine(s)
		if err != nil {
			t.Fatalf("ParseLine(%q): %v", s, err)
		}
		if err := p.proc.line(&l, emit); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.proc.end(emit); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseLineSyscallsAndFunctions(t *testing.T) {
	tests := []struct {
		line string
		want Line
	}{
		{`             cat-13325   [001] .....  2339.899061: sys_write(fd: 1, buf: 0x7f3314522000, count: 3)`,
			Line{Task: "cat", TaskPID: 13325, CPU: 1, Time: 2339.899061, Event: "sys_enter_write", Details: "fd: 1, buf: 0x7f3314522000, count: 3"}},
		{`             cat-13325   [001] .....  2339.899062: sys_write -> 0x3`,
			Line{Task: "cat", TaskPID: 13325, CPU: 1, Time: 2339.899062, Event: "sys_exit_write", Details: "0x3"}},
		{`             cat-13325   [001] .....  2339.899074: sys_exit_group(error_code: 0)`,
			Line{Task: "cat", TaskPID: 13325, CPU: 1, Time: 2339.899074, Event: "sys_enter_exit_group", Details: "error_code: 0"}},
		{`             cat-13325   [001] .....  2339.899075: sys_sched_yield()`,
			Line{Task: "cat", TaskPID: 13325, CPU: 1, Time: 2339.899075, Event: "sys_enter_sched_yield", Details: ""}},
		{`            bash-4577    [001] .....  2209.342470: vfs_read.isra.0 <-ksys_read`,
			Line{Task: "bash", TaskPID: 4577, CPU: 1, Time: 2209.34247, Event: "function", Details: "vfs_read.isra.0 <-ksys_read"}},
	}
	for _, tt := range tests {
		got, err := ParseLine(tt.line)
		if err != nil {
			t.Errorf("ParseLine(%q): %v", tt.line, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseLine(%q) (-want +got):\n%s", tt.line, diff)
		}
	}
}

// The capture: a shell (13323) runs cat /etc/hostname, cat /nonexistent
// and /bin/true, waiting for each.
func TestSyscallsCapture(t *testing.T) {
	got := feed(t, "syscalls", nil, "syscalls_pipe.txt")
	byName := map[string]int{}
	for _, s := range got {
		byName[s.Fields["name"]]++
		if s.Event != "syscall" {
			t.Errorf("event %q, want syscall", s.Event)
		}
	}
	t.Logf("%d calls: %v", len(got), byName)
	find := func(pid int, name, ret string) *shown {
		for i := range got {
			if got[i].PID == pid && got[i].Fields["name"] == name && (ret == "" || got[i].Fields["ret"] == ret) {
				return &got[i]
			}
		}
		t.Fatalf("no %s of %d returning %q", name, pid, ret)
		return nil
	}
	// The first line is an exit whose entry was before the capture.
	if first := got[0]; first.Fields["name"] != "openat" || first.Fields["ret"] != "3" || first.Fields["duration_ns"] != "" || first.Fields["args"] != "" {
		t.Errorf("first call %+v, want an openat without entry", first)
	}
	// A failed openat of the second cat: ENOENT, paired, with arguments.
	enoent := find(13326, "openat", "-2")
	if enoent.Fields["errno"] != "ENOENT" || enoent.Fields["duration_ns"] == "" || !strings.HasPrefix(enoent.Fields["args"], "dfd: 0xffffff9c, filename: 0x") || enoent.Comm != "cat" {
		t.Errorf("failed openat: %+v", enoent)
	}
	// execve returns in the new image: paired, named by the exec.
	exec := find(13325, "execve", "0")
	if exec.Fields["duration_ns"] != "110000" || exec.Comm != "cat" || exec.Time != 2339.898318 {
		t.Errorf("execve: %+v, want 110 µs from 2339.898318", exec)
	}
	// exit_group never returns: shown at its entry, without ret.
	exit := find(13326, "exit_group", "")
	if _, ok := exit.Fields["ret"]; ok || exit.Fields["args"] != "error_code: 1" {
		t.Errorf("exit_group: %+v", exit)
	}
	// wait4 blocks; WNOHANG after it fails with ECHILD (0xfffffffffffffff6).
	if w := find(13323, "wait4", "-10"); w.Fields["errno"] != "ECHILD" {
		t.Errorf("wait4: %+v", w)
	}
	if w := find(13323, "wait4", strconv.Itoa(0x340d)); w.Fields["duration_ns"] != "869000" {
		t.Errorf("blocking wait4: %+v, want 869 µs", w)
	}
	// Large return values (addresses) are hex; the text says what the
	// fields say (feed checks).
	for _, s := range got {
		if s.PID != 13323 && s.PID != 13325 && s.PID != 13326 && s.PID != 13327 {
			t.Errorf("a call of %d, not the target's: %+v", s.PID, s)
		}
	}
}

func TestSyscallsPairing(t *testing.T) {
	lines := []string{
		`  a-10 [000] ..... 1.000000: sys_read(fd: 0, buf: 0x7ffd, count: 1)`,
		`  a-11 [001] ..... 1.000001: sys_getppid()`,
		`  a-11 [001] ..... 1.000003: sys_getppid -> 0xa`,
		`  a-12 [000] ..... 1.000005: sys_mmap(addr: 0, len: 0x1000, prot: 3, flags: 0x22, fd: 0xffffffffffffffff, off: 0)`,
		`  a-12 [000] ..... 1.000006: sys_mmap -> 0x7f0012345000`,
		`  a-13 [000] ..... 1.000007: sys_nanosleep(rqtp: 0x7ffd, rmtp: 0)`,
		`  a-13 [000] ..... 1.000010: sched_process_exit: comm=a pid=13 prio=120 group_dead=false`,
		`  a-14 [000] ..... 1.000011: sys_write(fd: 1, buf: 0x55, count: 2)`,
		`  a-14 [000] ..... 1.000012: sys_close(fd: 3)`,
		`  a-14 [000] ..... 1.000013: sys_close -> 0x0`,
	}
	got := feedLines(t, "syscalls", nil, []int{10, 11, 12, 13, 14}, lines)
	var summary []string
	for _, s := range got {
		summary = append(summary, strconv.Itoa(s.PID)+" "+s.Details)
	}
	want := []string{
		"11 name=getppid ret=10 duration_ns=2000 args=",
		"12 name=mmap ret=0x7f0012345000 duration_ns=1000 args=addr: 0, len: 0x1000, prot: 3, flags: 0x22, fd: 0xffffffffffffffff, off: 0",
		"13 name=nanosleep unfinished=true args=rqtp: 0x7ffd, rmtp: 0",
		// The write's exit was lost: the close that follows is paired, the
		// write is dropped.
		"14 name=close ret=0 duration_ns=1000 args=fd: 3",
		// Still blocked when the trace ends.
		"10 name=read unfinished=true args=fd: 0, buf: 0x7ffd, count: 1",
	}
	if diff := cmp.Diff(want, summary); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// The capture has no PID filter: the target (13448) signals itself, forks
// children that signal and are killed; Go runtimes elsewhere on the node
// send SIGURG among themselves.
func TestSignalsCapture(t *testing.T) {
	got := feed(t, "signals", nil, "signals_pipe.txt")
	var summary []string
	for _, s := range got {
		f := s.Fields
		line := strconv.Itoa(s.PID) + " " + s.Event + " " + f["signame"]
		if s.Event == "signal_generate" {
			line += " " + f["sender_pid"] + "->" + f["receiver_pid"] + " " + f["result"]
		}
		summary = append(summary, line)
	}
	want := []string{
		"13448 signal_generate SIGUSR1 13448->13448 delivered",
		"13448 signal_deliver SIGUSR1",
		"13448 signal_generate SIGUSR2 13448->13448 ignored",
		"13450 signal_generate SIGTERM 13450->13450 delivered",
		"13450 signal_deliver SIGKILL", // a fatal signal is delivered as SIGKILL
		"13448 signal_generate SIGCHLD 13450->13448 delivered",
		"13448 signal_deliver SIGCHLD",
		"13451 signal_generate SIGKILL 13448->13451 delivered",
		"13451 signal_deliver SIGKILL",
		"13448 signal_generate SIGCHLD 13451->13448 delivered",
		"13448 signal_deliver SIGCHLD",
		// The target's exit tells its parent, outside: the target sent it.
		"13448 signal_generate SIGCHLD 13448->13444 delivered",
	}
	if diff := cmp.Diff(want, summary); diff != "" {
		t.Errorf("signals (-want +got):\n%s", diff)
	}
}

// The capture has no PID filter: the target's dd (a child) writes and
// reads /dev/loop0 (7,0) with O_DIRECT, and reads its binary from vda
// (254,0); Go programs elsewhere read vda too.
func TestBlockCapture(t *testing.T) {
	got := feed(t, "block", nil, "block_pipe.txt")
	var summary []string
	for _, s := range got {
		f := s.Fields
		summary = append(summary, strings.Join([]string{s.Comm, strconv.Itoa(s.PID), f["dev"], f["rwbs"], f["sector"], f["bytes"], f["latency_ns"], f["queue_ns"], f["error"]}, " "))
	}
	want := []string{
		"dd 13635 254,0 RA 12580640 4096 239000 7000 0",
		"dd 13635 7,0 WS 0 4096 62000  0",
		"dd 13635 7,0 WS 8 4096 102000  0",
		"dd 13635 7,0 WS 16 4096 90000  0",
		"dd 13636 7,0 RS 0 8192 18000  0",
		"dd 13636 7,0 RS 16 8192 14000  0",
	}
	if diff := cmp.Diff(want, summary); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	// Only one device.
	got = feed(t, "block", map[string]string{"dev": "254:0"}, "block_pipe.txt")
	if len(got) != 1 || got[0].Fields["dev"] != "254,0" {
		t.Errorf("dev=254:0 shows %+v", got)
	}
}

func TestPageFaultsCapture(t *testing.T) {
	got := feed(t, "pagefaults", nil, "pagefaults_pipe.txt")
	if len(got) < 20 {
		t.Fatalf("%d faults", len(got))
	}
	kinds := map[string]int{}
	for _, s := range got {
		kinds[s.Fields["access"]+"/"+s.Fields["cause"]]++
		if s.PID != 13428 || s.Event != "page_fault_user" || s.Fields["address"] == "" || s.Fields["ip"] == "" {
			t.Errorf("fault %+v", s)
		}
	}
	t.Logf("faults: %v", kinds)
	// 0x14: an instruction fetch from user mode of a page not present;
	// 0x7: a user write to a present page (copy on write); 0x6: a user
	// write to a page not present.
	for code, want := range map[string]string{"0x14": "exec/not-present", "0x7": "write/protection", "0x6": "write/not-present", "0x4": "read/not-present"} {
		fs := pageFaultFields(nil, []field{{"error_code", code}})
		if got := fs[1].value + "/" + fs[2].value; got != want {
			t.Errorf("error_code %s: %s, want %s", code, got, want)
		}
	}
}

func TestFunctionsLines(t *testing.T) {
	lines := []string{
		`            cat-5  [001] .....  10.000001: vfs_read <-ksys_read`,
		`          other-6  [001] .....  10.000002: vfs_read <-ksys_read`,
		`            cat-5  [001] .....  10.000003: sched_process_fork: comm=cat pid=5 child_comm=cat child_pid=7`,
		`            cat-7  [000] .....  10.000004: vfs_write <-ksys_write`,
	}
	tr := newTracker()
	tr.add(0, []int{5}, nil)
	p := &functions{tr: tr, fields: true}
	var got []string
	for _, s := range lines {
		l, err := ParseLine(s)
		if err != nil {
			t.Fatal(err)
		}
		p.line(&l, func(r *record) error {
			got = append(got, strconv.Itoa(r.task.pid)+" "+r.details)
			return nil
		})
	}
	want := []string{"5 func=vfs_read caller=ksys_read", "7 func=vfs_write caller=ksys_write"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestPlan(t *testing.T) {
	k := fakeKernel{sys: []string{"openat", "read", "write", "exit_group"}, fns: []string{"vfs_read", "vfs_write", "vfs_writev", "do_sys_open"}}
	tests := []struct {
		hook      string
		args      map[string]string
		events    string
		filtered  bool
		raw       bool
		functions string
		wantErr   string
	}{
		{hook: "syscalls", events: "syscalls:*", filtered: true, raw: true},
		{hook: "syscalls", args: map[string]string{"syscalls": "read,openat,read"},
			events: "syscalls:sys_enter_read syscalls:sys_exit_read syscalls:sys_enter_openat syscalls:sys_exit_openat", filtered: true, raw: true},
		{hook: "syscalls", args: map[string]string{"syscalls": "read,frobnicate"}, wantErr: "this kernel has no syscall event for frobnicate"},
		{hook: "syscalls", args: map[string]string{"syscalls": "sys_read"}, wantErr: "without the sys_ prefix"},
		{hook: "signals", events: "signal:signal_generate signal:signal_deliver"},
		{hook: "block", events: "block:block_rq_insert block:block_rq_issue block:block_rq_complete"},
		{hook: "block", args: map[string]string{"dev": "sda"}, wantErr: "major:minor"},
		{hook: "pagefaults", events: "exceptions:page_fault_user", filtered: true},
		{hook: "pagefaults", args: map[string]string{"kernel": "true"}, events: "exceptions:page_fault_user exceptions:page_fault_kernel", filtered: true},
		{hook: "funcgraph", filtered: true, functions: "vfs_read vfs_write"},
		{hook: "funcgraph", args: map[string]string{"functions": "vfs_w*,do_sys_open"}, filtered: true, functions: "do_sys_open vfs_w*"},
		{hook: "funcgraph", args: map[string]string{"functions": "*"}, wantErr: "every kernel function"},
		{hook: "funcgraph", args: map[string]string{"functions": "vfs_readx"}, wantErr: "vfs_readx is not a function the kernel can trace"},
		{hook: "funcgraph", args: map[string]string{"functions": "xyz_*"}, wantErr: "xyz_* matches no function"},
	}
	for _, tt := range tests {
		p, err := newPlan(descriptor(t, tt.hook), tt.args, false, newTracker(), k)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s %v: error %v, want %q", tt.hook, tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %v: %v", tt.hook, tt.args, err)
			continue
		}
		events := strings.Join(p.events, " ")
		wantEvents := strings.TrimSpace(tt.events + " sched:sched_process_fork sched:sched_process_exec sched:sched_process_exit")
		if events != wantEvents || p.filtered != tt.filtered || p.raw != tt.raw || strings.Join(p.functions, " ") != tt.functions {
			t.Errorf("%s %v: events %q filtered %v raw %v functions %q, want %q %v %v %q", tt.hook, tt.args,
				events, p.filtered, p.raw, p.functions, wantEvents, tt.filtered, tt.raw, tt.functions)
		}
	}
	// A kernel that refuses function tracing says so.
	_, err := newPlan(descriptor(t, "funcgraph"), nil, false, newTracker(), fakeKernel{err: errors.New("operation not permitted")})
	if err == nil || !strings.Contains(err.Error(), "must allow function tracing") {
		t.Errorf("funcgraph on a locked-down kernel: %v", err)
	}
	// Too many functions.
	many := fakeKernel{}
	for i := 0; i < 100; i++ {
		many.fns = append(many.fns, "vfs_f"+strconv.Itoa(i))
	}
	if _, err := newPlan(descriptor(t, "funcgraph"), map[string]string{"functions": "vfs_f*"}, false, newTracker(), many); err == nil || !strings.Contains(err.Error(), "selects 100 functions") {
		t.Errorf("100 functions: %v", err)
	}
	// sched keeps the descriptor's events.
	p, err := newPlan(hooks.Descriptor{Name: "sched", Events: []string{"sched:sched_switch"}}, nil, false, newTracker(), k)
	if err != nil || strings.Join(p.events, " ") != "sched:sched_switch" || !p.filtered || !p.raw {
		t.Errorf("sched plan %+v, %v", p, err)
	}
}

func TestNames(t *testing.T) {
	for n, want := range map[int]string{2: "ENOENT", 10: "ECHILD", 4095: "E4095"} {
		if got := errnoName(n); got != want {
			t.Errorf("errnoName(%d) = %s, want %s", n, got, want)
		}
	}
	for n, want := range map[int]string{9: "SIGKILL", 17: "SIGCHLD", 34: "SIGRTMIN+0", 64: "SIGRTMIN+30", 99: "SIG99"} {
		if got := signalName(n); got != want {
			t.Errorf("signalName(%d) = %s, want %s", n, got, want)
		}
	}
}

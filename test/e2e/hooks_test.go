//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// One scenario per hook (sched and tcpdump have their own files): a target
// pod does work the hook sees, a noise pod on the same node does the same
// work under other names (ktbravo, ktmarker-noise, another port, another
// signal, another address), and the trace must show the target's work with
// the right field values and nothing of the noise. The scenarios run in
// parallel (go test's -parallel, GOMAXPROCS by default); each checks that
// its own session left nothing behind, and the group checks the namespace
// at the end.
func TestHooks(t *testing.T) {
	t.Run("group", func(t *testing.T) {
		for _, s := range []struct {
			name string
			f    func(t *testing.T)
		}{
			{"exec", hookExec},
			{"open", hookOpen},
			{"tcp", hookTCP},
			{"syscalls", hookSyscalls},
			{"signals", hookSignals},
			{"block", hookBlock},
			{"pagefaults", hookPagefaults},
			{"syscall-top", hookSyscallTop},
			{"runqlat", hookRunqlat},
			{"oomkill", hookOOMKill},
			{"funcgraph", hookFuncgraph},
		} {
			t.Run(s.name, func(t *testing.T) {
				t.Parallel()
				s.f(t)
			})
		}
	})
	// Every session of the group is over: none of them may have left a
	// helper pod in the namespace or a tracefs instance.
	if pods := helperPods(t); len(pods) != 0 {
		var names []string
		for _, p := range pods {
			names = append(names, p.Name+" ("+string(p.Status.Phase)+")")
		}
		t.Errorf("helper pods left in %s: %s", namespace, strings.Join(names, ", "))
	}
	for _, m := range sessionRE.FindAllStringSubmatch(traceStderr.String(), -1) {
		if left := instances(t, m[0]); len(left) != 0 {
			t.Errorf("tracefs instances left by session %s: %v", m[1], left)
		}
	}
}

// hookExec: an exec of /tmp/ktmarker-target (a copy of the workload) with
// arguments, run in the target with kubectl exec once the trace runs, and
// the target's own children (/usr/bin/ktalpha child, once a second).
func hookExec(t *testing.T) {
	startPods(t,
		pod("exec-target", "sh", "-c", "cp /workload /tmp/ktmarker-target && exec /usr/bin/ktalpha spin"),
		pod("exec-noise", "sh", "-c", "cp /workload /tmp/ktmarker-noise && exec /usr/bin/ktbravo spin"))
	r := runTrace(t, func() {
		kubectlExec(t, "exec-target", "/tmp/ktmarker-target", "child", "ktmarker-arg", "two words")
		kubectlExec(t, "exec-noise", "/tmp/ktmarker-noise", "child", "noise-arg")
	}, "pod/exec-target", "--hook", "exec", "--duration", "9s", "-o", "json")
	evs := traceOK(t, r, "exec-target", "exec", "json")
	noNoise(t, evs, "ktbravo", "ktmarker-noise", "noise-arg")

	var marker, children int
	for _, e := range evs {
		f := e.Fields
		if e.Event != "exec" {
			t.Errorf("event %q, want exec only: %+v", e.Event, e)
			continue
		}
		if f["pid"] != strconv.Itoa(e.PID) || f["uid"] != "0" || atoi(f["ppid"]) <= 0 {
			t.Errorf("pid, ppid or uid wrong: %+v", e)
		}
		switch f["filename"] {
		case "/tmp/ktmarker-target":
			marker++
			if want := `/tmp/ktmarker-target child ktmarker-arg "two words"`; f["argv"] != want {
				t.Errorf("argv %q, want %q", f["argv"], want)
			}
			if e.Comm != "ktmarker-target" {
				t.Errorf("the new program's comm is %q, want ktmarker-target", e.Comm)
			}
		case "/usr/bin/ktalpha":
			children++
			if f["argv"] != "ktalpha child" || e.Comm != "ktalpha" {
				t.Errorf("the workload's child: %+v", e)
			}
		}
	}
	if marker != 1 {
		t.Errorf("%d execs of /tmp/ktmarker-target, want the 1 kubectl exec ran, in %d events", marker, len(evs))
	}
	if children < 2 {
		t.Errorf("%d execs of the workload's child, want one a second", children)
	}
}

// hookOpen: the target opens /tmp/ktmarker-target (there) and
// /tmp/ktmarker-target-missing (not there) every 100 ms.
func hookOpen(t *testing.T) {
	startPods(t, openPod("open-target", "ktalpha", "target"), openPod("open-noise", "ktbravo", "noise"))
	r := runTrace(t, nil, "pod/open-target", "--hook", "open", "--duration", "6s", "-o", "json")
	evs := traceOK(t, r, "open-target", "open", "json")
	noNoise(t, evs, "ktbravo", "ktmarker-noise")

	var found, missing int
	for _, e := range evs {
		f := e.Fields
		if e.Event != "open" {
			t.Errorf("event %q, want open only", e.Event)
		}
		switch f["path"] {
		case "/tmp/ktmarker-target":
			found++
			if f["flags"] != "O_RDONLY|O_CLOEXEC" || atoi(f["result"]) < 0 || f["error"] != "" || e.Comm != "ktalpha" {
				t.Errorf("open of the file that is there: %+v", e)
			}
		case "/tmp/ktmarker-target-missing":
			missing++
			if f["flags"] != "O_RDONLY|O_CLOEXEC" || f["result"] != "-2" || f["error"] != "ENOENT" || e.Comm != "ktalpha" {
				t.Errorf("open of the missing file: %+v", e)
			}
		}
	}
	// 10 a second each.
	if found < 10 || missing < 10 {
		t.Errorf("%d opens of /tmp/ktmarker-target and %d of the missing file in %d events, want 10 a second each", found, missing, len(evs))
	}
}

// hookTCP: client and server pods (both traced, with a selector) on port
// 8080; the noise client and server use port 9090.
func hookTCP(t *testing.T) {
	role := map[string]string{"ktrace.dev/tcp": "traced"}
	servers := startPods(t,
		labelled(pod("tcp-server", "/usr/bin/ktalpha", "serve", ":8080"), role),
		pod("tcp-noise-server", "/usr/bin/ktbravo", "serve", ":9090"))
	server, noiseServer := servers["tcp-server"].Status.PodIP, servers["tcp-noise-server"].Status.PodIP
	clients := startPods(t,
		labelled(pod("tcp-client", "/usr/bin/ktalpha", "connect", server+":8080"), role),
		pod("tcp-noise-client", "/usr/bin/ktbravo", "connect", noiseServer+":9090"))
	client, noiseClient := clients["tcp-client"].Status.PodIP, clients["tcp-noise-client"].Status.PodIP

	r := runTrace(t, nil, "-l", "ktrace.dev/tcp=traced", "--hook", "tcp", "--duration", "6s", "-o", "json")
	evs := traceOK(t, r, "", "tcp", "json")
	noNoise(t, evs, "ktbravo")

	count := map[string]int{}
	for _, e := range evs {
		f := e.Fields
		// The server listens on ":8080", a dual-stack IPv6 socket: its
		// connections are IPv6 ones with IPv4-mapped addresses.
		if f["family"] == "ipv6" && e.Pod == "tcp-server" && strings.HasPrefix(f["saddr"], "::ffff:") && strings.HasPrefix(f["daddr"], "::ffff:") {
			f["family"] = "ipv4"
			f["saddr"], f["daddr"] = strings.TrimPrefix(f["saddr"], "::ffff:"), strings.TrimPrefix(f["daddr"], "::ffff:")
		}
		for _, k := range []string{"saddr", "daddr", "sport", "dport"} {
			if v := f[k]; v == noiseServer || v == noiseClient || v == "9090" {
				t.Errorf("the noise's connection: %+v", e)
			}
		}
		if f["family"] != "ipv4" || e.Comm != "ktalpha" || e.Container != "app" {
			t.Errorf("event %+v", e)
		}
		key := e.Pod + " " + e.Event
		switch key {
		case "tcp-client connect":
			if f["saddr"] != client || f["daddr"] != server || f["dport"] != "8080" || atoi(f["sport"]) < 1024 {
				t.Errorf("client's connect: %+v", e)
			}
		case "tcp-server accept":
			if f["saddr"] != server || f["sport"] != "8080" || f["daddr"] != client {
				t.Errorf("server's accept: %+v", e)
			}
		case "tcp-client close":
			if f["daddr"] != server || f["dport"] != "8080" || f["duration_us"] == "" {
				t.Errorf("client's close: %+v", e)
			}
		case "tcp-server close":
			if f["sport"] != "8080" || f["daddr"] != client || f["duration_us"] == "" {
				t.Errorf("server's close: %+v", e)
			}
		default:
			t.Errorf("unexpected %s event: %+v", key, e)
		}
		count[key]++
	}
	// The client connects 5 times a second.
	for _, k := range []string{"tcp-client connect", "tcp-server accept", "tcp-client close", "tcp-server close"} {
		if count[k] < 5 {
			t.Errorf("%d %q events, want 5 a second: %v", count[k], k, count)
		}
	}
}

// hookSyscalls: openat only; the target opens a file that is there and
// one that is not, from buffers whose addresses it prints: the events'
// filename argument is that address.
func hookSyscalls(t *testing.T) {
	startPods(t, openPod("syscalls-target", "ktalpha", "target"), openPod("syscalls-noise", "ktbravo", "noise"))
	logs := waitLog(t, "syscalls-target", "ktmarker-target-missing filename")
	ptr := map[string]string{}
	for _, m := range regexp.MustCompile(`open (\S+) filename (0x[0-9a-f]+)`).FindAllStringSubmatch(logs, -1) {
		ptr[m[1]] = m[2]
	}
	r := runTrace(t, nil, "pod/syscalls-target", "--hook", "syscalls", "--arg", "syscalls=openat", "--duration", "6s", "-o", "json")
	evs := traceOK(t, r, "syscalls-target", "syscalls", "json")
	noNoise(t, evs, "ktbravo")

	var found, missing int
	for _, e := range evs {
		f := e.Fields
		if e.Event != "syscall" || f["name"] != "openat" {
			t.Errorf("want only openat calls with --arg syscalls=openat: %+v", e)
			continue
		}
		if f["unfinished"] == "true" {
			// A call under way when the trace stopped: no return yet.
			continue
		}
		switch {
		case strings.Contains(f["args"], "filename: "+ptr["/tmp/ktmarker-target"]+","):
			found++
			if atoi(f["ret"]) < 0 || f["errno"] != "" || atoi(f["duration_ns"]) <= 0 || !strings.Contains(f["args"], "flags: 0x80000,") || e.Comm != "ktalpha" {
				t.Errorf("openat of /tmp/ktmarker-target: %+v", e)
			}
		case strings.Contains(f["args"], "filename: "+ptr["/tmp/ktmarker-target-missing"]+","):
			missing++
			if f["ret"] != "-2" || f["errno"] != "ENOENT" || atoi(f["duration_ns"]) <= 0 || e.Comm != "ktalpha" {
				t.Errorf("openat of the missing file: %+v", e)
			}
		}
	}
	if found < 10 || missing < 10 {
		t.Errorf("%d openat calls of /tmp/ktmarker-target (filename %s) and %d of the missing file (%s) in %d events, want 10 a second each",
			found, ptr["/tmp/ktmarker-target"], missing, ptr["/tmp/ktmarker-target-missing"], len(evs))
	}
}

// hookSignals: kill -USR1 1 in the target (busybox kill to the workload,
// whose handler prints it), kill -USR2 1 in the noise pod; text output.
func hookSignals(t *testing.T) {
	startPods(t, pod("signals-target", "/usr/bin/ktalpha", "spin"), pod("signals-noise", "/usr/bin/ktbravo", "spin"))
	r := runTrace(t, func() {
		kubectlExec(t, "signals-target", "kill", "-USR1", "1")
		kubectlExec(t, "signals-noise", "kill", "-USR2", "1")
	}, "pod/signals-target", "--hook", "signals", "--duration", "9s")
	evs := traceOK(t, r, "signals-target", "signals", "text")
	noNoise(t, evs, "ktbravo", "SIGUSR2")

	var generated, delivered int
	for _, e := range evs {
		f := e.Fields
		if f["signame"] != "SIGUSR1" {
			continue
		}
		switch e.Event {
		case "signal_generate":
			generated++
			if f["sig"] != "10" || f["sender_comm"] != "kill" || f["receiver_comm"] != "ktalpha" || f["receiver_pid"] != strconv.Itoa(e.PID) ||
				e.Comm != "ktalpha" || f["group"] != "1" || f["result"] != "delivered" || f["code"] != "0" {
				t.Errorf("SIGUSR1 sent by kill to the workload: %+v", e)
			}
		case "signal_deliver":
			delivered++
			// The Go runtime has a handler for every signal.
			if f["sig"] != "10" || e.Comm != "ktalpha" || f["sa_handler"] == "0" || f["sa_handler"] == "1" {
				t.Errorf("SIGUSR1 delivered to the workload: %+v", e)
			}
		default:
			t.Errorf("event %+v", e)
		}
	}
	if generated != 1 || delivered != 1 {
		t.Errorf("SIGUSR1: %d signal_generate and %d signal_deliver events, want 1 each, in %d events", generated, delivered, len(evs))
	}
	if logs := waitLog(t, "signals-target", "got SIGUSR1"); strings.Contains(logs, "got SIGUSR2") {
		t.Errorf("the target got the noise's signal:\n%s", logs)
	}
}

// hookBlock: O_DIRECT writes of 4 KiB with fsync, every 100 ms, to a file
// in an emptyDir; the trace keeps the emptyDir's disk only (--arg dev).
// The emptyDir is a directory of the kubelet's file system, on a real
// disk here (virtio, 254:0); the container's overlayfs root would do too,
// O_DIRECT passes through to the same disk.
func hookBlock(t *testing.T) {
	startPods(t, ioPod("block-target", "ktalpha", "target"), ioPod("block-noise", "ktbravo", "noise"))
	logs := waitLog(t, "block-target", " on dev ")
	m := regexp.MustCompile(` on dev (\d+):(\d+)`).FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("the workload did not print its file system's device:\n%s", logs)
	}
	disk := wholeDisk(t, m[1]+":"+m[2])
	r := runTrace(t, nil, "pod/block-target", "--hook", "block", "--arg", "dev="+disk, "--duration", "6s")
	evs := traceOK(t, r, "block-target", "block", "text")
	noNoise(t, evs, "ktbravo")

	data := 0
	for _, e := range evs {
		f := e.Fields
		if e.Event != "block_io" || f["dev"] != strings.Replace(disk, ":", ",", 1) || f["error"] != "0" || e.Comm != "ktalpha" ||
			atoi(f["bytes"]) != 512*atoi(f["nr_sector"]) || atoi(f["latency_ns"]) <= 0 {
			t.Errorf("event on %s: %+v", disk, e)
		}
		// The data writes: synchronous, not metadata, one 4 KiB block.
		if f["rwbs"] == "WS" && f["bytes"] == "4096" && f["nr_sector"] == "8" {
			data++
		}
	}
	if data < 10 {
		t.Errorf("%d 4 KiB direct writes (rwbs WS) on %s in %d events, want 10 a second", data, disk, len(evs))
	}
}

// hookPagefaults: the target maps 64 fresh pages at 0x6b7400000000 every
// 100 ms and writes each (the noise at 0x6b6e00000000).
func hookPagefaults(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("pagefaults uses the x86 exceptions tracepoints")
	}
	const base, noise = 0x6b7400000000, 0x6b6e00000000
	startPods(t, pod("pagefaults-target", "/usr/bin/ktalpha", "touch", fmt.Sprintf("%#x", base)),
		pod("pagefaults-noise", "/usr/bin/ktbravo", "touch", fmt.Sprintf("%#x", noise)))
	r := runTrace(t, nil, "pod/pagefaults-target", "--hook", "pagefaults", "--duration", "6s", "-o", "json")
	evs := traceOK(t, r, "pagefaults-target", "pagefaults", "json")
	noNoise(t, evs, "ktbravo", "0x6b6e")

	pages := map[uint64]int{}
	for _, e := range evs {
		f := e.Fields
		if e.Event != "page_fault_user" {
			t.Errorf("a kernel fault without kernel=true: %+v", e)
			continue
		}
		addr, err := strconv.ParseUint(strings.TrimPrefix(f["address"], "0x"), 16, 64)
		if err != nil {
			t.Errorf("address %q: %v", f["address"], err)
			continue
		}
		if addr < base || addr >= base+64*4096 {
			continue
		}
		pages[addr]++
		if addr%4096 != 0 || f["access"] != "write" || f["cause"] != "not-present" || f["error_code"] != "0x6" || e.Comm != "ktalpha" {
			t.Errorf("fault on a fresh page: %+v", e)
		}
	}
	if len(pages) != 64 {
		t.Errorf("faults on %d of the 64 pages at %#x in %d events", len(pages), base, len(evs))
	}
	for a, n := range pages {
		if n < 10 {
			t.Errorf("%d faults at %#x, want 10 a second", n, a)
		}
	}
}

// hookSyscallTop: the target calls getppid 20000 times a second, the noise
// getgid; text output, at most 5 rows a second.
func hookSyscallTop(t *testing.T) {
	startPods(t, pod("syscall-top-target", "/usr/bin/ktalpha", "syscalls", "getppid"),
		pod("syscall-top-noise", "/usr/bin/ktbravo", "syscalls", "getgid"))
	r := runTrace(t, nil, "pod/syscall-top-target", "--hook", "syscall-top",
		"--arg", "interval=1s", "--arg", "top=5", "--duration", "6s")
	evs := traceOK(t, r, "syscall-top-target", "syscall-top", "text")
	noNoise(t, evs, "ktbravo", "getgid")

	rows := map[float64][]wire.Event{}
	for _, e := range evs {
		f := e.Fields
		rows[e.Time] = append(rows[e.Time], e)
		n, total, avg := atoi(f["count"]), atoi(f["total_ns"]), atoi(f["avg_ns"])
		if e.Event != "syscall" || e.Comm != "ktalpha" || n <= 0 || total < 0 || avg != total/n {
			t.Errorf("row %+v", e)
		}
	}
	full := 0
	for ts, rs := range rows {
		if len(rs) > 5 {
			t.Errorf("%d rows at %f with --arg top=5", len(rs), ts)
		}
		// An interval with getppid at its top; sorted by count.
		if f := rs[0].Fields; f["syscall"] == "getppid" && f["nr"] == strconv.Itoa(unix.SYS_GETPPID) && atoi(f["count"]) >= 5000 {
			full++
		}
		for i := 1; i < len(rs); i++ {
			if atoi(rs[i].Fields["count"]) > atoi(rs[i-1].Fields["count"]) {
				t.Errorf("rows at %f not sorted by count: %+v", ts, rs)
			}
		}
	}
	if full < 2 {
		t.Errorf("%d intervals of 1 s with getppid (nr %d) at the top and 5000 calls or more, in %d rows", full, unix.SYS_GETPPID, len(evs))
	}
}

// hookRunqlat: two busy threads in the target under a CPU limit of 100m:
// the CFS quota (10 ms of every 100 ms) throttles them, so they wait on the
// run queue for tens of milliseconds again and again, on any node. The
// noise pod burns the same way.
func hookRunqlat(t *testing.T) {
	startPods(t, burnPod("runqlat-target", "ktalpha"), burnPod("runqlat-noise", "ktbravo"))
	r := runTrace(t, nil, "pod/runqlat-target", "--hook", "runqlat", "--duration", "5s", "-o", "json")
	evs := traceOK(t, r, "runqlat-target", "runqlat", "json")
	noNoise(t, evs, "ktbravo")

	var total, throttled uint64
	var prevHi = -1
	var hist []string
	for _, e := range evs {
		f := e.Fields
		lo, hi, n := atoi(f["usecs_lo"]), atoi(f["usecs_hi"]), atoi(f["count"])
		hist = append(hist, fmt.Sprintf("%d-%d:%d", lo, hi, n))
		// log2 buckets of one histogram (interval 0: printed once at the
		// end), from the lowest to the highest bucket with counts.
		okBucket := (lo == 0 && hi == 1) || (lo >= 2 && lo&(lo-1) == 0 && hi == 2*lo-1)
		if e.Event != "runqlat" || e.Comm != "ktalpha" || !okBucket || lo != prevHi+1 || n < 0 {
			t.Errorf("bucket %+v after one ending at %d", e, prevHi)
		}
		prevHi = hi
		total += uint64(n)
		if lo >= 16384 {
			throttled += uint64(n)
		}
	}
	if len(evs) > 0 && (atoi(evs[0].Fields["count"]) == 0 || atoi(evs[len(evs)-1].Fields["count"]) == 0) {
		t.Errorf("the histogram starts or ends with an empty bucket: %v, %v", evs[0].Fields, evs[len(evs)-1].Fields)
	}
	t.Logf("histogram (µs:waits): %s", strings.Join(hist, " "))
	// Throttled 90 ms of every 100 ms, each thread about 10 times a second.
	if total < 50 || throttled < 10 {
		t.Errorf("%d waits, %d of 16 ms or more, in %d buckets; want 50 or more, 10 of them of 16 ms or more (throttled threads)", total, throttled, len(evs))
	}
}

// hookOOMKill: the target's shell starts `ktalpha alloc` under a 64 MiB
// limit once the trace runs (touch /tmp/go), and survives its OOM kill;
// the noise pod does the same with ktbravo.
func hookOOMKill(t *testing.T) {
	startPods(t, oomPod("oomkill-target", "ktalpha"), oomPod("oomkill-noise", "ktbravo"))
	r := runTrace(t, func() {
		kubectlExec(t, "oomkill-target", "touch", "/tmp/go")
		kubectlExec(t, "oomkill-noise", "touch", "/tmp/go")
	}, "pod/oomkill-target", "--hook", "oomkill", "--duration", "9s", "-o", "json")
	evs := traceOK(t, r, "oomkill-target", "oomkill", "json")
	noNoise(t, evs, "ktbravo")

	// cgroup v1 (this cluster): the OOM killer picks ktalpha alloc only and
	// the shell lives on. (With cgroup v2 the kubelet sets memory.oom.group
	// and the whole container would go, the shell too.)
	if len(evs) != 1 {
		t.Fatalf("%d oomkill events, want the one kill of ktalpha alloc", len(evs))
	}
	e := evs[0]
	f := e.Fields
	if e.Event != "oomkill" || f["victim_comm"] != "ktalpha" || f["trigger_comm"] != "ktalpha" || f["victim_uid"] != "0" ||
		atoi(f["victim_pid"]) <= 0 || atoi(f["trigger_pid"]) <= 0 || e.Comm != "ktalpha" {
		t.Errorf("event %+v", e)
	}
	// The victim held most of the 64 MiB (16384 pages) when it was chosen.
	if p := atoi(f["pages"]); p < 8192 || p > 32768 {
		t.Errorf("the victim's resident pages: %d, want about 16384 (64 MiB)", p)
	}
	if logs := waitLog(t, "oomkill-target", "alloc ended 137"); !strings.Contains(logs, "MiB") {
		t.Errorf("the target's log:\n%s", logs)
	}
}

// hookFuncgraph: where the kernel's function tracer can be used, the
// target's vfs_write calls (the default functions are vfs_read and
// vfs_write) appear and the noise's do not; where it cannot (this
// development VM: available_filter_functions and current_tracer refuse with
// EPERM under lockdown), the trace fails cleanly. Either kernel runs a
// scenario: none is skipped. The first has never run here.
func hookFuncgraph(t *testing.T) {
	if _, err := os.ReadFile(filepath.Join(tracefs, "available_filter_functions")); err != nil {
		hookFuncgraphUnusable(t)
		return
	}
	startPods(t, ioPod("funcgraph-target", "ktalpha", "funcgraph-target"), ioPod("funcgraph-noise", "ktbravo", "funcgraph-noise"))
	r := runTrace(t, nil, "pod/funcgraph-target", "--hook", "funcgraph", "--duration", "6s", "-o", "json")
	evs := traceOK(t, r, "funcgraph-target", "funcgraph", "json")
	noNoise(t, evs, "ktbravo")
	writes := 0
	for _, e := range evs {
		if e.Comm == "ktalpha" && e.Fields["func"] == "vfs_write" {
			writes++
		}
	}
	if writes < 10 {
		t.Errorf("%d vfs_write calls of ktalpha in %d events, want 10 a second", writes, len(evs))
	}
}

// hookFuncgraphUnusable: on a kernel whose function tracer cannot be used,
// the trace fails at once with the missing feature named.
func hookFuncgraphUnusable(t *testing.T) {
	startPods(t, pod("funcgraph-target", "/usr/bin/ktalpha", "spin"))
	r := runTrace(t, nil, "pod/funcgraph-target", "--hook", "funcgraph", "--duration", "20s", "-o", "json")
	if r.code == 0 {
		t.Errorf("exit 0 without a function tracer")
	}
	for _, want := range []string{
		`attaching hook "funcgraph"`,
		// Here: EPERM reading available_filter_functions.
		"listing the functions the kernel can trace: ",
		"the kernel needs CONFIG_FUNCTION_TRACER and must allow function tracing",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout: %q", r.stdout)
	}
	if r.elapsed > 15*time.Second {
		t.Errorf("failing took %s: it waited for the duration", r.elapsed)
	}
	if !hookSummary(r.stderr, "funcgraph-target/app", "funcgraph", "failed", false) {
		t.Errorf("no summary row ending failed")
	}
	sessionClean(t, r.stderr)
}

// TestEBPFHookStartsWithItsOwnCapabilities runs an eBPF hook the way users
// do, as every scenario of TestHooks does: with the capabilities its
// descriptor lists, not --privileged. When the node cannot grant one, it
// names which.
func TestEBPFHookStartsWithItsOwnCapabilities(t *testing.T) {
	startPods(t, pod("ebpf-target", "/usr/bin/ktalpha", "spin"))
	r := runTrace(t, nil, "pod/ebpf-target", "--hook", "exec", "--duration", "4s", "-o", "json")
	if missing := unboundedCaps("exec"); len(missing) != 0 && r.code != 0 {
		t.Errorf("the exec hook asks for %v, which this node's capability bounding set lacks, so its helper cannot start; "+
			"the eBPF hooks need Linux 5.11+, which charges BPF memory to the memory cgroup, not RLIMIT_MEMLOCK: SYS_RESOURCE is not needed there", missing)
	}
	evs := traceOK(t, r, "ebpf-target", "exec", "json")
	for _, e := range evs {
		if e.Fields["filename"] != "/usr/bin/ktalpha" || e.Fields["argv"] != "ktalpha child" {
			t.Errorf("event %+v, want the workload's children only", e)
		}
	}
	assertClean(t, r.stderr)
}

// ---- pods

// pod is a workload pod on the test node running command.
func pod(name string, command ...string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers: []corev1.Container{{
				Name: "app", Image: workloadImage, ImagePullPolicy: corev1.PullNever, Command: command,
			}},
		},
	}
}

func labelled(p *corev1.Pod, labels map[string]string) *corev1.Pod {
	p.Labels = labels
	return p
}

// openPod opens /tmp/ktmarker-<marker> (which its shell creates) and
// /tmp/ktmarker-<marker>-missing every 100 ms, as comm.
func openPod(name, comm, marker string) *corev1.Pod {
	file := "/tmp/ktmarker-" + marker
	return pod(name, "sh", "-c", "echo "+marker+" > "+file+" && exec /usr/bin/"+comm+" open "+file+" "+file+"-missing")
}

// ioPod writes /data/ktmarker-<marker> with O_DIRECT, /data an emptyDir.
func ioPod(name, comm, marker string) *corev1.Pod {
	p := pod(name, "/usr/bin/"+comm, "io", "/data/ktmarker-"+marker)
	p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	return p
}

// burnPod keeps two threads busy under a CPU limit of 100m.
func burnPod(name, comm string) *corev1.Pod {
	p := pod(name, "/usr/bin/"+comm, "burn", "2")
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}
	return p
}

// oomPod waits for /tmp/go, then runs `comm alloc` under a 64 MiB limit;
// the shell outlives the OOM kill.
func oomPod(name, comm string) *corev1.Pod {
	p := pod(name, "sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; /usr/bin/"+comm+" alloc; echo alloc ended $?; exec sleep 3600")
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}
	return p
}

// startPods creates the pods, waits until they all run and returns them
// by name; they are deleted when the test ends.
func startPods(t *testing.T, pods ...*corev1.Pod) map[string]*corev1.Pod {
	t.Helper()
	ctx := context.Background()
	for _, p := range pods {
		if _, err := client.CoreV1().Pods(namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		name := p.Name
		t.Cleanup(func() {
			_ = client.CoreV1().Pods(namespace).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
		})
	}
	out := map[string]*corev1.Pod{}
	for _, p := range pods {
		out[p.Name] = createAndWait(t, p)
	}
	return out
}

// waitLog waits until the pod's log holds want and returns the log.
func waitLog(t *testing.T, pod, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := client.CoreV1().Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{}).DoRaw(context.Background())
		if err == nil && strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log of %s lacks %q after 30s (%v):\n%s", pod, want, err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kubectlExec runs a command in the pod's container.
func kubectlExec(t *testing.T, pod string, command ...string) {
	t.Helper()
	out, err := exec.Command("kubectl", append([]string{"exec", "-n", namespace, pod, "--"}, command...)...).CombinedOutput()
	if err != nil {
		t.Errorf("kubectl exec %s -- %s: %v\n%s", pod, strings.Join(command, " "), err, out)
	}
}

// wholeDisk maps a file system's device (MAJOR:MINOR) to the disk the
// block tracepoints name: a partition's parent disk, or itself.
func wholeDisk(t *testing.T, dev string) string {
	t.Helper()
	sys := "/sys/dev/block/" + dev
	if _, err := os.Stat(sys); err != nil {
		t.Fatalf("the emptyDir's file system is on %s, not a block device of the node (%v): nothing for the block hook to see", dev, err)
	}
	if _, err := os.Stat(filepath.Join(sys, "partition")); err == nil {
		b, err := os.ReadFile(filepath.Join(sys, "..", "dev"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	return dev
}

// ---- traces

// traceStderr collects the stderr of every runTrace, for the final check
// that no session left anything behind.
var traceStderr syncBuffer

// runTrace runs `kubectl trace ARGS`; once it streams (its "tracing with
// hook" line), it runs action, if any, and then waits for the end.
func runTrace(t *testing.T, action func(), args ...string) result {
	t.Helper()
	cmd := traceCmd(args...)
	var stdout syncBuffer
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	started := false
wait:
	for deadline := time.After(90 * time.Second); ; {
		select {
		case <-done:
			break wait
		case <-deadline:
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("kubectl trace %s: no end after 90s\nstderr:\n%s", strings.Join(args, " "), stderr)
		case <-time.After(50 * time.Millisecond):
			if !started && strings.Contains(stderr.String(), "tracing with hook") {
				started = true
				t.Logf("tracing %s after the command started", time.Since(start).Round(time.Millisecond))
				if action != nil {
					action()
				}
			}
		}
	}
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode(), elapsed: time.Since(start)}
	fmt.Fprintln(&traceStderr, r.stderr)
	t.Logf("kubectl trace %s: exit %d after %s, %d bytes on stdout\nstderr:\n%s", strings.Join(args, " "), r.code,
		r.elapsed.Round(time.Millisecond), len(r.stdout), r.stderr)
	return r
}

// traceOK checks what every successful trace must show: exit 0, the
// summary row, every line of stdout an event of the target (pod; "" for
// any pod of the namespace), nothing left behind. It returns the events.
func traceOK(t *testing.T, r result, pod, hook, format string) []wire.Event {
	t.Helper()
	sessionClean(t, r.stderr)
	if r.code != 0 {
		t.Fatalf("exit %d, want 0", r.code)
	}
	if !hookSummary(r.stderr, pod+"/app", hook, "duration reached", true) {
		t.Errorf("no summary row for %s/app with events, ended by the duration", pod)
	}
	evs := parseEvents(t, r.stdout, format)
	for _, e := range evs {
		if format == "json" && (e.Namespace != namespace || e.Node != nodeName || e.Container != "app" || (pod != "" && e.Pod != pod)) {
			t.Fatalf("event of another target: %+v", e)
		}
		if e.PID <= 0 || e.Comm == "" || e.Time <= 0 {
			t.Fatalf("event without its task or time: %+v", e)
		}
	}
	if len(evs) == 0 {
		t.Fatalf("no events")
	}
	return evs
}

// noNoise fails for any event that mentions one of the noise's markers.
func noNoise(t *testing.T, evs []wire.Event, markers ...string) {
	t.Helper()
	n := 0
	for _, e := range evs {
		b, _ := json.Marshal(e)
		for _, m := range markers {
			if m != "" && strings.Contains(string(b), m) {
				if n++; n <= 5 {
					t.Errorf("noise (%q) in the trace: %s", m, b)
				}
			}
		}
	}
}

// sessionClean checks that the session whose stderr is given left neither
// a helper pod nor a tracefs instance (other sessions of the test
// namespace may still run).
func sessionClean(t *testing.T, stderr string) {
	t.Helper()
	m := sessionRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Errorf("no session id on stderr")
		return
	}
	list, err := client.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{LabelSelector: "kubectl-trace.dev/session=" + m[1]})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		t.Errorf("helper pod left behind: %s (%s)", p.Name, p.Status.Phase)
	}
	if left := instances(t, stderr); len(left) != 0 {
		t.Errorf("tracefs instances left behind: %v", left)
	}
}

// hookSummary finds the final summary's row for target and hook, ended as
// want, with events when withEvents.
func hookSummary(stderr, target, hook, ended string, withEvents bool) bool {
	for _, line := range strings.Split(stderr, "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && strings.HasSuffix(f[0], target) && f[1] == hook && (f[2] != "0") == withEvents && strings.Contains(line, ended) {
			return true
		}
	}
	return false
}

// textEvent is -o text's line: seconds, [cpu], comm-pid, event, details.
var textEvent = regexp.MustCompile(`^(\d+\.\d{6}) \[(\d{3})\] (.+)-(\d+) ([a-z_]+): (.*)$`)

// parseEvents reads stdout as JSON events or as text lines, whose details
// become Fields.
func parseEvents(t *testing.T, stdout, format string) []wire.Event {
	t.Helper()
	var evs []wire.Event
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var e wire.Event
		if format == "json" {
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("stdout line is not a JSON event: %q: %v", line, err)
			}
		} else {
			m := textEvent.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("stdout line is not a text event: %q", line)
			}
			e.Time, _ = strconv.ParseFloat(m[1], 64)
			e.CPU, _ = strconv.Atoi(m[2])
			e.Comm, e.PID, e.Event = m[3], atoi(m[4]), m[5]
			var err error
			if e.Fields, err = details(m[6]); err != nil {
				t.Fatalf("details of %q: %v", line, err)
			}
		}
		evs = append(evs, e)
	}
	return evs
}

var detailKey = regexp.MustCompile(`^([a-z_]+)=`)
var nextKey = regexp.MustCompile(` [a-z_]+=`)

// details parses key=value pairs separated by blanks; a value is Go-quoted
// or runs to the next " key=" (syscalls' args hold blanks).
func details(s string) (map[string]string, error) {
	out := map[string]string{}
	for s != "" {
		m := detailKey.FindStringSubmatch(s)
		if m == nil {
			return nil, fmt.Errorf("no key=value at %q", s)
		}
		s = s[len(m[0]):]
		var v string
		if strings.HasPrefix(s, `"`) {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, err
			}
			v, _ = strconv.Unquote(q)
			s = s[len(q):]
		} else if i := nextKey.FindStringIndex(s); i != nil {
			v, s = s[:i[0]], s[i[0]:]
		} else {
			v, s = s, ""
		}
		out[m[1]] = v
		s = strings.TrimPrefix(s, " ")
	}
	return out, nil
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1 << 31
	}
	return n
}

// ---- capabilities

// capNumbers are the capabilities hook descriptors ask for.
var capNumbers = map[string]int{
	"BPF": unix.CAP_BPF, "PERFMON": unix.CAP_PERFMON, "SYS_PTRACE": unix.CAP_SYS_PTRACE, "SYS_RESOURCE": unix.CAP_SYS_RESOURCE,
	"SYS_ADMIN": unix.CAP_SYS_ADMIN, "NET_RAW": unix.CAP_NET_RAW, "NET_ADMIN": unix.CAP_NET_ADMIN,
	"SETUID": unix.CAP_SETUID, "SETGID": unix.CAP_SETGID, "KILL": unix.CAP_KILL,
}

// unboundedCaps lists the capabilities d needs that the node's bounding
// set lacks (the tests run on the node, as the tracefs checks assume): the
// container runtime cannot grant them, and the helper fails to start with
// "unable to apply caps: operation not permitted".
func unboundedCaps(hook string) []string {
	d, ok := hooks.Lookup(hook)
	if !ok {
		return nil
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	m := regexp.MustCompile(`(?m)^CapBnd:\s*([0-9a-f]+)$`).FindSubmatch(status)
	if m == nil {
		return nil
	}
	bnd, _ := strconv.ParseUint(string(m[1]), 16, 64)
	var out []string
	for _, c := range d.Needs.Capabilities {
		if n, ok := capNumbers[c]; ok && bnd&(1<<n) == 0 {
			out = append(out, c)
		}
	}
	return out
}

//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var jsonUnmarshal = json.Unmarshal

// method is one way of running the workload: untraced, under a hook of the
// helper, or under a baseline tool.
type method struct {
	name string
	// kind is "counting" (the hook sums in the kernel), "streaming" (an
	// event per call the hook is about), "baseline" or "" (untraced).
	kind string
	new  func(c config) tracer
	// slow methods make fewer calls (strace: a ptrace stop per call).
	slow bool
	// baseline names the bpftrace method that does the same work, which
	// the method is compared with; "" is bpftrace's count.
	baseline string
	// helper: the method runs the helper binary (config.tracer).
	helper bool
}

func helperMethod(name, kind, hook string, args map[string]string) method {
	return method{name: name, kind: kind, helper: true, new: func(c config) tracer {
		return &helper{bin: c.tracer, hook: hook, args: args}
	}}
}

// withBaseTracer follows every helper method with the same method run by
// the helper binary base, so both builds share the rounds.
func withBaseTracer(ms []method, base string) []method {
	var out []method
	for _, m := range ms {
		out = append(out, m)
		if !m.helper {
			continue
		}
		b, newHelper := m, m.new
		b.name += " (base)"
		b.new = func(c config) tracer {
			c.tracer = base
			return newHelper(c)
		}
		out = append(out, b)
	}
	return out
}

var (
	mUntraced = method{name: "untraced", new: func(config) tracer { return untraced{} }}
	mBpftrace = method{name: "bpftrace count (raw_syscalls:sys_enter, @[id] = count())", kind: "baseline",
		new: func(config) tracer { return &bpftraceCount{script: bpftraceCountScript, counts: "@"} }}
	// mBpftraceLatency does what syscall-top's latency mode does: the
	// entry time per thread in a hash, count and summed latency per
	// number on exit.
	mBpftraceLatency = method{name: "bpftrace latency (sys_enter: @s[tid] = nsecs; sys_exit: count, sum per id)", kind: "baseline",
		new: func(config) tracer { return &bpftraceCount{script: bpftraceLatencyScript, counts: "@c"} }}
	mStrace = method{name: "strace -f -c", kind: "baseline", slow: true,
		new: func(config) tracer { return &straceCount{} }}
)

func withBaseline(m, baseline method) method {
	m.baseline = baseline.name
	return m
}

// workload is one overhead table: a load mode and the methods run on it.
type workload struct {
	title   string
	mode    string
	n, slow int64 // calls per run (slow: for slow methods)
	methods []method
}

func overheadWorkloads(quick bool) []workload {
	w := []workload{
		{
			title: "getppid loop: every hook that sees system calls, and controls",
			mode:  "getppid", n: 1_000_000, slow: 50_000,
			methods: []method{
				mUntraced,
				withBaseline(helperMethod("ebpf syscall-top (latency, interval 1s)", "counting", "syscall-top", nil), mBpftraceLatency),
				helperMethod("ebpf syscall-top (count only: latency=false)", "counting", "syscall-top", map[string]string{"latency": "false"}),
				helperMethod("ebpf open", "streaming", "open", nil),
				helperMethod("ebpf tcp", "streaming", "tcp", nil),
				helperMethod("ebpf exec (control: no syscall hook)", "streaming", "exec", nil),
				helperMethod("ftrace syscalls (all)", "streaming", "syscalls", nil),
				helperMethod("ftrace sched (control)", "streaming", "sched", nil),
				mBpftrace,
				mBpftraceLatency,
				mStrace,
			},
		},
		{
			title: "open loop (openat /dev/null + close): one streamed event per call",
			mode:  "open", n: 300_000,
			methods: []method{
				mUntraced,
				helperMethod("ebpf open", "streaming", "open", nil),
				helperMethod("ftrace syscalls (syscalls=openat)", "streaming", "syscalls", map[string]string{"syscalls": "openat"}),
				mBpftrace,
			},
		},
	}
	if quick {
		for i := range w {
			w[i].n /= 10
			w[i].slow /= 5
		}
	}
	return w
}

// run is one measurement.
type run struct {
	// nsPerOp is the workload thread's CPU time per call: what the calls
	// and every probe that ran in them cost, whatever else the shared
	// machine ran meanwhile. wallPerOp is the elapsed time per call.
	nsPerOp, wallPerOp float64
	seen               seen
}

func runOverhead(c config) (string, error) {
	if os.Geteuid() != 0 {
		return "", errors.New("the overhead part needs root (cgroups, namespaces, BPF, tracefs)")
	}
	if _, err := os.Stat(c.tracer); err != nil {
		return "", fmt.Errorf("tracer binary: %w (run make build)", err)
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	var out strings.Builder
	var errs []error
	for _, w := range overheadWorkloads(c.quick) {
		if c.only != "" {
			keep := []method{mUntraced}
			for _, m := range w.methods[1:] {
				for _, o := range strings.Split(c.only, ",") {
					if o != "" && strings.Contains(m.name, o) {
						keep = append(keep, m)
						break
					}
				}
			}
			if len(keep) == 1 {
				continue
			}
			w.methods = keep
		}
		if c.baseTracer != "" {
			w.methods = withBaseTracer(w.methods, c.baseTracer)
		}
		results := make([][]run, len(w.methods))
		for r := 0; r < c.rounds; r++ {
			// Rotate the order every round: no method always runs first,
			// or right after the noisiest one.
			for k := range w.methods {
				i := (k + r) % len(w.methods)
				m := w.methods[i]
				n := w.n
				if m.slow {
					n = w.slow
				}
				res, err := overheadOnce(c, self, w.mode, n, m)
				if err != nil {
					logf("%s / %s round %d: %v", w.mode, m.name, r+1, err)
					errs = append(errs, fmt.Errorf("%s / %s: %w", w.mode, m.name, err))
					continue
				}
				logf("%s round %d %-45s %8.1f ns/call (wall %8.1f)  events %d lost %d lines %d tracer cpu %.2fs %s",
					w.mode, r+1, m.name, res.nsPerOp, res.wallPerOp, res.seen.events, res.seen.lost, res.seen.lines, res.seen.cpu, res.seen.note)
				results[i] = append(results[i], res)
			}
		}
		out.WriteString(overheadTable(w, results, c.rounds))
	}
	return out.String(), errors.Join(errs...)
}

// overheadOnce runs the workload once under m and returns its ns per call.
func overheadOnce(c config, self, mode string, n int64, m method) (run, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fc, err := newFakeContainer()
	if err != nil {
		return run{}, err
	}
	defer fc.remove()

	// The workload: its own mount namespace (the eBPF hooks refuse to
	// trace the node's), moved into the fake container before any tracer
	// resolves it; it starts its loop on a line on stdin.
	w := exec.CommandContext(ctx, self, "load", "-mode", mode, "-n", strconv.FormatInt(n, 10))
	w.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Cloneflags: syscall.CLONE_NEWNS}
	w.Stderr = os.Stderr
	in, err := w.StdinPipe()
	if err != nil {
		return run{}, err
	}
	stdout, err := w.StdoutPipe()
	if err != nil {
		return run{}, err
	}
	if err := w.Start(); err != nil {
		return run{}, err
	}
	defer func() {
		syscall.Kill(-w.Process.Pid, syscall.SIGKILL)
		w.Wait()
	}()
	if err := fc.add(w.Process.Pid); err != nil {
		return run{}, err
	}

	t := m.new(c)
	if err := t.start(ctx, w.Process.Pid, fc); err != nil {
		return run{}, err
	}
	stopped := false
	defer func() {
		if !stopped {
			t.stop()
		}
	}()
	if _, err := in.Write([]byte("go\n")); err != nil {
		return run{}, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return run{}, fmt.Errorf("workload: %w", err)
	}
	var ops, ns, cpu int64
	if _, err := fmt.Sscanf(line, "ops=%d ns=%d cpu=%d", &ops, &ns, &cpu); err != nil || ops == 0 {
		return run{}, fmt.Errorf("workload said %q", line)
	}
	w.Wait()
	stopped = true
	s, err := t.stop()
	if err != nil {
		return run{}, err
	}
	if err := checkCounted(mode, ops, m, s); err != nil {
		return run{}, err
	}
	return run{nsPerOp: float64(cpu) / float64(ops), wallPerOp: float64(ns) / float64(ops), seen: s}, nil
}

// checkCounted makes sure a counting tracer saw the workload's calls: a
// fast number from a tracer that missed them would mean nothing.
func checkCounted(mode string, ops int64, m method, s seen) error {
	if s.counted == nil {
		return nil
	}
	name := map[string]string{"getppid": "getppid", "open": "openat"}[mode]
	if got := s.counted[name]; got < uint64(ops) {
		return fmt.Errorf("%s counted %d %s calls of the %d made (counted: %v)", m.name, got, name, ops, s.counted)
	}
	return nil
}

func overheadTable(w workload, results [][]run, rounds int) string {
	base := samples(nil)
	for _, r := range results[0] {
		base = append(base, r.nsPerOp)
	}
	baseMed := base.median()
	// What each bpftrace baseline adds, by name.
	bpfAdded := map[string]float64{}
	for i, m := range w.methods {
		if m.kind == "baseline" && strings.HasPrefix(m.name, "bpftrace") && len(results[i]) > 0 {
			bpfAdded[m.name] = nsSamples(results[i]).median() - baseMed
		}
	}
	var rows [][]string
	var verdicts []string
	for i, m := range w.methods {
		ns := nsSamples(results[i])
		if len(ns) == 0 {
			rows = append(rows, []string{m.name, "failed", "", "", "", "", "", "", ""})
			continue
		}
		med := ns.median()
		added := med - baseMed
		// The ratio of each round to the untraced run of the same round:
		// slow drifts of the machine's load cancel out.
		var ratios samples
		for k, r := range results[i] {
			if k < len(base) {
				ratios = append(ratios, r.nsPerOp/base[k])
			}
		}
		baseline := m.baseline
		if baseline == "" {
			baseline = mBpftrace.name
		}
		if _, ok := bpfAdded[m.name]; ok {
			baseline = m.name
		}
		baseAdded := bpfAdded[baseline]
		vsBpf := "-"
		if m.kind != "" && baseAdded > 0 {
			vsBpf = fmt.Sprintf("%.2f", added/baseAdded)
			if baseline != mBpftrace.name {
				vsBpf += " (" + shortName(baseline) + ")"
			}
		}
		var cpu, ev, wall samples
		var lost uint64
		for _, r := range results[i] {
			cpu = append(cpu, r.seen.cpu)
			wall = append(wall, r.wallPerOp)
			ev = append(ev, float64(r.seen.events))
			lost = max(lost, r.seen.lost)
		}
		events := "-"
		if m.kind != "" {
			events = fmt.Sprintf("%.0f / %d", ev.median(), lost)
		}
		rows = append(rows, []string{m.name, fmt.Sprintf("%.0f", med), ns.spread("%.0f"),
			fmt.Sprintf("%+.0f", added), fmt.Sprintf("%.2f (%s)", ratios.median(), ratios.spread("%.2f")), vsBpf,
			fmt.Sprintf("%.0f", wall.median()), events, fmt.Sprintf("%.2f", cpu.median())})
		if baseAdded > 0 {
			switch m.kind {
			case "counting":
				verdicts = append(verdicts, verdict(m.name+": adds at most half of "+shortName(baseline)+"'s overhead", added, 0.5*baseAdded))
			case "streaming":
				verdicts = append(verdicts, verdict(m.name+": adds less than bpftrace counting", added, baseAdded))
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n### Overhead: %s\n\n", w.title)
	calls := fmt.Sprintf("%d calls a run", w.n)
	if w.slow > 0 {
		calls += fmt.Sprintf(" (%d for strace)", w.slow)
	}
	fmt.Fprintf(&b, "%d interleaved rounds; %s; ns/call = the workload thread's CPU time (user+system) per call, timed inside the workload, median and min–max; wall = elapsed ns per call (median), inflated by whatever else runs; ratio = median of the per-round ratios to the untraced run of the same round (min–max); \"vs bpftrace\" = added ns / the added ns of the bpftrace baseline doing the same work (bpftrace count unless named); events = the tracer's events (median) / the most lost in a run; CPU = the tracer's own user+system seconds a run.\n\n",
		rounds, calls)
	b.WriteString(table([]string{"method", "ns/call", "min–max", "added ns", "ratio to untraced", "vs bpftrace", "wall ns/call", "events / lost", "tracer CPU s"}, rows))
	if len(verdicts) > 0 {
		b.WriteString("\n")
		for _, v := range verdicts {
			b.WriteString("- " + v + "\n")
		}
	}
	return b.String()
}

// shortName is a method's name without its parenthesis: "bpftrace latency".
func shortName(name string) string {
	n, _, _ := strings.Cut(name, " (")
	return n
}

func nsSamples(rs []run) samples {
	var s samples
	for _, r := range rs {
		s = append(s, r.nsPerOp)
	}
	return s
}

// verdict says whether got <= limit.
func verdict(what string, got, limit float64) string {
	ok := "MET"
	if got > limit {
		ok = "MISSED"
	}
	return fmt.Sprintf("%s: %s (+%.0f ns against a limit of %.0f ns)", what, ok, got, limit)
}

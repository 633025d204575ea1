package ftrace

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/ktrace-dev/kubectl-trace/hooks"
)

// plan is how one hook uses its instance: what it enables, whether the
// instance is scoped with set_event_pid, and the processor that turns its
// lines into events.
type plan struct {
	events []string
	// filtered scopes the instance to the targets' tasks with
	// set_event_pid and options/event-fork. Hooks whose events are
	// recorded in another task's context (a completion interrupt, a
	// signal an outsider sends) read an unscoped instance and keep only
	// what the tracker attributes to a target.
	filtered bool
	// functions, when not empty, turns on the function tracer for these
	// functions (set_ftrace_filter), scoped with set_ftrace_pid and
	// options/function-fork.
	functions []string
	proc      processor
	// raw prefers the binary reader (Options.Reader).
	raw bool
}

// kernelInfo is what a plan may need to know about the running kernel.
type kernelInfo interface {
	// syscalls returns the names of the syscalls with both a
	// sys_enter_<name> and a sys_exit_<name> event.
	syscalls() ([]string, error)
	// filterFunctions returns the functions the function tracer can trace
	// (available_filter_functions, without module names).
	filterFunctions() ([]string, error)
}

// Largest number of functions a funcgraph session traces: each one costs a
// patched call site and an event per call.
const maxFunctions = 64

// newPlan decides how opts.Hook runs. A hook without a plan of its own
// (sched, or none named) enables opts.Events and shows what the tracker
// attributes, with the kernel's details.
func newPlan(opts Options, tr *tracker, k kernelInfo) (*plan, error) {
	args := opts.Args
	if d, ok := hooks.Lookup(opts.Hook); ok && len(d.Params) > 0 {
		// The plugin resolved them; check again, the helper is the last
		// line before the kernel.
		var err error
		if args, err = d.ResolveArgs(opts.Args); err != nil {
			return nil, err
		}
	}
	tracking := func(events ...string) []string { return append(events, trackingEvents...) }
	switch opts.Hook {
	case "syscalls":
		events, err := syscallEvents(args["syscalls"], k)
		if err != nil {
			return nil, err
		}
		tr.reapAfter, tr.trustCurrent = reapAfter, true
		return &plan{events: tracking(events...), filtered: true, raw: true, proc: newSyscalls(tr, opts.Fields)}, nil
	case "signals":
		tr.reapAfter = reapAfter
		return &plan{events: tracking("signal:signal_generate", "signal:signal_deliver"),
			proc: &signals{tr: tr, fields: opts.Fields}}, nil
	case "block":
		tr.reapAfter = reapAfter
		dev := strings.Replace(args["dev"], ":", ",", 1)
		return &plan{events: tracking("block:block_rq_insert", "block:block_rq_issue", "block:block_rq_complete"),
			proc: newBlock(tr, opts.Fields, dev)}, nil
	case "pagefaults":
		tr.reapAfter, tr.trustCurrent = reapAfter, true
		events := []string{"exceptions:page_fault_user"}
		if args["kernel"] == "true" {
			events = append(events, "exceptions:page_fault_kernel")
		}
		return &plan{events: tracking(events...), filtered: true,
			proc: &currentTask{tr: tr, fields: opts.Fields, extra: pageFaultFields}}, nil
	case "funcgraph":
		fns, err := functionFilter(args["functions"], k)
		if err != nil {
			return nil, err
		}
		tr.reapAfter, tr.trustCurrent = reapAfter, true
		return &plan{events: tracking(), filtered: true, functions: fns, proc: &functions{tr: tr, fields: opts.Fields}}, nil
	}
	if len(opts.Events) == 0 {
		return nil, fmt.Errorf("hook %q: no events to enable", opts.Hook)
	}
	return &plan{events: opts.Events, filtered: true, raw: true, proc: &passthrough{tr: tr, fields: opts.Fields}}, nil
}

// syscallEvents returns the events of a syscalls= list ("all", or names
// without the sys_ prefix), checked against the kernel's.
func syscallEvents(list string, k kernelInfo) ([]string, error) {
	if list == "" || list == "all" {
		// Both events of every syscall, in one write (set_event takes no
		// globs other than a whole system).
		return []string{"syscalls:*"}, nil
	}
	known, err := k.syscalls()
	if err != nil {
		return nil, fmt.Errorf("listing the kernel's syscall events: %w: the kernel needs CONFIG_FTRACE_SYSCALLS", err)
	}
	have := make(map[string]bool, len(known))
	for _, n := range known {
		have[n] = true
	}
	var events, unknown []string
	seen := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		if !have[n] {
			unknown = append(unknown, n)
			continue
		}
		events = append(events, "syscalls:sys_enter_"+n, "syscalls:sys_exit_"+n)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("syscalls=%s: this kernel has no syscall event for %s (the names are those of events/syscalls/sys_enter_<name> in tracefs: %d syscalls, such as %s)",
			list, strings.Join(unknown, ", "), len(known), strings.Join(sample(known, "openat", "read", "write", "execve"), ", "))
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("syscalls=%q names no syscall", list)
	}
	return events, nil
}

// sample returns those of want that are in have, for a message.
func sample(have []string, want ...string) []string {
	var out []string
	for _, w := range want {
		for _, h := range have {
			if h == w {
				out = append(out, w)
				break
			}
		}
	}
	return out
}

// functionFilter checks a functions= list (names, or globs with '*')
// against the kernel's available_filter_functions and returns the
// set_ftrace_filter entries.
func functionFilter(list string, k kernelInfo) ([]string, error) {
	var want []string
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want = append(want, n)
		}
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("functions=%q names no function", list)
	}
	avail, err := k.filterFunctions()
	if err != nil {
		return nil, fmt.Errorf("listing the functions the kernel can trace: %w: the kernel needs CONFIG_FUNCTION_TRACER and must allow function tracing (a kernel in lockdown may refuse it)", err)
	}
	have := make(map[string]bool, len(avail))
	for _, f := range avail {
		have[f] = true
	}
	total := 0
	var errs []string
	for _, w := range want {
		if !strings.Contains(w, "*") {
			if !have[w] {
				errs = append(errs, fmt.Sprintf("%s is not a function the kernel can trace (see available_filter_functions)", w))
			}
			total++
			continue
		}
		n := 0
		for _, f := range avail {
			if ok, _ := path.Match(w, f); ok {
				n++
			}
		}
		if n == 0 {
			errs = append(errs, fmt.Sprintf("%s matches no function the kernel can trace", w))
		}
		total += n
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("functions=%s: %s", list, strings.Join(errs, "; "))
	}
	if total > maxFunctions {
		return nil, fmt.Errorf("functions=%s selects %d functions, more than %d: name fewer", list, total, maxFunctions)
	}
	sort.Strings(want)
	return want, nil
}

package ftrace

import (
	"fmt"
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
	// raw prefers the binary reader (Runtime.Reader).
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

// planInput is what a hook's plan is made from.
type planInput struct {
	// hook is the descriptor: its Events are what the plan enables (the
	// plan picks from them and fills in their <name> for its arguments,
	// never adds one of its own).
	hook hooks.Descriptor
	// args are the hook's parameters, checked, with their defaults.
	args   map[string]string
	fields bool
	tr     *tracker
	k      kernelInfo
}

// plans are the hooks of kind ftrace, each in a file of its own: the
// descriptor in package hooks says what the hook is, the plan how it runs.
var plans = map[string]func(in planInput) (*plan, error){
	"sched":      schedPlan,
	"syscalls":   syscallsPlan,
	"signals":    signalsPlan,
	"block":      blockPlan,
	"pagefaults": pagefaultsPlan,
	"funcgraph":  funcgraphPlan,
}

// newPlan decides how hook runs with args. Everything the parameters need
// from the kernel is checked here, before anything is made.
func newPlan(hook hooks.Descriptor, args map[string]string, fields bool, tr *tracker, k kernelInfo) (*plan, error) {
	planOf, ok := plans[hook.Name]
	if !ok {
		return nil, fmt.Errorf("hook %q is not an ftrace hook of this tracer: use the tracer image of the plugin's release", hook.Name)
	}
	if len(hook.Params) > 0 {
		// The runner resolved them; check again, the helper is the last
		// line before the kernel.
		var err error
		if args, err = hook.ResolveArgs(args); err != nil {
			return nil, err
		}
	}
	return planOf(planInput{hook: hook, args: args, fields: fields, tr: tr, k: k})
}

// events returns the descriptor's events that keep says to enable.
func (in planInput) events(keep func(event string) bool) []string {
	var out []string
	for _, e := range in.hook.Events {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// all keeps every event.
func all(string) bool { return true }

// tracking keeps the events that follow the targets' tasks.
func tracking(e string) bool { _, name, _ := strings.Cut(e, ":"); return isTracking(name) }

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

package ftrace

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// funcgraph: the function tracer for the functions named, scoped with
// set_ftrace_pid and options/function-fork; the tracer is put back to nop
// and its filters cleared on every exit path (Session.Close). Its events
// are the descriptor's tracking events only: the tracer's lines are not
// an event one enables.
func funcgraphPlan(in planInput) (*plan, error) {
	fns, err := functionFilter(in.args["functions"], in.k)
	if err != nil {
		return nil, err
	}
	in.tr.reapAfter, in.tr.trustCurrent = reapAfter, true
	return &plan{events: in.events(all), filtered: true, functions: fns, proc: &functions{tr: in.tr, fields: in.fields}}, nil
}

// Largest number of functions a funcgraph session traces: each one costs a
// patched call site and an event per call.
const maxFunctions = 64

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

// functions shows the function tracer's lines ("vfs_read <-ksys_read") of
// the target's tasks as "function" events.
type functions struct {
	tr     *tracker
	fields bool
	rec    record
}

func (p *functions) line(l *Line, out outFunc) error {
	if isTracking(l.Event) {
		p.tr.attribute(l)
		return nil
	}
	if l.Event != "function" {
		return nil
	}
	tr, ok := p.tr.running(l)
	if !ok {
		p.tr.dropped()
		return nil
	}
	fn, caller, _ := strings.Cut(l.Details, " <-")
	p.rec = record{task: tr, time: l.Time, cpu: l.CPU, event: "function", details: "func=" + fn + " caller=" + caller}
	if p.fields {
		p.rec.fields = []field{{"func", fn}, {"caller", caller}}
	}
	return out(&p.rec)
}

func (p *functions) end(outFunc) error { return nil }

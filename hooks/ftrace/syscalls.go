package ftrace

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// syscalls: sys_enter_<name> and sys_exit_<name> paired per thread, one
// event per call with its return value and duration, in an instance scoped
// to the targets' tasks.
func syscallsPlan(in planInput) (*plan, error) {
	events, err := syscallEvents(in, in.args["syscalls"])
	if err != nil {
		return nil, err
	}
	in.tr.reapAfter, in.tr.trustCurrent = reapAfter, true
	return &plan{events: events, filtered: true, raw: true, proc: newSyscalls(in.tr, in.fields)}, nil
}

// syscallEvents returns the events of a syscalls= list ("all", or names
// without the sys_ prefix), checked against the kernel's: the descriptor's
// events with "<name>" filled in for each name, then its tracking events.
func syscallEvents(in planInput, list string) ([]string, error) {
	templates := in.events(func(e string) bool { return strings.Contains(e, nameHole) })
	if len(templates) == 0 {
		return nil, fmt.Errorf("hook %q lists no event with %s to fill in", in.hook.Name, nameHole)
	}
	names, err := syscallNames(list, in.k)
	if err != nil {
		return nil, err
	}
	var events []string
	if names == nil {
		// Every event of their systems, in one write each (set_event takes
		// no globs other than a whole system).
		for _, t := range templates {
			if e := systemOf(t) + ":*"; !slices.Contains(events, e) {
				events = append(events, e)
			}
		}
	}
	for _, n := range names {
		for _, t := range templates {
			events = append(events, strings.ReplaceAll(t, nameHole, n))
		}
	}
	return append(events, in.events(tracking)...), nil
}

// nameHole is where a descriptor's event takes a syscall's name.
const nameHole = "<name>"

// systemOf returns the system of an event, "syscalls" of
// "syscalls:sys_enter_read".
func systemOf(event string) string {
	system, _, _ := strings.Cut(event, ":")
	return system
}

// syscallNames returns the names of a syscalls= list, checked against the
// kernel's, in order and once each; nil for all of them.
func syscallNames(list string, k kernelInfo) ([]string, error) {
	if list == "" || list == "all" {
		return nil, nil
	}
	known, err := k.syscalls()
	if err != nil {
		return nil, fmt.Errorf("listing the kernel's syscall events: %w: the kernel needs CONFIG_FTRACE_SYSCALLS", err)
	}
	have := make(map[string]bool, len(known))
	for _, n := range known {
		have[n] = true
	}
	var names, unknown []string
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
		names = append(names, n)
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("syscalls=%s: this kernel has no syscall event for %s (the names are those of events/syscalls/sys_enter_<name> in tracefs: %d syscalls, such as %s)",
			list, strings.Join(unknown, ", "), len(known), strings.Join(sample(known, "openat", "read", "write", "execve"), ", "))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("syscalls=%q names no syscall", list)
	}
	return names, nil
}

// syscalls pairs each sys_enter_<name> with the sys_exit_<name> of the
// same thread and shows one "syscall" event per completed call, at the
// time it entered, with its return value and duration.
type syscalls struct {
	tr      *tracker
	fields  bool
	pending map[int]*call
	free    []*call
	rec     record
	det     []byte
	fs      []field
	// unpaired counts exits without their entry (entered before the
	// trace began, or the entry was lost) and entries replaced before
	// their exit (the exit was lost).
	unpaired uint64
}

type call struct {
	name string
	args string
	time float64
	cpu  int
}

func newSyscalls(tr *tracker, fields bool) *syscalls {
	return &syscalls{tr: tr, fields: fields, pending: make(map[int]*call)}
}

// noReturn are the syscalls that never reach sys_exit when they succeed.
func noReturn(name string) bool { return name == "exit" || name == "exit_group" }

func (p *syscalls) line(l *Line, out outFunc) error {
	if isTracking(l.Event) {
		p.tr.attribute(l)
		if l.Event == "sched_process_exit" {
			// A thread that exits while a call is pending (killed in a
			// blocking read) never returns from it.
			if c := p.pending[l.TaskPID]; c != nil {
				if tr, ok := p.tr.lookup(l.TaskPID, ""); ok {
					if err := p.emit(tr, c, "", l.Time, true, out); err != nil {
						return err
					}
				}
				p.release(l.TaskPID)
			}
		}
		return nil
	}
	if name, ok := strings.CutPrefix(l.Event, "sys_enter_"); ok {
		tr, ok := p.tr.running(l)
		if !ok {
			p.tr.dropped()
			return nil
		}
		if noReturn(name) {
			return p.emit(tr, &call{name: name, args: l.Details, time: l.Time, cpu: l.CPU}, "", l.Time, false, out)
		}
		c := p.pending[l.TaskPID]
		if c != nil {
			p.unpaired++
		} else if n := len(p.free); n > 0 {
			c, p.free = p.free[n-1], p.free[:n-1]
		} else {
			c = new(call)
		}
		*c = call{name: name, args: l.Details, time: l.Time, cpu: l.CPU}
		p.pending[l.TaskPID] = c
		return nil
	}
	if name, ok := strings.CutPrefix(l.Event, "sys_exit_"); ok {
		tr, ok := p.tr.running(l)
		if !ok {
			p.tr.dropped()
			return nil
		}
		c := p.pending[l.TaskPID]
		if c == nil || c.name != name {
			// Entered before the trace began (or the entry was lost):
			// no duration, no arguments.
			p.unpaired++
			err := p.emit(tr, &call{name: name, time: -1, cpu: l.CPU}, l.Details, l.Time, false, out)
			if c != nil {
				p.release(l.TaskPID)
			}
			return err
		}
		err := p.emit(tr, c, l.Details, l.Time, false, out)
		p.release(l.TaskPID)
		return err
	}
	// Another event in this instance: not ours to show.
	return nil
}

func (p *syscalls) release(tid int) {
	if c := p.pending[tid]; c != nil {
		delete(p.pending, tid)
		p.free = append(p.free, c)
	}
}

// emit shows one call. ret is the kernel's hex return value, "" when the
// call did not return; c.time < 0 when its entry was not seen (the event
// then has the exit's time).
func (p *syscalls) emit(tr traced, c *call, ret string, now float64, unfinished bool, out outFunc) error {
	p.rec = record{task: tr, time: c.time, cpu: c.cpu, event: "syscall"}
	if c.time < 0 {
		p.rec.time = now
	}
	d := append(p.det[:0], "name="...)
	d = append(d, c.name...)
	var retStr, errno, dur string
	if ret != "" {
		retStr, errno = decodeRet(ret)
		d = append(d, " ret="...)
		d = append(d, retStr...)
		if errno != "" {
			d = append(d, " errno="...)
			d = append(d, errno...)
		}
	}
	if c.time >= 0 && !unfinished && ret != "" {
		ns := int64((now-c.time)*1e9 + 0.5)
		n := len(d)
		d = append(d, " duration_ns="...)
		d = strconv.AppendInt(d, ns, 10)
		dur = string(d[n+len(" duration_ns="):])
	}
	if unfinished {
		d = append(d, " unfinished=true"...)
	}
	if c.time >= 0 {
		d = append(d, " args="...)
		d = append(d, c.args...)
	}
	p.det = d
	p.rec.details = string(d)
	if p.fields {
		fs := append(p.fs[:0], field{"name", c.name})
		if retStr != "" {
			fs = append(fs, field{"ret", retStr})
		}
		if errno != "" {
			fs = append(fs, field{"errno", errno})
		}
		if dur != "" {
			fs = append(fs, field{"duration_ns", dur})
		}
		if unfinished {
			fs = append(fs, field{"unfinished", "true"})
		}
		if c.time >= 0 {
			fs = append(fs, field{"args", c.args})
		}
		p.rec.fields, p.fs = fs, fs
	}
	return out(&p.rec)
}

// end shows the calls still blocked when the trace stopped, oldest first.
func (p *syscalls) end(out outFunc) error {
	tids := make([]int, 0, len(p.pending))
	for tid := range p.pending {
		tids = append(tids, tid)
	}
	sort.Slice(tids, func(i, j int) bool { return p.pending[tids[i]].time < p.pending[tids[j]].time })
	for _, tid := range tids {
		c := p.pending[tid]
		tr, ok := p.tr.lookup(tid, "")
		if !ok {
			continue
		}
		if err := p.emit(tr, c, "", c.time, true, out); err != nil {
			return err
		}
	}
	clear(p.pending)
	return nil
}

// decodeRet turns the kernel's hex return value into a signed decimal
// (hex above 4 GiB, for addresses), and an error number into its name.
func decodeRet(hex string) (ret, errno string) {
	u, err := strconv.ParseUint(strings.TrimPrefix(hex, "0x"), 16, 64)
	if err != nil {
		return hex, ""
	}
	v := int64(u)
	switch {
	case v < 0 && v >= -4095:
		return strconv.FormatInt(v, 10), errnoName(int(-v))
	case v >= 1<<32 || v < 0:
		return "0x" + strconv.FormatUint(u, 16), ""
	}
	return strconv.FormatInt(v, 10), ""
}

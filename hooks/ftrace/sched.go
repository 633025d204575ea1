package ftrace

// sched: the scheduler events as the kernel prints them, in an instance
// scoped to the targets' tasks. The kernel records sched_switch and
// sched_wakeup when EITHER task is in the PID filter, and its task column
// may be stale or "<...>", so the tracker attributes each event to the
// target's side.
func schedPlan(in planInput) (*plan, error) {
	return &plan{events: in.events(all), filtered: true, raw: true, proc: &passthrough{tr: in.tr, fields: in.fields}}, nil
}

// passthrough shows every event the tracker attributes, with the kernel's
// own details: the sched hook.
type passthrough struct {
	tr     *tracker
	fields bool
	rec    record
}

func (p *passthrough) line(l *Line, out outFunc) error {
	tr, ok := p.tr.attribute(l)
	if !ok {
		return nil
	}
	p.rec = record{task: tr, time: l.Time, cpu: l.CPU, event: l.Event, details: l.Details}
	return out(&p.rec)
}

func (p *passthrough) end(outFunc) error { return nil }

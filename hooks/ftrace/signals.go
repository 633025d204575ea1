package ftrace

import "strconv"

// signals: signal_generate (recorded in the sender's context) and
// signal_deliver, in an instance without a PID filter: a signal an outsider
// sends the target is recorded in the outsider's context, which the filter
// would drop. The tracker, fed the node's forks, execs and exits, keeps
// what is the target's.
func signalsPlan(in planInput) (*plan, error) {
	in.tr.reapAfter = reapAfter
	return &plan{events: in.events(all), proc: &signals{tr: in.tr, fields: in.fields}}, nil
}

// signals shows signal_generate (recorded in the sender's context) when the
// receiver or the sender is a target's task, and signal_deliver (recorded in
// the receiver's context) when the receiver is. It reads an instance without
// a PID filter: a signal an outsider sends to the target is recorded in the
// outsider's context, which set_event_pid would drop.
type signals struct {
	tr     *tracker
	fields bool
	buf    []field
	rec    record
	det    []byte
}

func (p *signals) line(l *Line, out outFunc) error {
	if isTracking(l.Event) {
		p.tr.attribute(l)
		return nil
	}
	p.buf = scanFields(p.buf[:0], l.Details)
	get := func(k string) string {
		for _, f := range p.buf {
			if f.key == k {
				return f.value
			}
		}
		return ""
	}
	sig, _ := strconv.Atoi(get("sig"))
	switch l.Event {
	case "signal_generate":
		receiver, _ := strconv.Atoi(get("pid"))
		rcomm := get("comm")
		sender, senderOK := p.tr.running(l)
		scomm := l.Task
		if senderOK && sender.comm != "" {
			scomm = sender.comm
		}
		tr, ok := p.tr.lookup(receiver, rcomm)
		if !ok {
			tr, ok = sender, senderOK
		}
		if !ok {
			p.tr.dropped()
			return nil
		}
		res, _ := strconv.Atoi(get("res"))
		fs := []field{
			{"sig", get("sig")}, {"signame", signalName(sig)},
			{"sender_pid", strconv.Itoa(l.TaskPID)}, {"sender_comm", scomm},
			{"receiver_pid", get("pid")}, {"receiver_comm", rcomm},
			{"group", get("grp")}, {"result", signalResult(res)},
			{"code", get("code")}, {"errno", get("errno")},
		}
		return p.emit(tr, l, fs, out)
	case "signal_deliver":
		tr, ok := p.tr.running(l)
		if !ok {
			p.tr.dropped()
			return nil
		}
		fs := []field{
			{"sig", get("sig")}, {"signame", signalName(sig)},
			{"code", get("code")}, {"errno", get("errno")},
			{"sa_handler", get("sa_handler")}, {"sa_flags", get("sa_flags")},
		}
		return p.emit(tr, l, fs, out)
	}
	return nil
}

func (p *signals) emit(tr traced, l *Line, fs []field, out outFunc) error {
	p.rec = record{task: tr, time: l.Time, cpu: l.CPU, event: l.Event}
	p.det = appendFields(p.det[:0], fs)
	p.rec.details = string(p.det)
	if p.fields {
		p.rec.fields = fs
	}
	return out(&p.rec)
}

func (p *signals) end(outFunc) error { return nil }

// signalResult names enum trace_signal_result.
func signalResult(res int) string {
	switch res {
	case 0:
		return "delivered"
	case 1:
		return "ignored"
	case 2:
		return "already_pending"
	case 3:
		return "overflow_fail"
	case 4:
		return "lose_info"
	}
	return strconv.Itoa(res)
}

package ftrace

import (
	"sort"
	"strconv"
	"strings"
)

// record is one event a processor hands on: the traced task, when, and
// what. details is what text output prints; fields, when the session wants
// them (JSON), become wire.Event.Fields (nil means Fields(details)).
type record struct {
	task    traced
	time    float64
	cpu     int
	event   string
	details string
	fields  []field
}

// outFunc receives records; rec is reused after the call.
type outFunc func(rec *record) error

// processor turns the lines of one hook's instance into records. It is
// plain Go, fed by the Session (or a test) one line at a time, in the
// kernel's order.
type processor interface {
	// line handles one line.
	line(l *Line, out outFunc) error
	// end is called once after the last line: records of work that had
	// begun but not finished (a syscall still blocked) go out here.
	end(out outFunc) error
}

// trackingEvents are the events every hook other than sched enables to
// follow the targets' tasks (forks, execs that rename, exits); they are
// consumed by the tracker and never shown.
var trackingEvents = []string{"sched:sched_process_fork", "sched:sched_process_exec", "sched:sched_process_exit"}

// reapAfter is how long, in seconds of trace time, a hook without
// sched_switch keeps an exited task: events it records after
// sched_process_exit (the SIGCHLD to its parent, the last page faults of
// exit_mm) still find it.
const reapAfter = 1.0

func isTracking(event string) bool {
	switch event {
	case "sched_process_fork", "sched_process_exec", "sched_process_exit":
		return true
	}
	return false
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

// currentTask shows the events recorded in the context of a target's
// task (page faults), with the kernel's details followed by the fields
// extra adds. Tracking events update the tracker only.
type currentTask struct {
	tr     *tracker
	fields bool
	// extra appends fields to fs, the event's own.
	extra func(l *Line, fs []field) []field
	rec   record
	buf   []field
	det   []byte
}

func (p *currentTask) line(l *Line, out outFunc) error {
	if isTracking(l.Event) {
		p.tr.attribute(l)
		return nil
	}
	tr, ok := p.tr.running(l)
	if !ok {
		p.tr.dropped()
		return nil
	}
	p.rec = record{task: tr, time: l.Time, cpu: l.CPU, event: l.Event, details: l.Details}
	if p.extra != nil {
		p.buf = scanFields(p.buf[:0], l.Details)
		n := len(p.buf)
		p.buf = p.extra(l, p.buf)
		p.det = append(p.det[:0], l.Details...)
		if len(p.buf) > n {
			p.det = append(p.det, ' ')
			p.det = appendFields(p.det, p.buf[n:])
		}
		p.rec.details = string(p.det)
		if p.fields {
			p.rec.fields = p.buf
		}
	}
	return out(&p.rec)
}

func (p *currentTask) end(outFunc) error { return nil }

// pageFaultFields adds what the x86 error code means to a page fault's
// fields: access (read, write or exec) and cause (not-present or
// protection).
func pageFaultFields(_ *Line, fs []field) []field {
	var code uint64
	for _, f := range fs {
		if f.key == "error_code" {
			code, _ = strconv.ParseUint(strings.TrimPrefix(f.value, "0x"), 16, 64)
		}
	}
	access := "read"
	switch {
	case code&0x10 != 0:
		access = "exec"
	case code&0x2 != 0:
		access = "write"
	}
	cause := "not-present"
	if code&0x1 != 0 {
		cause = "protection"
	}
	return append(fs, field{"access", access}, field{"cause", cause})
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

// appendFields writes fields as "k=v k=v", the shape Fields parses back.
func appendFields(b []byte, fs []field) []byte {
	for i, f := range fs {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, f.key...)
		b = append(b, '=')
		b = append(b, f.value...)
	}
	return b
}

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

// block shows one "block_io" event per request a target's task inserted
// or issued, when the device completes it: completions run in interrupt
// context, in whatever task was running, so the instance has no PID filter
// and the request is matched by device and sector.
type block struct {
	tr       *tracker
	fields   bool
	dev      string // only this device ("254,0"), or every one
	inflight map[rqKey]*request
	rec      record
	det      []byte
}

type rqKey struct {
	dev    string
	sector uint64
}

type request struct {
	task   traced
	insert float64 // 0 when not seen
	issue  float64 // 0 when not yet issued
	cpu    int
	bytes  string
	rwbs   string
}

// maxInflight bounds the requests waiting for their completion; a
// completion that was lost would otherwise keep its request forever.
const maxInflight = 1 << 16

func newBlock(tr *tracker, fields bool, dev string) *block {
	return &block{tr: tr, fields: fields, dev: dev, inflight: make(map[rqKey]*request)}
}

// rq is a parsed block_rq_* line:
//
//	block_rq_insert/issue: 254,0 WS 4096 () 320489264 + 8 be,0,4 [dd]
//	block_rq_complete:     254,0 WS () 320489264 + 8 be,0,4 [0]
type rq struct {
	dev, rwbs, bytes, nr, err string
	sector                    uint64
}

func parseRq(details string, complete bool) (rq, bool) {
	var r rq
	f := strings.Fields(details)
	// The command in parentheses may be empty "()" or hold spaces: find
	// the "+" that follows the sector.
	plus := -1
	for i, s := range f {
		if s == "+" {
			plus = i
		}
	}
	if len(f) < 4 || plus < 2 || plus+1 >= len(f) {
		return r, false
	}
	r.dev, r.rwbs = f[0], f[1]
	if !complete {
		r.bytes = f[2]
	}
	var err error
	if r.sector, err = strconv.ParseUint(f[plus-1], 10, 64); err != nil {
		return r, false
	}
	r.nr = f[plus+1]
	if complete {
		r.err = strings.Trim(f[len(f)-1], "[]")
	}
	return r, true
}

func (p *block) line(l *Line, out outFunc) error {
	if isTracking(l.Event) {
		p.tr.attribute(l)
		return nil
	}
	switch l.Event {
	case "block_rq_insert", "block_rq_issue":
		r, ok := parseRq(l.Details, false)
		if !ok || p.dev != "" && r.dev != p.dev {
			return nil
		}
		k := rqKey{r.dev, r.sector}
		req := p.inflight[k]
		tr, mine := p.tr.running(l)
		if req == nil {
			if !mine {
				// Neither inserted nor issued by a target's task.
				p.tr.dropped()
				return nil
			}
			if len(p.inflight) >= maxInflight {
				p.prune()
			}
			req = &request{task: tr, cpu: l.CPU}
			p.inflight[k] = req
		}
		req.bytes, req.rwbs = r.bytes, r.rwbs
		if l.Event == "block_rq_insert" {
			req.insert = l.Time
		} else {
			req.issue, req.cpu = l.Time, l.CPU
		}
	case "block_rq_complete":
		r, ok := parseRq(l.Details, true)
		if !ok {
			return nil
		}
		k := rqKey{r.dev, r.sector}
		req := p.inflight[k]
		if req == nil || req.issue == 0 {
			return nil
		}
		delete(p.inflight, k)
		return p.emit(req, r, l.Time, out)
	}
	return nil
}

// prune drops the older half of the requests in flight.
func (p *block) prune() {
	times := make([]float64, 0, len(p.inflight))
	for _, r := range p.inflight {
		times = append(times, r.issue)
	}
	sort.Float64s(times)
	cut := times[len(times)/2]
	for k, r := range p.inflight {
		if r.issue <= cut {
			delete(p.inflight, k)
		}
	}
}

func (p *block) emit(req *request, r rq, done float64, out outFunc) error {
	p.rec = record{task: req.task, time: req.issue, cpu: req.cpu, event: "block_io"}
	sector := strconv.FormatUint(r.sector, 10)
	bytes := req.bytes
	if bytes == "" || bytes == "0" {
		if n, err := strconv.ParseUint(r.nr, 10, 64); err == nil {
			bytes = strconv.FormatUint(n*512, 10)
		}
	}
	fs := []field{
		{"dev", r.dev}, {"rwbs", req.rwbs}, {"sector", sector}, {"nr_sector", r.nr}, {"bytes", bytes},
		{"latency_ns", strconv.FormatInt(int64((done-req.issue)*1e9+0.5), 10)},
	}
	if req.insert > 0 && req.insert <= req.issue {
		fs = append(fs, field{"queue_ns", strconv.FormatInt(int64((req.issue-req.insert)*1e9+0.5), 10)})
	}
	fs = append(fs, field{"error", r.err})
	p.det = appendFields(p.det[:0], fs)
	p.rec.details = string(p.det)
	if p.fields {
		p.rec.fields = fs
	}
	return out(&p.rec)
}

func (p *block) end(outFunc) error { return nil }

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

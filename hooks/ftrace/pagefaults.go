package ftrace

import (
	"strconv"
	"strings"
)

// pagefaults: exceptions:page_fault_user (and page_fault_kernel with
// kernel=true), recorded in the target's context, in an instance scoped to
// the targets' tasks.
func pagefaultsPlan(in planInput) (*plan, error) {
	in.tr.reapAfter, in.tr.trustCurrent = reapAfter, true
	kernel := in.args["kernel"] == "true"
	events := in.events(func(e string) bool { return kernel || !strings.HasSuffix(e, ":page_fault_kernel") })
	return &plan{events: events, filtered: true,
		proc: &currentTask{tr: in.tr, fields: in.fields, extra: pageFaultFields}}, nil
}

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

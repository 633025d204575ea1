package ftrace

import (
	"sort"
	"strconv"
	"strings"
)

// block: one event per completed request with its latency, in an instance
// without a PID filter: a request completes in an interrupt, in whatever
// task runs then. A request is the target's when one of its tasks
// inserted or issued it.
func blockPlan(in planInput) (*plan, error) {
	in.tr.reapAfter = reapAfter
	dev := strings.Replace(in.args["dev"], ":", ",", 1)
	return &plan{events: in.events(all), proc: newBlock(in.tr, in.fields, dev)}, nil
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

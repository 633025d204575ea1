package view

import (
	"fmt"
	"strconv"
	"time"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// markEvent is the Event of the mark a helper sends, when asked, after a
// target's rows of one flush (package doc: "When an interval is
// complete"). It is to move to package wire with the helper's side.
const markEvent = "interval_end"

// markRows is the mark's field counting the rows it closes.
const markRows = "rows"

// row is one row of an interval: a bucket of a histogram or a keyed row of
// a table, its strings already escaped.
type row struct {
	key      string
	count    uint64
	total    uint64
	hasTotal bool
	lo, hi   uint64
}

// interval is one target's rows of one flush.
type interval struct {
	// seq counts the target's intervals from 1.
	seq int
	// end is the flush's kernel time, seconds.
	end float64
	// length is the time the rows cover; 0 when unknown.
	length time.Duration
	rows   []row
	// short says the mark announced more rows than came (a limit ended
	// the session in the middle of the flush).
	short bool
}

// series is everything one target sent.
type series struct {
	target wire.Target
	label  string
	// open is the interval being received; nil between flushes.
	open *interval
	// n counts the complete intervals.
	n int
	// last is the last complete interval, before the one before it.
	last, before *interval
	// sum is a histogram's buckets over the whole session, lowest first.
	sum []row
}

// parseRow reads the view's fields of one event.
func parseRow(v *hooks.View, ev *wire.Event) (row, error) {
	var r row
	var err error
	num := func(name string) uint64 {
		if err != nil {
			return 0
		}
		s, ok := ev.Fields[name]
		if !ok {
			err = fmt.Errorf("row of %s at %.6f has no field %q", ev.Event, ev.Time, name)
			return 0
		}
		n, perr := strconv.ParseUint(s, 10, 64)
		if perr != nil {
			err = fmt.Errorf("row of %s at %.6f: field %s=%q is not a count", ev.Event, ev.Time, name, s)
		}
		return n
	}
	r.count = num(v.Count)
	switch v.Form {
	case hooks.ViewHistogram:
		r.lo, r.hi = num(v.Low), num(v.High)
	case hooks.ViewTable:
		k, ok := ev.Fields[v.Key]
		if !ok && err == nil {
			err = fmt.Errorf("row of %s at %.6f has no field %q", ev.Event, ev.Time, v.Key)
		}
		r.key = clean(k)
		if _, ok := ev.Fields[v.Total]; ok && v.Total != "" {
			r.total, r.hasTotal = num(v.Total), true
		}
	}
	return r, err
}

// eventTarget is the target an event names.
func eventTarget(ev *wire.Event) wire.Target {
	t := wire.Target{Node: ev.Node, Namespace: ev.Namespace, Pod: ev.Pod, Container: ev.Container}
	if ev.Pod == "" && ev.Container == "" && ev.Namespace == "" {
		t.Kind = wire.TargetNode
	}
	return t
}

// intervalArg reads the hook's interval parameter from the resolved
// arguments, or its default.
func intervalArg(d hooks.Descriptor, args map[string]string) (time.Duration, error) {
	v, ok := args[d.View.Interval]
	if !ok {
		for _, p := range d.Params {
			if p.Name == d.View.Interval {
				v = p.Default
			}
		}
	}
	if v == "" {
		return 0, nil
	}
	iv, err := time.ParseDuration(v)
	if err != nil || iv < 0 {
		return 0, fmt.Errorf("view of hook %q: --arg %s=%s is not a duration such as 1s", d.Name, d.View.Interval, v)
	}
	return iv, nil
}

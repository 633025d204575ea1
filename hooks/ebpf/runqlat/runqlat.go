//go:build linux

package runqlat

import (
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/prog"
)

// Def is the runqlat hook's program: its map "hist" holds slots buckets
// per target.
var Def = &prog.Def{Name: "runqlat", Load: loadBpf, Sums: newSums, Sized: "hist", Slots: slots}

// slots per target of the in-kernel histogram: runqlat.c's NR_SLOTS.
const slots = 32

// sums reads the map "hist": per target, a log2 histogram of the waits.
type sums struct {
	interval time.Duration
	prev     [][]uint64 // by target and slot
}

func newSums(args map[string]string) (prog.Sums, error) {
	iv, err := prog.Interval(args)
	if err != nil {
		return nil, err
	}
	return &sums{interval: iv}, nil
}

func (s *sums) Interval() time.Duration { return s.interval }

// Flush emits, per target, the histogram since the last flush: one row per
// bucket.
func (s *sums) Flush(c *ebpf.Collection, targets int, emit func(target int, event string, rec *prog.Record) error) error {
	cur := make([][]uint64, targets)
	for i := range cur {
		cur[i] = make([]uint64, slots)
	}
	var (
		key  uint32
		vals []uint64
	)
	it := c.Maps["hist"].Iterate()
	for it.Next(&key, &vals) {
		t, slot := int(key/slots), int(key%slots)
		if t >= targets {
			continue
		}
		for _, v := range vals {
			cur[t][slot] += v
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("reading the run queue histogram: %w", err)
	}
	for len(s.prev) < targets {
		s.prev = append(s.prev, nil)
	}
	var rec prog.Record
	for t := range cur {
		rows := histRows(s.prev[t], cur[t])
		s.prev[t] = cur[t]
		for _, b := range rows {
			rec = rec[:0]
			rec.Uint("usecs_lo", b.lo)
			rec.Uint("usecs_hi", b.hi)
			rec.Uint("count", b.count)
			if err := emit(t, "runqlat", &rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// bucket is one row of runqlat: waits of lo to hi microseconds.
type bucket struct {
	lo, hi uint64
	count  uint64
}

// histRows returns the buckets of one target's log2 histogram since prev
// (both indexed by slot), from the lowest to the highest bucket that has
// counts, with the empty ones between them; nil when none has.
func histRows(prev, cur []uint64) []bucket {
	delta := make([]uint64, len(cur))
	first, last := -1, -1
	for i, c := range cur {
		var p uint64
		if i < len(prev) {
			p = prev[i]
		}
		if c > p {
			delta[i] = c - p
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return nil
	}
	var out []bucket
	for i := first; i <= last; i++ {
		out = append(out, slotBucket(i, delta[i]))
	}
	return out
}

// slotBucket is the range of slot s: log2(usecs) == s, where slot 0 holds
// 0 and 1 µs.
func slotBucket(s int, count uint64) bucket {
	b := bucket{lo: 1 << s, hi: 1<<(s+1) - 1, count: count}
	if s == 0 {
		b.lo = 0
	}
	return b
}

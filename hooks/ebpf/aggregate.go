package ebpf

import (
	"fmt"
	"slices"
)

// Slots per target of the in-kernel arrays; the C sources' NR_SYSCALLS and
// NR_SLOTS.
const (
	syscallSlots = 1024
	runqSlots    = 32
)

// syscallLatency reads syscall-top's latency parameter: true (the
// default) times every call, false only counts.
func syscallLatency(args map[string]string) (bool, error) {
	v, ok := args["latency"]
	if !ok {
		return true, nil
	}
	switch v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("latency %q is not true or false", v)
}

// syscallTopPrograms names the programs of syscall-top's mode: counting
// needs one program on entry and no per-call state, timing one on entry
// and one on exit (syscalltop.c).
func syscallTopPrograms(args map[string]string) ([]string, error) {
	latency, err := syscallLatency(args)
	if err != nil {
		return nil, err
	}
	if latency {
		return []string{"kt_sys_enter", "kt_sys_exit"}, nil
	}
	return []string{"kt_sys_count"}, nil
}

// sysTotals is one syscall's count and summed latency, over all CPUs.
type sysTotals struct {
	count, totalNs uint64
}

// sysRow is one row of syscall-top: one syscall of one target, over the
// interval since the previous rows.
type sysRow struct {
	target  int
	nr      int
	count   uint64
	totalNs uint64
}

// topRows returns, per target, the syscalls with calls since prev, the
// most called first (ties: the most time, then the lowest number), at most
// top of them (top <= 0: all). Keys are target*syscallSlots + nr.
func topRows(prev, cur map[uint32]sysTotals, targets, top int) [][]sysRow {
	out := make([][]sysRow, targets)
	for k, c := range cur {
		p := prev[k]
		if c.count <= p.count {
			continue
		}
		t := int(k / syscallSlots)
		if t >= targets {
			continue
		}
		out[t] = append(out[t], sysRow{target: t, nr: int(k % syscallSlots), count: c.count - p.count, totalNs: c.totalNs - p.totalNs})
	}
	for t := range out {
		slices.SortFunc(out[t], func(a, b sysRow) int {
			switch {
			case a.count != b.count:
				return cmpDesc(a.count, b.count)
			case a.totalNs != b.totalNs:
				return cmpDesc(a.totalNs, b.totalNs)
			}
			return a.nr - b.nr
		})
		if top > 0 && len(out[t]) > top {
			out[t] = out[t][:top]
		}
	}
	return out
}

func cmpDesc(a, b uint64) int {
	if a > b {
		return -1
	}
	return 1
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

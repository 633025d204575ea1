//go:build linux

package syscalltop

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/cilium/ebpf"

	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/prog"
)

// Def is the syscall-top hook's program: its map "stats" holds slots
// counters per target.
var Def = &prog.Def{Name: "syscall-top", Load: loadBpf, Sums: newSums, Sized: "stats", Slots: slots, Programs: programs}

// slots per target of the in-kernel array: syscalltop.c's NR_SYSCALLS.
const slots = 1024

// latency reads the latency parameter: true (the default) times every
// call, false only counts.
func latency(args map[string]string) (bool, error) {
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

// programs names the programs of the mode: counting needs one program on
// entry and no per-call state, timing one on entry and one on exit
// (syscalltop.c).
func programs(args map[string]string) ([]string, error) {
	timed, err := latency(args)
	if err != nil {
		return nil, err
	}
	if timed {
		return []string{"kt_sys_enter", "kt_sys_exit"}, nil
	}
	return []string{"kt_sys_count"}, nil
}

// sums reads the map "stats": per target and syscall, the count and the
// summed latency over all CPUs.
type sums struct {
	interval time.Duration
	top      int
	latency  bool
	prev     map[uint32]totals
}

func newSums(args map[string]string) (prog.Sums, error) {
	s := &sums{}
	var err error
	if s.interval, err = prog.Interval(args); err != nil {
		return nil, err
	}
	if v, ok := args["top"]; ok {
		if s.top, err = strconv.Atoi(v); err != nil || s.top < 1 {
			return nil, fmt.Errorf("top %q is not a number >= 1", v)
		}
	}
	if s.latency, err = latency(args); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *sums) Interval() time.Duration { return s.interval }

// Flush emits, per target, the top syscalls by count since the last flush.
func (s *sums) Flush(c *ebpf.Collection, targets int, emit func(target int, event string, rec *prog.Record) error) error {
	cur := map[uint32]totals{}
	var (
		key  uint32
		vals []bpfSysstat
	)
	it := c.Maps["stats"].Iterate()
	for it.Next(&key, &vals) {
		var t totals
		for _, v := range vals {
			t.count += v.Count
			t.totalNs += v.TotalNs
		}
		if t.count > 0 {
			cur[key] = t
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("reading syscall sums: %w", err)
	}
	rows := topRows(s.prev, cur, targets, s.top)
	s.prev = cur
	var rec prog.Record
	for t, rs := range rows {
		for _, r := range rs {
			rec = rec[:0]
			rec.Add("syscall", name(runtime.GOARCH, r.nr))
			rec.Int("nr", int64(r.nr))
			rec.Uint("count", r.count)
			// Count only: no times were taken, and a 0 would read as a
			// fast call.
			if s.latency {
				rec.Uint("total_ns", r.totalNs)
				rec.Uint("avg_ns", r.totalNs/r.count)
			}
			if err := emit(t, "syscall", &rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// totals is one syscall's count and summed latency, over all CPUs.
type totals struct {
	count, totalNs uint64
}

// row is one row of syscall-top: one syscall of one target, over the
// interval since the previous rows.
type row struct {
	target  int
	nr      int
	count   uint64
	totalNs uint64
}

// topRows returns, per target, the syscalls with calls since prev, the
// most called first (ties: the most time, then the lowest number), at most
// top of them (top <= 0: all). Keys are target*slots + nr.
func topRows(prev, cur map[uint32]totals, targets, top int) [][]row {
	out := make([][]row, targets)
	for k, c := range cur {
		p := prev[k]
		if c.count <= p.count {
			continue
		}
		t := int(k / slots)
		if t >= targets {
			continue
		}
		out[t] = append(out[t], row{target: t, nr: int(k % slots), count: c.count - p.count, totalNs: c.totalNs - p.totalNs})
	}
	for t := range out {
		slices.SortFunc(out[t], func(a, b row) int {
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

// name names a syscall number of an architecture (GOARCH).
func name(arch string, nr int) string {
	if n, ok := syscallNames[arch][nr]; ok {
		return n
	}
	return "syscall_" + strconv.Itoa(nr)
}

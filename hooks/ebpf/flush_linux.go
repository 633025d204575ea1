//go:build linux

package ebpf

import (
	"fmt"
	"runtime"
)

// flushSyscalls emits syscall-top's rows since the last flush: per target,
// the top syscalls by count.
func flushSyscalls(s *Session, emit EmitFunc) error {
	ts := now()
	cur := map[uint32]sysTotals{}
	var (
		key  uint32
		vals []syscalltopSysstat
	)
	it := s.coll.Maps["stats"].Iterate()
	for it.Next(&key, &vals) {
		var t sysTotals
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
	// Count only: no times were taken, and a 0 would read as a fast call.
	latency, err := syscallLatency(s.opts.Args)
	if err != nil {
		return err
	}
	rows := topRows(s.sysPrev, cur, s.numTargets(), s.top)
	s.sysPrev = cur
	for t, rs := range rows {
		for _, r := range rs {
			s.rec = s.rec[:0]
			s.rec.add("syscall", syscallName(runtime.GOARCH, r.nr))
			s.rec.int("nr", int64(r.nr))
			s.rec.uint("count", r.count)
			if latency {
				s.rec.uint("total_ns", r.totalNs)
				s.rec.uint("avg_ns", r.totalNs/r.count)
			}
			if err := s.emit(emit, s.rowHeader(t, ts), "syscall"); err != nil {
				return err
			}
		}
	}
	return nil
}

// flushRunq emits runqlat's histogram since the last flush: per target,
// one row per bucket.
func flushRunq(s *Session, emit EmitFunc) error {
	ts := now()
	n := s.numTargets()
	cur := make([][]uint64, n)
	for i := range cur {
		cur[i] = make([]uint64, runqSlots)
	}
	var (
		key  uint32
		vals []uint64
	)
	it := s.coll.Maps["hist"].Iterate()
	for it.Next(&key, &vals) {
		t, slot := int(key/runqSlots), int(key%runqSlots)
		if t >= n {
			continue
		}
		for _, v := range vals {
			cur[t][slot] += v
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("reading the run queue histogram: %w", err)
	}
	for len(s.histPrev) < n {
		s.histPrev = append(s.histPrev, nil)
	}
	for t := range cur {
		rows := histRows(s.histPrev[t], cur[t])
		s.histPrev[t] = cur[t]
		for _, b := range rows {
			s.rec = s.rec[:0]
			s.rec.uint("usecs_lo", b.lo)
			s.rec.uint("usecs_hi", b.hi)
			s.rec.uint("count", b.count)
			if err := s.emit(emit, s.rowHeader(t, ts), HookRunqlat); err != nil {
				return err
			}
		}
	}
	return nil
}

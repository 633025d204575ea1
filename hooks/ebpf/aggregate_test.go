package ebpf

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTopRows(t *testing.T) {
	key := func(target, nr int) uint32 { return uint32(target*syscallSlots + nr) }
	prev := map[uint32]sysTotals{
		key(0, 0):   {count: 10, totalNs: 1000},
		key(0, 1):   {count: 5, totalNs: 500},
		key(0, 110): {count: 100, totalNs: 9000},
	}
	cur := map[uint32]sysTotals{
		key(0, 0):   {count: 10, totalNs: 1000},  // no calls since: no row
		key(0, 1):   {count: 25, totalNs: 2500},  // 20 calls
		key(0, 110): {count: 120, totalNs: 9500}, // 20 calls, less time
		key(0, 3):   {count: 50, totalNs: 100},   // new
		key(0, 4):   {count: 20, totalNs: 500},   // ties with 110 on count and time: lower nr first
		key(1, 0):   {count: 7, totalNs: 70},     // second target
		key(5, 0):   {count: 7, totalNs: 70},     // no such target
	}
	got := topRows(prev, cur, 2, 3)
	want := [][]sysRow{
		{
			{target: 0, nr: 3, count: 50, totalNs: 100},
			{target: 0, nr: 1, count: 20, totalNs: 2000},
			{target: 0, nr: 4, count: 20, totalNs: 500},
		},
		{{target: 1, nr: 0, count: 7, totalNs: 70}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(sysRow{})); diff != "" {
		t.Errorf("topRows (-want +got):\n%s", diff)
	}
	if all := topRows(prev, cur, 2, 0); len(all[0]) != 4 {
		t.Errorf("topRows with top 0 = %d rows of target 0, want all 4", len(all[0]))
	}
}

func TestHistRows(t *testing.T) {
	prev := make([]uint64, runqSlots)
	cur := make([]uint64, runqSlots)
	cur[0], cur[3], cur[5] = 2, 4, 1
	prev[3] = 1
	got := histRows(prev, cur)
	want := []bucket{
		{lo: 0, hi: 1, count: 2},
		{lo: 2, hi: 3, count: 0},
		{lo: 4, hi: 7, count: 0},
		{lo: 8, hi: 15, count: 3},
		{lo: 16, hi: 31, count: 0},
		{lo: 32, hi: 63, count: 1},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(bucket{})); diff != "" {
		t.Errorf("histRows (-want +got):\n%s", diff)
	}
	if got := histRows(cur, cur); got != nil {
		t.Errorf("histRows without change = %v, want nil", got)
	}
	if got := histRows(nil, cur); len(got) != 6 || got[3].count != 4 {
		t.Errorf("histRows from nothing = %v", got)
	}
}

func TestSyscallTopPrograms(t *testing.T) {
	for _, tt := range []struct {
		args map[string]string
		want []string
	}{
		{nil, []string{"kt_sys_enter", "kt_sys_exit"}},
		{map[string]string{"latency": "true"}, []string{"kt_sys_enter", "kt_sys_exit"}},
		{map[string]string{"latency": "false"}, []string{"kt_sys_count"}},
	} {
		got, err := syscallTopPrograms(tt.args)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("syscallTopPrograms(%v) = %v, %v; want %v", tt.args, got, err, tt.want)
		}
	}
	if _, err := syscallTopPrograms(map[string]string{"latency": "1"}); err == nil || !strings.Contains(err.Error(), "true or false") {
		t.Errorf("latency=1: error %v, want one saying true or false", err)
	}
}

//go:build linux

package syscalltop

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTopRows(t *testing.T) {
	key := func(target, nr int) uint32 { return uint32(target*slots + nr) }
	prev := map[uint32]totals{
		key(0, 0):   {count: 10, totalNs: 1000},
		key(0, 1):   {count: 5, totalNs: 500},
		key(0, 110): {count: 100, totalNs: 9000},
	}
	cur := map[uint32]totals{
		key(0, 0):   {count: 10, totalNs: 1000},  // no calls since: no row
		key(0, 1):   {count: 25, totalNs: 2500},  // 20 calls
		key(0, 110): {count: 120, totalNs: 9500}, // 20 calls, less time
		key(0, 3):   {count: 50, totalNs: 100},   // new
		key(0, 4):   {count: 20, totalNs: 500},   // ties with 110 on count and time: lower nr first
		key(1, 0):   {count: 7, totalNs: 70},     // second target
		key(5, 0):   {count: 7, totalNs: 70},     // no such target
	}
	got := topRows(prev, cur, 2, 3)
	want := [][]row{
		{
			{target: 0, nr: 3, count: 50, totalNs: 100},
			{target: 0, nr: 1, count: 20, totalNs: 2000},
			{target: 0, nr: 4, count: 20, totalNs: 500},
		},
		{{target: 1, nr: 0, count: 7, totalNs: 70}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(row{})); diff != "" {
		t.Errorf("topRows (-want +got):\n%s", diff)
	}
	if all := topRows(prev, cur, 2, 0); len(all[0]) != 4 {
		t.Errorf("topRows with top 0 = %d rows of target 0, want all 4", len(all[0]))
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
		got, err := programs(tt.args)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("programs(%v) = %v, %v; want %v", tt.args, got, err, tt.want)
		}
	}
	if _, err := programs(map[string]string{"latency": "1"}); err == nil || !strings.Contains(err.Error(), "true or false") {
		t.Errorf("latency=1: error %v, want one saying true or false", err)
	}
}

func TestNewSums(t *testing.T) {
	s, err := newSums(map[string]string{"interval": "250ms", "top": "3", "latency": "false"})
	if err != nil || s.Interval().Milliseconds() != 250 || s.(*sums).top != 3 || s.(*sums).latency {
		t.Errorf("newSums = %+v, %v", s, err)
	}
	for _, bad := range []map[string]string{{"interval": "soon"}, {"interval": "-1s"}, {"top": "0"}, {"top": "x"}, {"latency": "1"}} {
		if _, err := newSums(bad); err == nil {
			t.Errorf("newSums(%v) accepted", bad)
		}
	}
}

func TestSyscallName(t *testing.T) {
	for _, tt := range []struct {
		arch string
		nr   int
		want string
	}{
		{"amd64", 110, "getppid"},
		{"amd64", 257, "openat"},
		{"arm64", 56, "openat"},
		{"arm64", 173, "getppid"},
		{"amd64", 1023, "syscall_1023"},
	} {
		if got := name(tt.arch, tt.nr); got != tt.want {
			t.Errorf("name(%s, %d) = %q, want %q", tt.arch, tt.nr, got, tt.want)
		}
	}
}

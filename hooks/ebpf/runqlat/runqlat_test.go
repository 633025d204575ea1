//go:build linux

package runqlat

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHistRows(t *testing.T) {
	prev := make([]uint64, slots)
	cur := make([]uint64, slots)
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

package pidns

import (
	"encoding/binary"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	rec := func(tid, tgid, nr, level uint32) []byte {
		b := make([]byte, taskIDsSize)
		binary.NativeEndian.PutUint32(b[0:], tid)
		binary.NativeEndian.PutUint32(b[4:], tgid)
		binary.NativeEndian.PutUint32(b[8:], nr)
		binary.NativeEndian.PutUint32(b[12:], level)
		return b
	}
	var b []byte
	b = append(b, rec(100, 100, 1, 1)...)
	b = append(b, rec(101, 100, 2, 1)...)
	b = append(b, rec(200, 200, 0, 0)...) // not visible in the namespace
	s, err := parse(42, b)
	if err != nil {
		t.Fatal(err)
	}
	if s.Level != 1 || len(s.Tasks) != 3 {
		t.Fatalf("snapshot %+v", s)
	}
	tr := &Translator{NS: 42, snap: s}
	if g, ok := tr.Global(2); !ok || g != 101 {
		t.Errorf("Global(2) = %d, %v", g, ok)
	}
	if _, ok := tr.Global(3); ok {
		t.Error("Global(3): found a task that does not exist")
	}
	if l, ok := tr.Local(100); !ok || l != 1 {
		t.Errorf("Local(100) = %d, %v", l, ok)
	}
	if _, ok := tr.Local(200); ok {
		t.Error("Local(200): visible")
	}
	if got := tr.GlobalAll([]int{2, 1, 2, 9}); !slices.Equal(got, []int{100, 101}) {
		t.Errorf("GlobalAll = %v", got)
	}
	if got := tr.GlobalAll(nil); got != nil {
		t.Errorf("GlobalAll(nil) = %v", got)
	}
	if _, err := parse(42, b[:5]); err == nil {
		t.Error("truncated record: no error")
	}
}

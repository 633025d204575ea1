package pidns

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStatIsKthread(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want bool
	}{
		{"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", true},
		{"1 (systemd) S 0 1 1 0 -1 4194560 3591 0 0", false},
		// comm may hold spaces and parentheses.
		{"7 (a) b (c) S 1 7 7 0 -1 2097152 0 0", true},
	} {
		got, err := statIsKthread([]byte(tc.stat))
		if err != nil || got != tc.want {
			t.Errorf("statIsKthread(%q) = %v, %v, want %v", tc.stat, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 0"} {
		if _, err := statIsKthread([]byte(bad)); err == nil {
			t.Errorf("statIsKthread(%q): no error", bad)
		}
	}
}

func TestNSpidLevels(t *testing.T) {
	if n := nspidLevels([]byte("Name:\tx\nNSpid:\t4242\t7\nNSsid:\t1\n")); n != 2 {
		t.Errorf("levels %d, want 2", n)
	}
	if n := nspidLevels([]byte("Name:\tx\n")); n != 0 {
		t.Errorf("levels %d, want 0", n)
	}
}

// A tree that is not a proc file system (a test's fake /proc) is taken as
// the initial namespace.
func TestForProcFakeTree(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "4242", "task", "4242"), 0o755); err != nil {
		t.Fatal(err)
	}
	tr, err := ForProc(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Identity || tr.Proc {
		t.Errorf("translator %+v, want identity, not proc", tr)
	}
	if g, ok := tr.Global(4242); !ok || g != 4242 {
		t.Errorf("Global(4242) = %d, %v", g, ok)
	}
}

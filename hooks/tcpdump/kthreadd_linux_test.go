package tcpdump

import (
	"os"
	"path/filepath"
	"testing"
)

func TestIsKthreadd(t *testing.T) {
	root := t.TempDir()
	write := func(pid, stat string) {
		if err := os.MkdirAll(filepath.Join(root, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, pid, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Field 9 (flags): 2129984 = 0x208040 has PF_KTHREAD; 4194560 does not.
	write("2", "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0")
	write("3", "3 (kthreadd) S 1 3 3 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0")
	write("4", "4 (sh (kthreadd)) S 1 4 4 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0")
	for pid, want := range map[int]bool{2: true, 3: false, 4: false, 5: false} {
		if got := isKthreadd(root, pid); got != want {
			t.Errorf("pid %d: isKthreadd = %v, want %v", pid, got, want)
		}
	}
}

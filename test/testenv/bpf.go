//go:build linux

package testenv

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// OurPrograms returns the BPF programs loaded on the machine whose names
// start with prefix ("kt_", the prefix of every program of package ebpf),
// as "name#id".
func OurPrograms(t testing.TB, prefix string) []string {
	t.Helper()
	var out []string
	err := eachProgram(func(id ebpf.ProgramID) {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			return // unloaded meanwhile
		}
		info, err := p.Info()
		p.Close()
		if err == nil && strings.HasPrefix(info.Name, prefix) {
			out = append(out, fmt.Sprintf("%s#%d", info.Name, id))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// WaitProgramsGone waits until no program named with prefix is loaded: the
// kernel frees a detached program after an RCU grace period, not at once.
// It returns those still loaded after timeout.
func WaitProgramsGone(t testing.TB, prefix string, timeout time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := OurPrograms(t, prefix)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// AllPrograms counts the BPF programs loaded on the machine.
func AllPrograms(t testing.TB) int {
	t.Helper()
	n := 0
	if err := eachProgram(func(ebpf.ProgramID) { n++ }); err != nil {
		t.Fatal(err)
	}
	return n
}

func eachProgram(fn func(ebpf.ProgramID)) error {
	id := ebpf.ProgramID(0)
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("listing BPF programs: %w", err)
		}
		id = next
		fn(id)
	}
}

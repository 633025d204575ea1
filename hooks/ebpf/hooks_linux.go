//go:build linux

package ebpf

import (
	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/exec"
	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/oomkill"
	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/open"
	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/prog"
	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/runqlat"
	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/syscalltop"
	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/tcp"
)

// programs are the hooks of kind ebpf, one folder each: the descriptor in
// package hooks says what the hook is, its folder's Def how it runs.
var programs = []*prog.Def{
	exec.Def,
	open.Def,
	tcp.Def,
	syscalltop.Def,
	runqlat.Def,
	oomkill.Def,
}

// program returns the Def of the hook named name.
func program(name string) (*prog.Def, bool) {
	for _, d := range programs {
		if d.Name == name {
			return d, true
		}
	}
	return nil, false
}

//go:build linux

package oomkill

import (
	"testing"

	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/prog"
)

func TestDecode(t *testing.T) {
	var e bpfOomEvent
	e.H.Pid = 11
	prog.SetString8(e.H.Comm[:], "java")
	e.VictimPid, e.TriggerPid, e.Pages = 11, 12, 4096
	prog.SetString8(e.VictimComm[:], "java")
	prog.SetString8(e.TriggerComm[:], "sidecar")
	var rec prog.Record
	_, event, ok := decode(prog.Bytes(&e), &rec)
	if !ok || event != "oomkill" || string(rec.Details(nil)) != "victim_pid=11 victim_comm=java victim_uid=0 trigger_pid=12 trigger_comm=sidecar pages=4096" {
		t.Errorf("got %q %q %v", event, rec.Details(nil), ok)
	}
}

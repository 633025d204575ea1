//go:build linux

package oomkill

import "github.com/ktrace-dev/kubectl-trace/hooks/ebpf/prog"

// Def is the oomkill hook's program.
var Def = &prog.Def{Name: "oomkill", Load: loadBpf, Events: func() prog.Decoder { return decode }}

// decode reads oomkill.c's struct oom_event.
func decode(raw []byte, rec *prog.Record) (prog.Header, string, bool) {
	e, ok := prog.View[bpfOomEvent](raw)
	if !ok {
		return prog.Header{}, "", false
	}
	h := prog.NewHeader(e.H.Ts, e.H.Pid, e.H.Target, e.H.Cpu, e.H.Comm[:])
	rec.Int("victim_pid", int64(e.VictimPid))
	rec.Add("victim_comm", prog.CString8(e.VictimComm[:]))
	rec.Int("victim_uid", int64(e.VictimUid))
	rec.Int("trigger_pid", int64(e.TriggerPid))
	rec.Add("trigger_comm", prog.CString8(e.TriggerComm[:]))
	rec.Int("pages", e.Pages)
	return h, "oomkill", true
}

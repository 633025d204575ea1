//go:build linux

package exec

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/prog"
)

func TestDecode(t *testing.T) {
	var e bpfExecEvent
	e.H.Ts, e.H.Pid, e.H.Target, e.H.Cpu = 1_500_000_000, 42, 1, 3
	prog.SetString8(e.H.Comm[:], "ls")
	e.Ppid, e.Uid = 7, 1000
	prog.SetString8(e.Filename[:], "/bin/ls")
	args := "ls\x00-l\x00a dir\x00"
	for i := range args {
		e.Args[i] = int8(args[i])
	}
	e.ArgsLen = uint32(len(args))
	var rec prog.Record
	h, event, ok := decode(prog.Bytes(&e), &rec)
	if diff := cmp.Diff(prog.Header{TS: 1_500_000_000, PID: 42, Target: 1, CPU: 3, Comm: "ls"}, h); diff != "" || event != "exec" || !ok {
		t.Errorf("header (-want +got):\n%s\nevent %q, ok %v", diff, event, ok)
	}
	if diff := cmp.Diff(map[string]string{"pid": "42", "ppid": "7", "uid": "1000", "filename": "/bin/ls", "argv": `ls -l "a dir"`}, rec.Fields()); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if got, want := string(rec.Details(nil)), `pid=42 ppid=7 uid=1000 filename=/bin/ls argv="ls -l \"a dir\""`; got != want {
		t.Errorf("details %s, want %s", got, want)
	}
	if _, _, ok := decode(prog.Bytes(&e)[:10], &rec); ok {
		t.Error("a short record was decoded")
	}
}

func TestArgv(t *testing.T) {
	tests := []struct {
		name      string
		args      string
		truncated bool
		want      string
	}{
		{name: "plain", args: "ls\x00-l\x00/tmp\x00", want: "ls -l /tmp"},
		{name: "quoted", args: "sh\x00-c\x00echo a b\x00\x00", want: `sh -c "echo a b" ""`},
		{name: "cut by the kernel", args: "cat\x00/very/long", truncated: true, want: "cat /very/long ..."},
		{name: "cut mid-argument", args: "cat\x00/very/long", want: "cat /very/long ..."},
		{name: "empty", args: "", want: `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := argv([]byte(tt.args), tt.truncated); got != tt.want {
				t.Errorf("argv(%q, %v) = %q, want %q", tt.args, tt.truncated, got, tt.want)
			}
		})
	}
	many := ""
	for i := 0; i < maxArgs+5; i++ {
		many += "a\x00"
	}
	got := argv([]byte(many), false)
	if want := len("a ")*maxArgs - 1 + len(" ..."); len(got) != want {
		t.Errorf("argv of %d arguments = %q (%d bytes), want %d arguments and ...", maxArgs+5, got, len(got), maxArgs)
	}
}

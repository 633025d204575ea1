//go:build linux

package ebpf

import (
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Every hook of the package is in the catalogue as an ebpf hook and the
// other way round; its object loads as a spec (no kernel needed) with the
// names the loader relies on, and attaches with tp_btf programs only (see
// the C sources on fentry and tracefs).
func TestHookDefs(t *testing.T) {
	var catalogued []string
	for _, d := range hooks.Catalogue() {
		if d.Kind == hooks.KindEBPF {
			catalogued = append(catalogued, d.Name)
		}
	}
	if diff := cmp.Diff(slices.Sorted(slices.Values(Hooks)), catalogued); diff != "" {
		t.Errorf("ebpf hooks of the catalogue (-package +catalogue):\n%s", diff)
	}
	for _, name := range Hooks {
		def, ok := defs[name]
		if !ok {
			t.Errorf("hook %q has no definition", name)
			continue
		}
		if (def.decode == nil) == (def.flush == nil) {
			t.Errorf("hook %q: want exactly one of decode and flush", name)
		}
		spec, err := def.load()
		if err != nil {
			t.Fatalf("hook %q: %v", name, err)
		}
		for _, v := range []string{"memcg_check", "memcg_filter", "match_all", "wakeup_bytes"} {
			if spec.Variables[v] == nil {
				t.Errorf("hook %q: no variable %s", name, v)
			}
		}
		for _, m := range []string{"target_mntns", "counters"} {
			if spec.Maps[m] == nil {
				t.Errorf("hook %q: no map %s", name, m)
			}
		}
		if (spec.Maps["events"] != nil) != (def.decode != nil) {
			t.Errorf("hook %q: a ring buffer is wanted exactly when events are decoded", name)
		}
		if def.sized != "" && spec.Maps[def.sized] == nil {
			t.Errorf("hook %q: no map %s to size", name, def.sized)
		}
		d, _ := hooks.Lookup(name)
		var sections []string
		for pname, p := range spec.Programs {
			if !strings.HasPrefix(pname, "kt_") {
				t.Errorf("hook %q: program %q lacks the kt_ prefix the tests look for", name, pname)
			}
			if !strings.HasPrefix(p.SectionName, "tp_btf/") {
				t.Errorf("hook %q: program %q attaches with %q, want tp_btf", name, pname, p.SectionName)
			}
			sections = append(sections, p.SectionName)
		}
		slices.Sort(sections)
		if diff := cmp.Diff(slices.Sorted(slices.Values(d.Events)), slices.Compact(sections)); diff != "" {
			t.Errorf("hook %q: descriptor's Events and the programs' sections (-descriptor +programs):\n%s", name, diff)
		}
	}
}

// bytesOf returns v's memory, as the ring buffer holds it.
func bytesOf[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

func setStr8(dst []int8, s string) {
	for i := range dst {
		dst[i] = 0
	}
	for i := 0; i < len(s) && i < len(dst)-1; i++ {
		dst[i] = int8(s[i])
	}
}

func TestDecode(t *testing.T) {
	targets := []Target{
		{Target: wire.Target{Node: "n1", Namespace: "ns", Pod: "p0", Container: "c0"}},
		{Target: wire.Target{Node: "n1", Namespace: "ns", Pod: "p1", Container: "c1"}},
	}
	type out struct {
		ev      wire.Event
		details string
	}
	decodeOne := func(t *testing.T, def *hookDef, raw []byte) []out {
		t.Helper()
		s := &Session{opts: Options{Targets: targets, Fields: true}, def: def, targets: targets, removed: make([]bool, len(targets))}
		var got []out
		err := s.handle(raw, func(ev *wire.Event, details string) error {
			got = append(got, out{*ev, details})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if s.Stats().Events != uint64(len(got)) {
			t.Errorf("Stats.Events %d, emitted %d", s.Stats().Events, len(got))
		}
		return got
	}

	t.Run("exec", func(t *testing.T) {
		var e execExecEvent
		e.H.Ts, e.H.Pid, e.H.Target, e.H.Cpu = 1_500_000_000, 42, 1, 3
		setStr8(e.H.Comm[:], "ls")
		e.Ppid, e.Uid = 7, 1000
		setStr8(e.Filename[:], "/bin/ls")
		args := "ls\x00-l\x00a dir\x00"
		for i := range args {
			e.Args[i] = int8(args[i])
		}
		e.ArgsLen = uint32(len(args))
		got := decodeOne(t, defs[HookExec], bytesOf(&e))
		want := []out{{
			ev: wire.Event{Time: 1.5, CPU: 3, PID: 42, Comm: "ls", Event: "exec", Node: "n1", Namespace: "ns", Pod: "p1", Container: "c1",
				Fields: map[string]string{"pid": "42", "ppid": "7", "uid": "1000", "filename": "/bin/ls", "argv": `ls -l "a dir"`}},
			details: `pid=42 ppid=7 uid=1000 filename=/bin/ls argv="ls -l \"a dir\""`,
		}}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(out{})); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})

	t.Run("open failed", func(t *testing.T) {
		var e openOpenEvent
		e.H.Pid, e.H.Target = 9, 0
		setStr8(e.H.Comm[:], "cat")
		e.Ret, e.Flags = -2, 0
		setStr8(e.Path[:], "/nope")
		got := decodeOne(t, defs[HookOpen], bytesOf(&e))
		if len(got) != 1 || got[0].details != "path=/nope flags=O_RDONLY result=-2 error=ENOENT" || got[0].ev.Pod != "p0" {
			t.Errorf("got %+v", got)
		}
		// As open.c writes it: cut after the path's NUL.
		e.PathLen = uint32(len("/nope") + 1)
		raw := bytesOf(&e)[:unsafe.Offsetof(e.Path)+uintptr(e.PathLen)]
		got = decodeOne(t, defs[HookOpen], raw)
		if len(got) != 1 || got[0].details != "path=/nope flags=O_RDONLY result=-2 error=ENOENT" {
			t.Errorf("cut record: got %+v", got)
		}
		if got := decodeOne(t, defs[HookOpen], raw[:unsafe.Offsetof(e.Path)-1]); len(got) != 0 {
			t.Errorf("record shorter than its header emitted %+v", got)
		}
	})

	t.Run("tcp close", func(t *testing.T) {
		var e tcpTcpEvent
		e.H.Pid = 5
		e.Kind, e.DurationNs = 3, 2_500_000
		e.Tuple.Family, e.Tuple.Sport, e.Tuple.Dport = 2, 40000, 80
		e.Tuple.Saddr = [16]uint8{10, 0, 0, 1}
		e.Tuple.Daddr = [16]uint8{10, 0, 0, 2}
		got := decodeOne(t, defs[HookTCP], bytesOf(&e))
		if len(got) != 1 || got[0].ev.Event != "close" ||
			got[0].details != "family=ipv4 saddr=10.0.0.1 sport=40000 daddr=10.0.0.2 dport=80 duration_us=2500" {
			t.Errorf("got %+v", got)
		}
		e.Kind = 9 // unknown: skipped
		if got := decodeOne(t, defs[HookTCP], bytesOf(&e)); len(got) != 0 {
			t.Errorf("unknown kind emitted %+v", got)
		}
	})

	t.Run("oomkill", func(t *testing.T) {
		var e oomkillOomEvent
		e.H.Pid = 11
		setStr8(e.H.Comm[:], "java")
		e.VictimPid, e.TriggerPid, e.Pages = 11, 12, 4096
		setStr8(e.VictimComm[:], "java")
		setStr8(e.TriggerComm[:], "sidecar")
		got := decodeOne(t, defs[HookOOMKill], bytesOf(&e))
		if len(got) != 1 || got[0].details != "victim_pid=11 victim_comm=java victim_uid=0 trigger_pid=12 trigger_comm=sidecar pages=4096" {
			t.Errorf("got %+v", got)
		}
	})

	t.Run("short or foreign records", func(t *testing.T) {
		var e execExecEvent
		if got := decodeOne(t, defs[HookExec], bytesOf(&e)[:10]); len(got) != 0 {
			t.Errorf("short record emitted %+v", got)
		}
		e.H.Target = 2 // no such target
		if got := decodeOne(t, defs[HookExec], bytesOf(&e)); len(got) != 0 {
			t.Errorf("record of an unknown target emitted %+v", got)
		}
	})
}

func TestParseArgs(t *testing.T) {
	iv, top, err := parseArgs(map[string]string{"interval": "250ms", "top": "3"})
	if err != nil || iv.Milliseconds() != 250 || top != 3 {
		t.Errorf("parseArgs = %v, %d, %v", iv, top, err)
	}
	for _, bad := range []map[string]string{{"interval": "soon"}, {"interval": "-1s"}, {"top": "0"}, {"top": "x"}} {
		if _, _, err := parseArgs(bad); err == nil {
			t.Errorf("parseArgs(%v) accepted", bad)
		}
	}
}

func TestCatalogueParams(t *testing.T) {
	tests := []struct {
		hook    string
		args    map[string]string
		want    map[string]string
		wantErr string
	}{
		{hook: HookSyscallTop, want: map[string]string{"interval": "1s", "top": "10", "latency": "true"}},
		{hook: HookSyscallTop, args: map[string]string{"interval": "0", "top": "3"}, want: map[string]string{"interval": "0", "top": "3", "latency": "true"}},
		{hook: HookSyscallTop, args: map[string]string{"latency": "false"}, want: map[string]string{"interval": "1s", "top": "10", "latency": "false"}},
		{hook: HookSyscallTop, args: map[string]string{"latency": "no"}, wantErr: "want true or false"},
		{hook: HookSyscallTop, args: map[string]string{"interval": "10ms"}, wantErr: "at least 100ms"},
		{hook: HookSyscallTop, args: map[string]string{"interval": "often"}, wantErr: "want a duration"},
		{hook: HookSyscallTop, args: map[string]string{"top": "0"}, wantErr: "from 1 to 500"},
		{hook: HookRunqlat, want: map[string]string{"interval": "0"}},
		{hook: HookRunqlat, args: map[string]string{"interval": "2s"}, want: map[string]string{"interval": "2s"}},
		{hook: HookExec, args: map[string]string{"top": "1"}, wantErr: "takes no parameters"},
	}
	for _, tt := range tests {
		d, _ := hooks.Lookup(tt.hook)
		got, err := d.ResolveArgs(tt.args)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s %v: error %v, want %q", tt.hook, tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %v: %v", tt.hook, tt.args, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s %v (-want +got):\n%s", tt.hook, tt.args, diff)
		}
		if _, _, err := parseArgs(got); err != nil {
			t.Errorf("%s: the loader rejects what the catalogue accepts: %v", tt.hook, err)
		}
		if tt.hook == HookSyscallTop {
			if _, err := syscallTopPrograms(got); err != nil {
				t.Errorf("%s: the loader rejects what the catalogue accepts: %v", tt.hook, err)
			}
		}
	}
}

// viewCut reuses its buffer: what a longer record left there must not show
// through a shorter one.
func TestViewCut(t *testing.T) {
	var buf openOpenEvent
	var long, short openOpenEvent
	setStr8(long.Path[:], "/a/much/longer/path")
	setStr8(short.Path[:], "/b")
	least := unsafe.Offsetof(long.Path)
	if _, ok := viewCut(bytesOf(&long)[:least+20], least, &buf); !ok {
		t.Fatal("viewCut refused a record longer than its header")
	}
	e, ok := viewCut(bytesOf(&short)[:least+3], least, &buf)
	if !ok || cstring8(e.Path[:]) != "/b" {
		t.Errorf("viewCut after a longer record: %v, path %q, want /b", ok, cstring8(e.Path[:]))
	}
	// An unreadable path: the record ends before it (path_len 0).
	viewCut(bytesOf(&long)[:least+20], least, &buf)
	if e, ok := viewCut(bytesOf(&short)[:least], least, &buf); !ok || cstring8(e.Path[:]) != "" {
		t.Errorf("viewCut of a record without a path: %v, path %q, want none", ok, cstring8(e.Path[:]))
	}
	if e, ok := viewCut(bytesOf(&long), least, &buf); !ok || e == &buf {
		t.Errorf("a whole record was copied (ok %v), want a view of it", ok)
	}
}

//go:build linux

package ebpf

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ktrace-dev/kubectl-trace/hooks"
	"github.com/ktrace-dev/kubectl-trace/hooks/attach"
	"github.com/ktrace-dev/kubectl-trace/hooks/ebpf/prog"
	"github.com/ktrace-dev/kubectl-trace/hooks/wire"
)

// Every hook of the package is in the catalogue as an ebpf hook and the
// other way round; its object loads as a spec (no kernel needed) with the
// names the loader relies on, and attaches with tp_btf programs only (see
// the C sources on fentry and tracefs), at the descriptor's Events.
func TestHookDefs(t *testing.T) {
	var catalogued []string
	for _, d := range hooks.Catalogue() {
		if d.Kind == hooks.KindEBPF {
			catalogued = append(catalogued, d.Name)
		}
	}
	if diff := cmp.Diff(slices.Sorted(slices.Values(names())), catalogued); diff != "" {
		t.Errorf("ebpf hooks of the catalogue (-package +catalogue):\n%s", diff)
	}
	for _, def := range programs {
		name := def.Name
		if (def.Events == nil) == (def.Sums == nil) {
			t.Errorf("hook %q: want exactly one of Events and Sums", name)
		}
		spec, err := def.Load()
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
		if (spec.Maps["events"] != nil) != (def.Events != nil) {
			t.Errorf("hook %q: a ring buffer is wanted exactly when events are decoded", name)
		}
		if def.Sized != "" && spec.Maps[def.Sized] == nil {
			t.Errorf("hook %q: no map %s to size", name, def.Sized)
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

// sink collects what a session emits.
type sink struct{ got []emitted }

type emitted struct {
	ev      wire.Event
	details string
}

func (s *sink) Emit(ev *wire.Event, details string) error {
	s.got = append(s.got, emitted{*ev, details})
	return nil
}

func (s *sink) Raw(int) io.Writer { panic("ebpf writes events") }

// A decoded record becomes an event of its target, with the record's
// details and fields and the header's time in seconds; a record of no
// target, or that does not decode, is dropped and counted.
func TestHandle(t *testing.T) {
	targets := []attach.Target{
		{Target: wire.Target{Node: "n1", Namespace: "ns", Pod: "p0", Container: "c0"}},
		{Target: wire.Target{Node: "n1", Namespace: "ns", Pod: "p1", Container: "c1"}},
	}
	decode := func(raw []byte, rec *prog.Record) (prog.Header, string, bool) {
		if len(raw) == 0 {
			return prog.Header{}, "", false
		}
		rec.Add("path", "/a b")
		rec.Int("result", -2)
		return prog.Header{TS: 1_500_000_000, PID: 42, Target: int(raw[0]), CPU: 3, Comm: "ls"}, "exec", true
	}
	out := &sink{}
	s := &Session{cfg: config{fields: true}, targets: targets, removed: make([]bool, len(targets)), decode: decode, out: out}
	for _, raw := range [][]byte{{1}, {}, {2}, {0}} {
		if err := s.handle(raw); err != nil {
			t.Fatal(err)
		}
	}
	want := []emitted{
		{ev: wire.Event{Time: 1.5, CPU: 3, PID: 42, Comm: "ls", Event: "exec", Node: "n1", Namespace: "ns", Pod: "p1", Container: "c1",
			Fields: map[string]string{"path": "/a b", "result": "-2"}}, details: `path="/a b" result=-2`},
		{ev: wire.Event{Time: 1.5, CPU: 3, PID: 42, Comm: "ls", Event: "exec", Node: "n1", Namespace: "ns", Pod: "p0", Container: "c0",
			Fields: map[string]string{"path": "/a b", "result": "-2"}}, details: `path="/a b" result=-2`},
	}
	if diff := cmp.Diff(want, out.got, cmp.AllowUnexported(emitted{})); diff != "" {
		t.Errorf("emitted (-want +got):\n%s", diff)
	}
	if st, c := s.Stats(), s.Counters(); st.Events != 2 || c.Dropped != 2 || st.Lost != 2 {
		t.Errorf("stats %+v, counters %+v: want 2 events, 2 dropped (the undecodable one and the one of no target) and lost", st, c)
	}
}

func TestCatalogueParams(t *testing.T) {
	tests := []struct {
		hook    string
		args    map[string]string
		want    map[string]string
		wantErr string
	}{
		{hook: "syscall-top", want: map[string]string{"interval": "1s", "top": "10", "latency": "true"}},
		{hook: "syscall-top", args: map[string]string{"interval": "0", "top": "3"}, want: map[string]string{"interval": "0", "top": "3", "latency": "true"}},
		{hook: "syscall-top", args: map[string]string{"latency": "false"}, want: map[string]string{"interval": "1s", "top": "10", "latency": "false"}},
		{hook: "syscall-top", args: map[string]string{"latency": "no"}, wantErr: "want true or false"},
		{hook: "syscall-top", args: map[string]string{"interval": "10ms"}, wantErr: "at least 100ms"},
		{hook: "syscall-top", args: map[string]string{"interval": "often"}, wantErr: "want a duration"},
		{hook: "syscall-top", args: map[string]string{"top": "0"}, wantErr: "from 1 to 500"},
		{hook: "runqlat", want: map[string]string{"interval": "0"}},
		{hook: "runqlat", args: map[string]string{"interval": "2s"}, want: map[string]string{"interval": "2s"}},
		{hook: "exec", args: map[string]string{"top": "1"}, wantErr: "takes no parameters"},
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
		def, _ := program(tt.hook)
		if def.Sums != nil {
			if _, err := def.Sums(got); err != nil {
				t.Errorf("%s: the loader rejects what the catalogue accepts: %v", tt.hook, err)
			}
		}
		if def.Programs != nil {
			if _, err := def.Programs(got); err != nil {
				t.Errorf("%s: the loader rejects what the catalogue accepts: %v", tt.hook, err)
			}
		}
	}
}

package hooks

import (
	"strings"
	"testing"
)

// Every ftrace hook documents its parameters and fields and says what it
// needs.
func TestFtraceDescriptors(t *testing.T) {
	for _, d := range ftraceHooks {
		if d.Kind != KindFtrace || len(d.Events) == 0 || len(d.Needs.Capabilities) == 0 || !d.Needs.HostPID || len(d.Needs.Kernel) == 0 {
			t.Errorf("hook %s: incomplete descriptor %+v", d.Name, d)
		}
		if d.Name != "sched" && len(d.Fields) == 0 {
			t.Errorf("hook %s documents no fields", d.Name)
		}
		for _, f := range d.Fields {
			if f.Name == "" || f.Help == "" {
				t.Errorf("hook %s: field %+v undocumented", d.Name, f)
			}
		}
		for _, p := range d.Params {
			if p.Help == "" || p.Check == nil {
				t.Errorf("hook %s: parameter %s lacks help or a check", d.Name, p.Name)
			}
			if p.Default != "" {
				if err := p.Check(p.Default); err != nil {
					t.Errorf("hook %s: default %s=%s fails its own check: %v", d.Name, p.Name, p.Default, err)
				}
			}
		}
	}
}

func TestFtraceParamChecks(t *testing.T) {
	tests := []struct {
		hook, param, value string
		wantErr            string // "" accepts
	}{
		{"syscalls", "syscalls", "all", ""},
		{"syscalls", "syscalls", "openat,read,write", ""},
		{"syscalls", "syscalls", "exit_group", ""},
		{"syscalls", "syscalls", "sys_read", "without the sys_ prefix"},
		{"syscalls", "syscalls", "openat,", "not a syscall name"},
		{"syscalls", "syscalls", "Open", "not a syscall name"},
		{"syscalls", "syscalls", "read;rm -rf /", "not a syscall name"},
		{"syscalls", "syscalls", "read,all", "all stands alone"},
		{"block", "dev", "", ""},
		{"block", "dev", "254:0", ""},
		{"block", "dev", "/dev/vda", "major:minor"},
		{"block", "dev", "254,0", "major:minor"},
		{"pagefaults", "kernel", "true", ""},
		{"pagefaults", "kernel", "yes", "true or false"},
		{"funcgraph", "functions", "vfs_read,vfs_write", ""},
		{"funcgraph", "functions", "vfs_*", ""},
		{"funcgraph", "functions", "foo.isra.0,bar.cold", ""},
		{"funcgraph", "functions", "*", "every kernel function"},
		{"funcgraph", "functions", "a*", "every kernel function"},
		{"funcgraph", "functions", "vfs_read,", "empty name"},
		{"funcgraph", "functions", "vfs read", "not a kernel function name"},
		{"funcgraph", "functions", "vfs_read\nvfs_write", "not a kernel function name"},
	}
	for _, tt := range tests {
		d, ok := Lookup(tt.hook)
		if !ok {
			t.Fatalf("no hook %s", tt.hook)
		}
		_, err := d.ResolveArgs(map[string]string{tt.param: tt.value})
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s %s=%q: %v", tt.hook, tt.param, tt.value, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s %s=%q: error %v, want %q", tt.hook, tt.param, tt.value, err, tt.wantErr)
		}
	}
}

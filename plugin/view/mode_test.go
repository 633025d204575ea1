package view

import (
	"testing"

	"github.com/ktrace-dev/kubectl-trace/hooks"
)

func TestUse(t *testing.T) {
	runqlat, exec := hook(t, "runqlat"), hook(t, "exec")
	term := Output{Terminal: true, Format: hooks.OutputText}
	tests := []struct {
		name    string
		mode    string
		d       hooks.Descriptor
		out     Output
		want    bool
		wantErr string
	}{
		{name: "auto on a terminal", mode: Auto, d: runqlat, out: term, want: true},
		{name: "no flag is auto", mode: "", d: runqlat, out: term, want: true},
		{name: "auto, a hook of lines", mode: Auto, d: exec, out: term},
		{name: "auto, a pipe", mode: Auto, d: runqlat, out: Output{Format: hooks.OutputText}},
		{name: "auto, json", mode: Auto, d: runqlat, out: Output{Terminal: true, Format: hooks.OutputJSON}},
		{name: "auto, output-dir", mode: Auto, d: runqlat, out: Output{Terminal: true, Format: hooks.OutputText, Dir: "out"}},
		{name: "lines on a terminal", mode: Lines, d: runqlat, out: term},
		{name: "lines, a hook of lines", mode: Lines, d: exec, out: term},
		{name: "table on a pipe", mode: Table, d: runqlat, out: Output{Format: hooks.OutputText}, want: true},
		{name: "table, a hook of lines", mode: Table, d: exec, out: term, wantErr: `--view table: hook "exec" has no table or histogram, its events are lines: use --view lines or auto`},
		{name: "table, json", mode: Table, d: runqlat, out: Output{Format: hooks.OutputJSON}, wantErr: "--view table draws text, not -o json: drop --view, or use -o text"},
		{name: "table, output-dir", mode: Table, d: runqlat, out: Output{Format: hooks.OutputText, Dir: "out"}, wantErr: "--view table draws on stdout, not in --output-dir files: drop one of them"},
		{name: "unknown", mode: "graph", d: runqlat, out: term, wantErr: `--view "graph": choose auto, lines or table`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Use(tt.mode, tt.d, tt.out)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Use = %t, %v; want %t", got, err, tt.want)
			}
		})
	}
	for _, m := range Modes {
		if _, err := Use(m, runqlat, term); err != nil {
			t.Errorf("mode %q of Modes: %v", m, err)
		}
	}
}

func TestClean(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"nginx", "nginx"},
		{"web-7d9f/app", "web-7d9f/app"},
		{"évé 名前", "évé 名前"},
		{"a\x1b[2Jb", `a\x1b[2Jb`},
		{"tab\there\nnl\r", `tab\x09here\x0anl\x0d`},
		{"del\x7f", `del\x7f`},
		{"c1\u009b31m", `c1\u009b31m`},
		{"bidi\u202etxt.exe", `bidi\u202etxt.exe`},
		{"bad\xff\xfeutf8", `bad\xff\xfeutf8`},
		{`back\slash`, `back\\slash`},
		{"", ""},
	} {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

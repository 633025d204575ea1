//go:build linux

package main

import "testing"

func TestTraceRunFailure(t *testing.T) {
	for _, tt := range []struct {
		stderr []string
		want   string
	}{
		{[]string{"✓ 1 target(s) on 1 node(s)", "→ creating helper pod", `error: tracing ns/load/app on node "vm": runc create failed: unable to apply caps`},
			`error: tracing ns/load/app on node "vm": runc create failed: unable to apply caps`},
		{[]string{"✓ 1 target(s) on 1 node(s)", "the helper pod was deleted", ""}, "the helper pod was deleted"},
		{nil, "nothing on stderr"},
	} {
		r := &traceRun{stderr: tt.stderr}
		if got := r.failure(); got != tt.want {
			t.Errorf("failure() of %q = %q, want %q", tt.stderr, got, tt.want)
		}
	}
	if got := firstLine(string(make([]rune, 200))); len([]rune(got)) != 161 {
		t.Errorf("firstLine kept %d runes of 200, want 160 and the ellipsis", len([]rune(got)))
	}
}

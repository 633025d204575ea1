package plugin

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ktrace-dev/kubectl-trace/hooks"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run go test ./plugin -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func TestSummaryGolden(t *testing.T) {
	results := []sessionResult{
		{Target: "shop/web-7d9f/app", Hook: "sched", Events: 83530, Lost: 0, Duration: 5 * time.Second, Ended: "duration reached"},
		{Target: "shop/web-x2kq/app", Hook: "sched", Events: 120, Lost: 17, Duration: 2300 * time.Millisecond, Ended: "interrupted"},
		{Target: "shop/db-0/postgres", Hook: "sched", Events: 0, Duration: 0, Ended: "failed", Failed: true},
	}
	for _, tt := range []struct{ mode, file string }{
		{ColorNever, "summary.golden"},
		{ColorAlways, "summary-color.golden"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			golden(t, tt.file, renderSummary(newStyles(os.Stderr, tt.mode), results))
		})
	}
}

func TestHooksGolden(t *testing.T) {
	for _, tt := range []struct{ mode, file string }{
		{ColorNever, "hooks.golden"},
		{ColorAlways, "hooks-color.golden"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			golden(t, tt.file, renderHooks(newStyles(os.Stdout, tt.mode), hooks.Catalogue()))
		})
	}
}

func TestNoColorEnv(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	if s := newStyles(os.Stderr, ColorAuto); s.color {
		t.Error("NO_COLOR is set, yet auto mode writes colour")
	}
	if s := newStyles(os.Stderr, ColorAlways); !s.color {
		t.Error("--color always must win over NO_COLOR")
	}
}

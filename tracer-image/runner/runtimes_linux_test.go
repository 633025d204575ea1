package runner

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ktrace-dev/kubectl-trace/hooks"
)

// Every kind of hook in the catalogue has a runtime, and every runtime
// runs a kind of the catalogue; which hooks of its kind each runs is
// checked in its package (ftrace's TestPlansMatchCatalogue, ebpf's
// TestHookDefs, tcpdump's TestDescriptorArgv).
func TestRuntimesCoverCatalogue(t *testing.T) {
	var kinds []string
	for _, d := range hooks.Catalogue() {
		if !slices.Contains(kinds, d.Kind) {
			kinds = append(kinds, d.Kind)
		}
	}
	var runtimes []string
	for kind := range DefaultRuntimes() {
		runtimes = append(runtimes, kind)
	}
	if diff := cmp.Diff(slices.Sorted(slices.Values(runtimes)), slices.Sorted(slices.Values(kinds))); diff != "" {
		t.Errorf("kinds (-runtimes +catalogue):\n%s", diff)
	}
}
